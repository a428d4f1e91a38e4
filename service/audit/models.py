"""The audit log: append-only, one row per read of participant-level data and per console sign-in or change."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime


class AuditEntry(Base):
    """Who read which incident's participant-level data, or signed in or out, or changed an account, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The API key (its id and role), or the participant themself through their link, or a person
    # of the console (an account, or a facilitator by their roster id). Plain ids: a row outlives them.
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    account_id: Mapped[int | None] = mapped_column(Integer)
    facilitator_id: Mapped[int | None] = mapped_column(Integer)
    actor_role: Mapped[str] = mapped_column(String(20))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    action: Mapped[str] = mapped_column(String(40))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
