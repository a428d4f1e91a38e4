"""Facilitators' page links: signed, expiring, naming one facilitator.

Facilitators open their session pages and their own page from the messages Debrief sends them,
with no account and no API key: the token in the link is the credential. It names the
facilitator and an expiry, signed (HMAC-SHA256 through itsdangerous, see service.signing) with the same keys as the
participants' links but under another salt, so a participant's token is never a facilitator's
and the other way round. Every message carries a freshly signed one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

from itsdangerous import BadSignature

from service.followups.tokens import ExpiredToken, InvalidToken, well_formed
from service.signing import link_serializer

SALT = "debrief.facilitator-link.v1"
# A link works this long after its message goes out, and at least until the session it is about has ended.
LINK_OPEN = timedelta(days=30)
PREFIX = "/f/"

__all__ = ["ExpiredToken", "FacilitatorClaim", "InvalidToken", "expiry", "own_path", "session_path", "sign", "verify"]


@dataclass(frozen=True, slots=True)
class FacilitatorClaim:
    """What a verified link says: which facilitator, until when."""

    facilitator_id: int
    expires_at: datetime


def expiry(sent_at: datetime, session_ends_at: datetime | None = None) -> datetime:
    """When a link sent at `sent_at` stops working: LINK_OPEN later, and never before its session ends."""
    ends = sent_at + LINK_OPEN
    return ends if session_ends_at is None else max(ends, session_ends_at + LINK_OPEN)


def sign(keys: Sequence[str], *, facilitator_id: int, expires_at: datetime) -> str:
    """A link token for one facilitator, signed with the first (newest) key."""
    return link_serializer(keys, SALT).dumps([facilitator_id, int(expires_at.timestamp())])


def verify(keys: Sequence[str], token: str, *, now: datetime) -> FacilitatorClaim:
    """The claim of a token signed with any of `keys`; InvalidToken if forged, malformed or not a facilitator's, ExpiredToken once expired."""
    if not well_formed(token):
        raise InvalidToken()
    try:
        value = link_serializer(keys, SALT).loads(token)
    except (BadSignature, UnicodeError, ValueError):
        raise InvalidToken() from None
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value) and value[0] > 0):
        raise InvalidToken()
    try:
        expires_at = datetime.fromtimestamp(value[1], tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise InvalidToken() from None
    if expires_at <= now:
        raise ExpiredToken()
    return FacilitatorClaim(value[0], expires_at)


def own_path(token: str) -> str:
    """The path of the facilitator's own page."""
    return f"{PREFIX}{token}"


def session_path(token: str, session_id: uuid.UUID) -> str:
    """The path of one session's page for the facilitator."""
    return f"{PREFIX}{token}/sessions/{session_id}"
