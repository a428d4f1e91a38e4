"""Agency request and response schemas."""

import marshmallow as ma

from service.fields import EmailAddress, FullMatch, PatchSchema, TimeZoneName, text


class AgencyCreate(ma.Schema):
    """An agency to create."""

    code = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(min=2, max=32), FullMatch(r"^[a-z0-9][a-z0-9-]*$", error="Lower-case letters, digits and '-'.")],
    )
    name = text(max_length=200, required=True)
    timezone = TimeZoneName(required=True, metadata={"example": "America/Toronto"})


class AgencyPatch(PatchSchema):
    """A change to an agency; `policy` replaces its planning-policy overrides."""

    name = text(max_length=200)
    timezone = TimeZoneName(metadata={"example": "America/Toronto"})
    policy = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Raw(allow_none=False),
        metadata={"description": "Planning-policy overrides: durations in hours, times as HH:MM, phases as [name, minutes] pairs",
                  "example": {"debriefing_closes_after": 96, "earliest_start": "09:00", "max_group_size": 15}},
    )
    coordinator_email = EmailAddress(
        allow_none=True, validate=ma.validate.Length(max=254),
        metadata={"description": "The CISM team's mailbox: planning problems and follow-ups to arrange"},
    )
    webhook_url = ma.fields.Url(
        allow_none=True, schemes={"http", "https"}, require_tld=False, validate=ma.validate.Length(max=2048),
        # apispec's own `format: url` is not a JSON Schema format (clients and validators would take any
        # string); `iri`, as the field takes international host names such as https://café.example.
        metadata={"description": "Receives incident status events, signed per Standard Webhooks: a public https "
                                 "receiver (loopback, private and local hosts are refused; http only in the embedded default)",
                  "format": "iri", "pattern": "^https?://"},
    )


class AgencyRead(ma.Schema):
    """An agency."""

    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    timezone = ma.fields.String(required=True)
    policy = ma.fields.Dict(required=True, metadata={"description": "Planning-policy overrides"})
    coordinator_email = ma.fields.String(allow_none=True, required=True)
    webhook_url = ma.fields.String(allow_none=True, required=True)
    webhook_secret_set = ma.fields.Boolean(required=True, metadata={"description": "Whether webhooks can be signed"})
    created_at = ma.fields.AwareDateTime(required=True)


class WebhookSecretRead(ma.Schema):
    """A new webhook signing secret: shown once, never again."""

    webhook_secret = ma.fields.String(required=True, metadata={"example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    previous_valid_until = ma.fields.AwareDateTime(allow_none=True, required=True, metadata={
        "description": "Until then deliveries carry two signatures, with the new secret and with the previous one "
                       "(`webhook-signature: v1,<new> v1,<previous>`); null when there was no previous secret"})
