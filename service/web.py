"""Per-request plumbing for views: the database session, the caller and the clock."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask import current_app, g
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from service.app import Services
    from service.auth.service import Principal


def services() -> "Services":
    """The composition root of the running app."""
    return current_app.extensions["debrief"]


def db_session() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = services().session_factory()
    return g.db


def close_db_session(_exc: BaseException | None = None) -> None:
    """Close the request's session, rolling back anything left uncommitted."""
    session = g.pop("db", None)
    if session is not None:
        session.close()


def principal() -> "Principal":
    """The authenticated caller of this request."""
    return g.principal


def now() -> datetime:
    """The current time from the injected clock."""
    return services().clock()
