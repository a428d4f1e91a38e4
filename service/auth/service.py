"""API keys: creation, listing, revocation and authentication."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CTE, Row, Select, bindparam, or_, select, update
from sqlalchemy.orm import Session

from service.agencies.models import Agency
from service.auth.models import ApiKey
from service.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from service.pagination import newest_first, row_id
from service.vocabulary import API_ROLES

KEY_PREFIX = "dbk_"
MAX_EXPIRY_DAYS = 3650
# How stale `last_used_at` may be: finer would be a write on every request.
LAST_USED_PRECISION = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request, as its API key describes it (key_id None: a facilitator's signed link)."""

    key_id: int | None
    role: str
    agency_id: int | None
    facilitator_id: int | None


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """A presented API key and the roles a request admits: checked before the view, or in the request's own statement."""

    secret: str
    roles: frozenset[str]
    method: str

    def admit(self, principal: Principal | None) -> Principal:
        """The caller when the key is live and its role admitted; otherwise the 401 or 403 to answer."""
        if principal is None:
            raise Unauthenticated("The API key is unknown, revoked or expired.")
        if principal.role not in self.roles:
            raise Forbidden(f"A {principal.role} key may not {self.method} this resource.")
        return principal

    def authenticate(self, db: Session, now: datetime) -> Principal:
        """The caller, its key checked by a query of its own; otherwise the 401 or 403 to answer."""
        return self.admit(authenticate(db=db, secret=self.secret, now=now))


def checked(caller: Principal | KeyCheck, db: Session, now: datetime) -> Principal:
    """The caller: as known, or its key checked now by a query of its own (401 or 403 when refused)."""
    return caller if isinstance(caller, Principal) else caller.authenticate(db, now)


@dataclass(frozen=True, slots=True)
class KeyView:
    """An API key as listed: never its secret."""

    id: int
    role: str
    agency: str | None
    facilitator_id: int | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: its secret, shown this once, and its id (to list or revoke it)."""

    id: int
    key: str
    expires_at: datetime | None


def hash_key(secret: str) -> str:
    """SHA-256 of a key: keys carry 256 random bits, so a slow hash would add nothing."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_key(*, db: Session, role: str, agency_code: str | None = None, facilitator_id: int | None = None,
              expires_in_days: int | None = None, now: datetime | None = None) -> IssuedKey:
    """Create an API key, valid for `expires_in_days` when given; its secret is returned, never stored."""
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
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidInput("A key expires in 1 to 3650 days.", errors={"expires_in_days": [f"From 1 to {MAX_EXPIRY_DAYS}."]})
        if now is None:
            raise ValueError("an expiring key needs the current time")
        expires_at = now + timedelta(days=expires_in_days)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(key_hash=hash_key(secret), role=role, agency_id=agency_id, facilitator_id=facilitator_id,
                 expires_at=expires_at, **({"created_at": now} if now is not None else {}))
    db.add(key)
    db.commit()
    return IssuedKey(key.id, secret, expires_at)


def create_key(*, db: Session, role: str, agency_code: str | None = None, facilitator_id: int | None = None) -> str:
    """Create a key that does not expire and return its secret."""
    return issue_key(db=db, role=role, agency_code=agency_code, facilitator_id=facilitator_id).key


def list_page(*, db: Session, limit: int, cursor: str | None) -> tuple[list[KeyView], str | None]:
    """Every key, newest first: role, scope, dates; never a secret."""
    rows, next_cursor = newest_first(db, select(ApiKey), at=ApiKey.created_at, id=ApiKey.id, limit=limit, cursor=cursor,
                                     parse_id=row_id)
    codes = dict(db.execute(select(Agency.id, Agency.code).where(Agency.id.in_({k.agency_id for k in rows}))).all())
    return [
        KeyView(id=k.id, role=k.role, agency=codes.get(k.agency_id), facilitator_id=k.facilitator_id, created_at=k.created_at,
                expires_at=k.expires_at, last_used_at=k.last_used_at, revoked_at=k.revoked_at)
        for k in rows
    ], next_cursor


def revoke(*, db: Session, key_id: int, now: datetime) -> None:
    """Revoke a key for good (again: nothing changes); its next request is a 401."""
    key = db.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = now
    db.commit()


@functools.cache
def _key_query() -> Select[Any]:
    """The live key of a hash, built once: authentication runs before every API request."""
    from service.facilitators.models import Facilitator

    return (
        select(ApiKey.id, ApiKey.role, ApiKey.agency_id, ApiKey.facilitator_id, ApiKey.last_used_at)
        .outerjoin(Facilitator, Facilitator.id == ApiKey.facilitator_id)
        .where(ApiKey.key_hash == bindparam("presented_key_hash"), ApiKey.revoked_at.is_(None),
               or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > bindparam("now", type_=ApiKey.expires_at.type)),
               # A facilitator's key works while they are active: deactivating them disables it.
               or_(ApiKey.facilitator_id.is_(None), Facilitator.active.is_(True)))
    )


def well_formed(secret: str) -> bool:
    """Whether a presented secret could be a key at all (else it is refused without a lookup)."""
    return secret.startswith(KEY_PREFIX) and len(secret) <= 128


def authenticate(*, db: Session, secret: str, now: datetime) -> Principal | None:
    """The principal of a presented key; None when it is unknown, revoked, expired, or a deactivated facilitator's."""
    if not well_formed(secret):
        return None
    key = db.connection().execute(_key_query(), key_parameters(secret, now)).first()
    if key is None:
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        db.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        db.commit()
    return principal_of(key)


def key_parameters(secret: str, now: datetime) -> dict[str, Any]:
    """The parameters of `live_key` (and of authentication's own query) for a presented secret."""
    return {"presented_key_hash": hash_key(secret), "now": now, "stale_before": now - LAST_USED_PRECISION}


def live_key(name: str) -> tuple[CTE, CTE]:
    """For a statement that authenticates its caller itself: the live key of `key_parameters` (none
    when it is unknown, revoked, expired or a deactivated facilitator's), and the update of its
    `last_used_at` when that is stale, as `authenticate` does."""
    key = _key_query().cte(name)
    touched = (
        update(ApiKey)
        .where(ApiKey.id == key.c.id, or_(key.c.last_used_at.is_(None), key.c.last_used_at <= bindparam("stale_before")))
        .values(last_used_at=bindparam("now"))
        .cte(f"{name}_touched")
    )
    return key, touched


def principal_of(key: Row[Any]) -> Principal:
    """The principal of a live key's row (`live_key`'s columns)."""
    return Principal(key_id=key.id, role=key.role, agency_id=key.agency_id, facilitator_id=key.facilitator_id)
