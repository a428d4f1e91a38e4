"""API key schemas: what admins send and see (never a stored secret)."""

import marshmallow as ma

from service.auth.service import MAX_EXPIRY_DAYS
from service.fields import AGENCY_CODE, FullMatch, choice
from service.vocabulary import API_ROLES


class KeyCreate(ma.Schema):
    """A key to issue."""

    role = choice(API_ROLES, required=True)
    agency = ma.fields.String(validate=FullMatch(AGENCY_CODE, error="Not an agency code."),
                              metadata={"description": "Agency code: every role but admin"})
    facilitator_id = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=2**31 - 1),
                                       metadata={"description": "The facilitator a facilitator key is bound to"})
    expires_in_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=MAX_EXPIRY_DAYS),
                                        metadata={"description": "Unset: the key does not expire"})


class KeyIssuedRead(ma.Schema):
    """A new key: the secret is in this answer only (a hash is kept)."""

    id = ma.fields.Integer(required=True)
    key = ma.fields.String(required=True, metadata={"example": "dbk_kq3x0lVJ9oYl6m1gW3yP3b0d5m2Kq0xv8Fh2d8s4ZqA"})
    expires_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class KeyRead(ma.Schema):
    """An API key: its role, scope and dates."""

    id = ma.fields.Integer(required=True)
    role = ma.fields.String(required=True, metadata={"enum": list(API_ROLES)})
    agency = ma.fields.String(allow_none=True, required=True)
    facilitator_id = ma.fields.Integer(allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    expires_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    last_used_at = ma.fields.AwareDateTime(allow_none=True, required=True, metadata={"description": "To the hour"})
    revoked_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class KeyPage(ma.Schema):
    """A page of API keys, newest first."""

    items = ma.fields.List(ma.fields.Nested(KeyRead), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
