"""Participants' response links: signed, expiring, and good for one follow-up only.

A token names one follow-up, its kind and an expiry, signed with the service's key
(HMAC-SHA256 through itsdangerous). Participants have no account and no API key: the
link in their message is their only credential, so the token is checked for its
signature, its purpose and its expiry before anything is looked up.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from service.db import conflict_insert
from service.followups.models import ServiceSecret

SALT = "debrief.response.v1"
# What itsdangerous writes (URL-safe base64 and dots, ~110 characters for a participant, ~60 for a
# facilitator). It drops other characters before checking the signature, which would accept variants.
TOKEN_FORM = re.compile(r"[A-Za-z0-9_.-]{1,400}")
GENERATED_KEY = "response_signing_key"


class InvalidToken(Exception):
    """Not a token this service signed (or signed for something else)."""


class ExpiredToken(Exception):
    """A genuine token whose time is over."""


@dataclass(frozen=True, slots=True)
class ResponseClaim:
    """What a verified token says: which follow-up, of which kind, until when."""

    followup_id: uuid.UUID
    kind: str
    expires_at: datetime


def stored_key(db: DbSession) -> str | None:
    """The key this database generated (at `db upgrade`), if any."""
    return db.scalar(select(ServiceSecret.value).where(ServiceSecret.name == GENERATED_KEY))


def ensure_key(db: DbSession, *, now: datetime) -> str:
    """The stored key, generated in the caller's transaction when missing (e.g. a wiped table)."""
    key = stored_key(db)
    if key is not None:
        return key
    insert = conflict_insert(db)
    # Two processes may race to create it: the first insert wins and both read the winner.
    db.execute(insert(ServiceSecret).values(name=GENERATED_KEY, value=new_key(), created_at=now)
               .on_conflict_do_nothing(index_elements=["name"]))
    return db.scalars(select(ServiceSecret.value).where(ServiceSecret.name == GENERATED_KEY)).one()


def new_key() -> str:
    """A fresh signing key: 256 random bits."""
    return secrets.token_hex(32)


def sign(key: str, *, followup_id: uuid.UUID, kind: str, expires_at: datetime) -> str:
    """A response token for one follow-up."""
    return URLSafeSerializer(key, salt=SALT).dumps([followup_id.hex, kind, int(expires_at.timestamp())])


def well_formed(token: str) -> bool:
    """Whether a token is written as this service writes tokens (participants' and facilitators' alike)."""
    return TOKEN_FORM.fullmatch(token) is not None


def verify(key: str, token: str, *, now: datetime, expired_ok: bool = False) -> ResponseClaim:
    """The claim of a token; InvalidToken if it is forged or malformed, ExpiredToken once it has expired (unless expired_ok)."""
    if not well_formed(token):
        raise InvalidToken()
    try:
        value = URLSafeSerializer(key, salt=SALT).loads(token)
    except (BadSignature, UnicodeError, ValueError):
        raise InvalidToken() from None
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], str)
            and isinstance(value[2], int)):
        raise InvalidToken()
    try:
        followup_id = uuid.UUID(hex=value[0])
        expires_at = datetime.fromtimestamp(value[2], tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise InvalidToken() from None
    if expires_at <= now and not expired_ok:
        raise ExpiredToken()
    return ResponseClaim(followup_id, value[1], expires_at)
