"""Audit log schemas."""

import marshmallow as ma


class AuditListArgs(ma.Schema):
    """Filter and page of the audit log."""

    incident_id = ma.fields.UUID()
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(validate=ma.validate.Length(max=200))


class AuditEntryRead(ma.Schema):
    """One read of participant-level data, or one sign-in, sign-out or account change in the console."""

    id = ma.fields.Integer(required=True)
    at = ma.fields.AwareDateTime(required=True)
    api_key_id = ma.fields.Integer(allow_none=True, required=True)
    account_id = ma.fields.Integer(allow_none=True, required=True, metadata={"description": "The console account, if any"})
    facilitator_id = ma.fields.Integer(allow_none=True, required=True,
                                       metadata={"description": "The facilitator signed in to the console, if any"})
    actor_role = ma.fields.String(required=True)
    action = ma.fields.String(required=True)
    incident_id = ma.fields.UUID(allow_none=True, required=True)


class AuditPage(ma.Schema):
    """A page of the audit log, newest first."""

    items = ma.fields.List(ma.fields.Nested(AuditEntryRead), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
