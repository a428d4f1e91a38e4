"""Agency request and response schemas."""

import marshmallow as ma

from service.fields import TimeZoneName, text


class AgencyCreate(ma.Schema):
    """An agency to create."""

    code = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(min=2, max=32), ma.validate.Regexp(r"^[a-z0-9][a-z0-9-]*$", error="Lower-case letters, digits and '-'.")],
    )
    name = text(max_length=200, required=True)
    timezone = TimeZoneName(required=True, metadata={"example": "America/Toronto"})


class AgencyRead(ma.Schema):
    """An agency."""

    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    timezone = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
