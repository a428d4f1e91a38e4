"""Agencies: the police services and other first-responder organisations served."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, utcnow


class Agency(Base):
    """An agency: its code, name, IANA time zone and planning-policy overrides."""

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Where planning problems and escalations without a clinician go (a shared mailbox of the CISM team).
    coordinator_email: Mapped[str | None] = mapped_column(String(254))
    # Status events for the agency's own systems, signed per Standard Webhooks with the agency's secret.
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(100))
    # After a rotation the previous secret also signs deliveries for a while, so that receivers can
    # switch to the new one without refusing events in between.
    webhook_previous_secret: Mapped[str | None] = mapped_column(String(100))
    webhook_previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def webhook_secret_set(self) -> bool:
        """Whether webhooks to the agency can be signed."""
        return self.webhook_secret is not None

    def webhook_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign a delivery made now: the current one, and the previous one while it overlaps."""
        return signing_secrets(self.webhook_secret, self.webhook_previous_secret, self.webhook_previous_until, now)


def signing_secrets(current: str | None, previous: str | None, previous_until: datetime | None,
                    now: datetime) -> tuple[str, ...]:
    """The agency's secrets valid at `now`, current first; none without a current secret (no fallback)."""
    if current is None:
        return ()
    if previous is not None and previous_until is not None and now < previous_until:
        return (current, previous)
    return (current,)
