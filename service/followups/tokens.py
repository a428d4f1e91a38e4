"""Participants' response links: signed, expiring, and good for one follow-up only.

A token names one follow-up, its kind and an expiry, signed with the service's key
(HMAC-SHA256 through itsdangerous, see service.signing). Participants have no account and no API key: the
link in their message is their only credential, so the token is checked for its
signature, its purpose and its expiry before anything is looked up.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from itsdangerous import BadSignature

from service.signing import link_serializer

SALT = "debrief.response.v1"
# What itsdangerous writes (URL-safe base64 and dots, ~125 characters for a participant, ~75 for a
# facilitator). It drops other characters before checking the signature, which would accept variants.
TOKEN_FORM = re.compile(r"[A-Za-z0-9_.-]{1,400}")


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


def sign(keys: Sequence[str], *, followup_id: uuid.UUID, kind: str, expires_at: datetime) -> str:
    """A response token for one follow-up, signed with the first (newest) key."""
    return link_serializer(keys, SALT).dumps([followup_id.hex, kind, int(expires_at.timestamp())])


def well_formed(token: str) -> bool:
    """Whether a token is written as this service writes tokens (participants' and facilitators' alike)."""
    return TOKEN_FORM.fullmatch(token) is not None


def verify(keys: Sequence[str], token: str, *, now: datetime, expired_ok: bool = False) -> ResponseClaim:
    """The claim of a token signed with any of `keys`; InvalidToken if forged or malformed, ExpiredToken once expired (unless expired_ok)."""
    if not well_formed(token):
        raise InvalidToken()
    try:
        value = link_serializer(keys, SALT).loads(token)
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
