"""Outbox use cases: queue a message in the caller's transaction, cancel pending ones.

Neither function commits: the row must become visible exactly when the change that
makes it owed does, so the caller's transaction decides.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db import is_postgres, new_id
from service.outbox.models import CHANNELS, CANCELLED, EMAIL, PENDING, QUEUED, OutboxMessage


# Every row of one executemany must name the same columns.
ABOUT_NONE: dict[str, Any] = dict.fromkeys(
    ("incident_id", "session_id", "personnel_id", "facilitator_id", "followup_id", "agency_id"))
# One statement per dialect, built once: SQLAlchemy caches its compiled form, and an executemany
# only binds the rows, where `.values(rows)` built and compiled a fresh statement of every row's
# values on each call. Core on the table, not the ORM entity: the ORM's bulk path converts each
# row again for nothing (the keys are already the columns).
# ON CONFLICT DO NOTHING, not catch-and-rollback: a failed insert would abort the caller's transaction.
_INSERT_POSTGRESQL = postgresql.insert(OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["dedup_key"])
_INSERT_SQLITE = sqlite.insert(OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["dedup_key"])
# An executemany ignores keys that name no column: refuse them, as `.values()` did, rather than drop them.
_COLUMNS = frozenset(OutboxMessage.__table__.columns.keys())


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with an email, e.g. an invitation.ics."""

    filename: str
    content_type: str
    data: bytes


def email_payload(*, subject: str, text: str, html: str | None = None, attachments: Sequence[Attachment] = (),
                  headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON payload of an email (rendered by the caller), attachments in base64, extra headers if any."""
    payload: dict[str, Any] = {
        "subject": subject,
        "text": text,
        "html": html,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "data": base64.b64encode(a.data).decode("ascii")}
            for a in attachments
        ],
    }
    if headers:
        payload["headers"] = dict(headers)
    return payload


def attachments_of(payload: dict[str, Any]) -> list[Attachment]:
    """The attachments an email payload carries."""
    return [
        Attachment(a["filename"], a["content_type"], base64.b64decode(a["data"]))
        for a in payload.get("attachments") or ()
    ]


def queue_message(
    db: Session, *, dedup_key: str, kind: str, channel: str, recipient: str, payload: dict[str, Any],
    now: datetime, due_at: datetime | None = None, **about: Any,
) -> uuid.UUID:
    """Owe a message (in the caller's transaction); the same dedup_key twice keeps the first row."""
    queue_messages(db, [dict(dedup_key=dedup_key, kind=kind, channel=channel, recipient=recipient, payload=payload,
                             due_at=due_at or now, **about)], now=now)
    return db.scalars(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)).one()


def queue_messages(db: Session, messages: Sequence[dict[str, Any]], *, now: datetime) -> None:
    """Owe several messages in one statement; a dedup_key already queued keeps its first row.

    Each message gives dedup_key, kind, channel, recipient, payload and due_at, and may give
    its id and what it is about (incident_id, session_id, personnel_id, facilitator_id, followup_id, agency_id).
    """
    if not messages:
        return
    rows = []
    for message in messages:
        if message["channel"] not in CHANNELS:
            raise ValueError(f"unknown channel {message['channel']!r}")
        if not message.keys() <= _COLUMNS:
            raise ValueError(f"not outbox columns: {sorted(message.keys() - _COLUMNS)}")
        rows.append({**ABOUT_NONE, "id": new_id(), **message, "status": PENDING, "attempts": 0, "created_at": now})
    # A Core statement does not autoflush as the ORM's did: flush here, so the rows still follow the
    # caller's pending changes and a failing flush still fails at this point of the transaction.
    db.flush()
    # The rows are inserted in order, so a dedup_key given twice keeps its first row here too.
    db.execute(_INSERT_POSTGRESQL if is_postgres(db) else _INSERT_SQLITE, rows)


def cancel_pending(db: Session, *where: ColumnElement[bool]) -> int:
    """Cancel the messages matching `where` that no worker has started; returns how many."""
    if not where:
        raise ValueError("cancel_pending needs a condition; it never cancels the whole outbox")
    # A queued row's job finds it cancelled when it claims it, so nothing goes out.
    result = db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status.in_((PENDING, QUEUED)), *where)
        .values(status=CANCELLED)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def get(db: Session, *, id: uuid.UUID) -> OutboxMessage | None:
    """One outbox row by its id."""
    return db.get(OutboxMessage, id)


def recent_emails(db: Session, *, limit: int = 200) -> list[OutboxMessage]:
    """The newest emails owed or sent, newest first (the demo's mailbox)."""
    return list(db.scalars(select(OutboxMessage).where(OutboxMessage.channel == EMAIL)
                           .order_by(OutboxMessage.created_at.desc(), OutboxMessage.due_at.desc()).limit(limit)))


def email(db: Session, message_id: uuid.UUID) -> OutboxMessage | None:
    """One email of the outbox."""
    message = db.get(OutboxMessage, message_id)
    return message if message is not None and message.channel == EMAIL else None
