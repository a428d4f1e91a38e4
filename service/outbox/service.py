"""Outbox use cases: queue a message in the caller's transaction, cancel pending ones.

Neither function commits: the row must become visible exactly when the change that
makes it owed does, so the caller's transaction decides.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db import new_id
from service.outbox.models import CHANNELS, CANCELLED, PENDING, QUEUED, OutboxMessage


# Rows per INSERT: below SQLite's limit of bound parameters (32,766) at 17 columns a row.
INSERT_BATCH = 1000
# Every row of a multi-row insert must name the same columns.
ABOUT_NONE: dict[str, Any] = dict.fromkeys(
    ("incident_id", "session_id", "personnel_id", "facilitator_id", "followup_id", "agency_id"))


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with an email, e.g. an invitation.ics."""

    filename: str
    content_type: str
    data: bytes


def email_payload(*, subject: str, text: str, html: str | None = None, attachments: Sequence[Attachment] = ()) -> dict[str, Any]:
    """The JSON payload of an email (rendered by the caller), attachments in base64."""
    return {
        "subject": subject,
        "text": text,
        "html": html,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "data": base64.b64encode(a.data).decode("ascii")}
            for a in attachments
        ],
    }


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
        rows.append({**ABOUT_NONE, "id": new_id(), **message, "status": PENDING, "attempts": 0, "created_at": now})
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # ON CONFLICT DO NOTHING, not catch-and-rollback: a failed insert would abort the caller's transaction.
    for start in range(0, len(rows), INSERT_BATCH):
        db.execute(insert(OutboxMessage).values(rows[start:start + INSERT_BATCH])
                   .on_conflict_do_nothing(index_elements=["dedup_key"]))


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
