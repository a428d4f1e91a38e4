"""Opaque cursors for lists ordered by (created_at, id), newest first."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone

from service.errors import InvalidInput


def encode_cursor(created_at: datetime, ident: object) -> str:
    """A cursor pointing after the row with this creation time and id."""
    raw = json.dumps([created_at.astimezone(timezone.utc).isoformat(), str(ident)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor points after; a malformed cursor is a 422."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, ident = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        position = datetime.fromisoformat(created)
        if position.tzinfo is None or not isinstance(ident, str):
            raise ValueError("not a cursor")
        return position, ident
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise InvalidInput("The cursor is not one this API returned.", errors={"cursor": ["Invalid cursor."]}) from None
