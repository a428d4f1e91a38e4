"""Sessions (defusings, debriefings, individual sessions), their teams and participants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base, UTCDateTime, new_id, utcnow
from service.facilitators.models import Facilitator


class Session(Base):
    """A planned session; `sequence` grows on every change of time, place, team or status."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_incident_group", "incident_id", "group_key", "kind"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    group_key: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mode: Mapped[str] = mapped_column(String(10))
    region: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    participant_count: Mapped[int] = mapped_column(Integer, default=0)
    agenda: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    assignments: Mapped[list["Assignment"]] = relationship(
        back_populates="session", order_by="Assignment.id", cascade="all, delete-orphan",
    )
    participants: Mapped[list["SessionParticipant"]] = relationship(cascade="all, delete-orphan")


class Assignment(Base):
    """A facilitator on a session's team. Times are copied from the session so that
    PostgreSQL can refuse overlapping active assignments of one facilitator by itself."""

    __tablename__ = "assignments"
    __table_args__ = (Index("ix_assignments_facilitator_time", "facilitator_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    facilitator_id: Mapped[int] = mapped_column(ForeignKey("facilitators.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    group_session: Mapped[bool] = mapped_column(Boolean, default=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_reason: Mapped[str | None] = mapped_column(String(32))
    # What the facilitator was last told about the session (see followups.service.session_state).
    notified_state: Mapped[str | None] = mapped_column(String(40))

    session: Mapped[Session] = relationship(back_populates="assignments")
    facilitator: Mapped[Facilitator] = relationship(lazy="joined")


class SessionParticipant(Base):
    """Who is invited to a session (personal link: never shown to supervisors)."""

    __tablename__ = "session_participants"
    __table_args__ = (UniqueConstraint("session_id", "personnel_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    personnel_id: Mapped[int] = mapped_column(ForeignKey("personnel.id", ondelete="CASCADE"), index=True)
