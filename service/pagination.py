"""Opaque cursors for lists ordered by (created_at, id), newest first."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Callable, TypeVar

from service.errors import InvalidInput
from service.fields import in_service_range

T = TypeVar("T")


def encode_cursor(created_at: datetime, ident: object) -> str:
    """A cursor pointing after the row with this creation time and id."""
    raw = json.dumps([created_at.astimezone(timezone.utc).isoformat(), str(ident)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parse_id: Callable[[str], T]) -> tuple[datetime, T]:
    """The (created_at, id) a cursor points after, the id read by `parse_id`; a malformed cursor is a 422."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, ident = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        position = datetime.fromisoformat(created)
        if position.tzinfo is None or not isinstance(ident, str) or not in_service_range(position):
            raise ValueError("not a cursor")
        return position, parse_id(ident)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeError):
        raise InvalidInput("The cursor is not one this API returned.", errors={"cursor": ["Invalid cursor."]}) from None


def row_id(ident: str) -> int:
    """An integer row id as written in a cursor (ASCII digits, within a 32-bit column)."""
    if not (ident.isascii() and ident.isdigit()) or int(ident) > 2**31 - 1:
        raise ValueError("not a row id")
    return int(ident)
