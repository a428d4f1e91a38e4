"""Opaque cursors for lists ordered by (created_at, id), newest first."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

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


def newest_first(db: Session, query: Select[tuple[T]], *, at: Any, id: Any, limit: int, cursor: str | None,
                 parse_id: Callable[[str], Any]) -> tuple[list[T], str | None]:
    """One page of `query`'s rows ordered by (at, id) descending, and the cursor of the next page (None at the end)."""
    if cursor:
        position, after = decode_cursor(cursor, parse_id)
        query = query.where(or_(at < position, and_(at == position, id < after)))
    rows = list(db.scalars(query.order_by(at.desc(), id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return rows, None
    last = rows[-1]
    return rows, encode_cursor(getattr(last, at.key), getattr(last, id.key))
