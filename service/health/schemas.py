"""Health answer schemas."""

import marshmallow as ma


class HealthRead(ma.Schema):
    """Liveness or readiness."""

    status = ma.fields.String(required=True, metadata={"example": "ok"})
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
