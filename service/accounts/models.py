"""Console accounts, their one-time sign-in links and their sessions.

Facilitators have no account: they sign in with their roster email, so a link and a session
name either an account or a facilitator. Secrets (a link's token, a session's id) are kept only
as SHA-256 hashes: they carry 256 random bits, so a slow hash would add nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.agencies.models import Agency
from service.db import Base, UTCDateTime

COORDINATOR = "coordinator"
SUPERVISOR = "supervisor"
ADMIN = "admin"
FACILITATOR = "facilitator"
ACCOUNT_ROLES = (COORDINATOR, SUPERVISOR, ADMIN)
# Facilitators sign in with their roster email; they never hold an account.
CONSOLE_ROLES = (*ACCOUNT_ROLES, FACILITATOR)


class Account(Base):
    """A member of the CISM team or a supervisor who works in the console."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-case: one account per address, whatever its case when typed.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # Coordinators and supervisors work for one agency; admins for none.
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_signin_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    agency: Mapped[Agency | None] = relationship(lazy="joined")


class SigninLink(Base):
    """A one-time sign-in link; a request for an unknown address leaves one that opens nothing."""

    __tablename__ = "signin_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"), index=True)
    # Where to go once signed in: a path of this site, checked when the link was asked for.
    next_path: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A signed-in browser: the cookie holds the id, the table only its hash."""

    __tablename__ = "console_sessions"
    __table_args__ = (CheckConstraint("(account_id IS NULL) <> (facilitator_id IS NULL)", name="one_person"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Sliding expiry: a session unused for IDLE_TIMEOUT is over.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
