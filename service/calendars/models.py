"""Rendered feed events, kept so that a feed is assembled from stored text rather than rendered."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


class FeedEvent(Base):
    """The VEVENT of one assignment as last rendered, with a digest of everything it was rendered from.

    A cache: any row may be missing or stale (its digest then differs) and is rendered again.
    It holds what the feed shows and nothing more: no participant or incident data.
    """

    __tablename__ = "feed_events"

    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True)
    rendered_from: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
