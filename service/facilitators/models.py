"""Facilitators: the peers and clinicians of the CISM team, with their availability."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.agencies.models import Agency
from service.db import Base, UTCDateTime, utcnow


class Facilitator(Base):
    """A peer supporter or clinician; agency None means the provincial pool."""

    __tablename__ = "facilitators"
    __table_args__ = (Index("ix_facilitators_email", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(10))
    unit: Mapped[str | None] = mapped_column(String(64))
    # The facilitator's own personnel id in their agency: finds them among an incident's personnel.
    external_id: Mapped[str | None] = mapped_column(String(64))
    languages: Mapped[list[str]] = mapped_column(JSON)
    regions: Mapped[list[str]] = mapped_column(JSON)
    virtual_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    certifications: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    weekly: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    exceptions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # SHA-256 of the secret in the calendar feed's URL: the secret is shown once, when issued.
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    agency: Mapped[Agency | None] = relationship(lazy="joined")
