"""Incidents reported by dispatch, the personnel involved, and idempotency records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.agencies.models import Agency
from service.db import Base, UTCDateTime, new_id, utcnow


class Incident(Base):
    """A critical incident; `external_id` is the CAD system's own number, unique per agency."""

    __tablename__ = "incidents"
    __table_args__ = (UniqueConstraint("agency_id", "external_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    region: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="received", index=True)
    # Machine-readable reasons why parts of the plan are missing: [{group, kind, reasons}].
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # SHA-256 of the canonical first report: tells a retry (same body) from a conflict.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # What the coordinators were last told about the plan's problems (a digest; None: nothing yet).
    alerted_state: Mapped[str | None] = mapped_column(String(40))
    # When retention erased its participants' personal data (see service.retention).
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # After erasure: the follow-ups' clinical outcomes as counts, attached to no one.
    retained_outcomes: Mapped[dict[str, int] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    agency: Mapped[Agency] = relationship(lazy="joined")
    personnel: Mapped[list["Personnel"]] = relationship(
        back_populates="incident", order_by="Personnel.id", cascade="all, delete-orphan",
    )


class Personnel(Base):
    """A person involved in an incident (personal data: never shown to supervisors)."""

    __tablename__ = "personnel"
    __table_args__ = (UniqueConstraint("incident_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(20))
    unit: Mapped[str | None] = mapped_column(String(64))
    exposure: Mapped[str] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(2))
    # Set when the person opts out of all contact: nothing more is sent to them.
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    incident: Mapped[Incident] = relationship(back_populates="personnel")


class IdempotencyRecord(Base):
    """An `Idempotency-Key` seen from an agency, and what it produced."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("agency_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    status_code: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
