"""The outbox table: one row per message owed, the system of record for delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, new_id

EMAIL = "email"
WEBHOOK = "webhook"
CHANNELS = (EMAIL, WEBHOOK)

PENDING = "pending"  # owed; the relay hands it to a worker once due_at has passed
QUEUED = "queued"  # handed to the transport (an RQ job whose id is the row's id)
SENDING = "sending"  # a worker claimed it and is talking to the receiver
SENT = "sent"
DEAD = "dead"  # every attempt failed; left for a coordinator to see
CANCELLED = "cancelled"
STATUSES = (PENDING, QUEUED, SENDING, SENT, DEAD, CANCELLED)
FINAL = frozenset({SENT, DEAD, CANCELLED})
# The payload of a message whose body was erased: once sent (see workers.jobs), or by retention.
ERASED_PAYLOAD: dict[str, Any] = {}

# A participant who needs a clinician, for the clinician (or the coordinators when none could be
# assigned): never cancelled by a re-plan, and claimed for delivery before anything else that is due.
ESCALATIONS = frozenset({"escalation", "escalation_unassigned"})


class OutboxMessage(Base):
    """A message owed to one recipient; its id is the message id every delivery carries."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due_at", "status", "due_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Unique: queuing the same message twice (a retried request, a re-plan) is a no-op.
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10))
    # An email address or a URL: personal data, never logged and never copied into last_error.
    recipient: Mapped[str] = mapped_column(String(2048))
    # The body: emptied (ERASED_PAYLOAD) once the message is sent, except in demo mode.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the message is about, so that a change can cancel what is no longer owed and so
    # that retention can find it. Plain ids, not foreign keys: a row outlives nothing it names.
    incident_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    personnel_id: Mapped[int | None] = mapped_column(Integer, index=True)
    facilitator_id: Mapped[int | None] = mapped_column(Integer)
    followup_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    agency_id: Mapped[int | None] = mapped_column(Integer)
