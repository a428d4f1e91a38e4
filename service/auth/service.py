"""API keys: creation and authentication."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.agencies.models import Agency
from service.auth.models import ApiKey
from service.errors import InvalidInput, NotFound
from service.vocabulary import API_ROLES

KEY_PREFIX = "dbk_"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request, as its API key describes it (key_id None: a facilitator's signed link)."""

    key_id: int | None
    role: str
    agency_id: int | None
    facilitator_id: int | None


def hash_key(secret: str) -> str:
    """SHA-256 of a key: keys carry 256 random bits, so a slow hash would add nothing."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(*, db: Session, role: str, agency_code: str | None = None, facilitator_id: int | None = None) -> str:
    """Create an API key and return its secret, which is never stored."""
    if role not in API_ROLES:
        raise InvalidInput(f"Unknown role {role!r}.", errors={"role": [f"Must be one of: {', '.join(API_ROLES)}."]})
    agency_id = None
    if role == "admin":
        if agency_code or facilitator_id:
            raise InvalidInput("An admin key has no agency or facilitator scope.")
    else:
        if not agency_code:
            raise InvalidInput(f"A {role} key needs an agency.", errors={"agency": ["Required for this role."]})
        agency = db.scalar(select(Agency).where(Agency.code == agency_code))
        if agency is None:
            raise NotFound(f"No agency with code {agency_code!r}.")
        agency_id = agency.id
    if (role == "facilitator") != (facilitator_id is not None):
        raise InvalidInput("A facilitator key, and only it, is bound to one facilitator.")
    if facilitator_id is not None:
        from service.facilitators.models import Facilitator

        facilitator = db.get(Facilitator, facilitator_id)
        if facilitator is None or facilitator.agency_id not in (None, agency_id):
            raise NotFound(f"No facilitator {facilitator_id} in agency {agency_code!r}.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    db.add(ApiKey(key_hash=hash_key(secret), role=role, agency_id=agency_id, facilitator_id=facilitator_id))
    db.commit()
    return secret


def authenticate(*, db: Session, secret: str) -> Principal | None:
    """The principal of a presented key, or None when it is unknown or revoked."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 128:
        return None
    key = db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None)))
    if key is None:
        return None
    return Principal(key_id=key.id, role=key.role, agency_id=key.agency_id, facilitator_id=key.facilitator_id)
