"""Per-request plumbing for views: the database session, the caller and the clock."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from flask import current_app, g, has_request_context, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from service.app import Services
    from service.auth.service import KeyCheck, Principal

log = logging.getLogger(__name__)


def services() -> "Services":
    """The composition root of the running app."""
    return current_app.extensions["debrief"]


# Requests whose writing is one statement (intake stores a report in one, on PostgreSQL): their
# session commits each statement on its own, without the BEGIN and COMMIT of a transaction, and the
# statement checks the caller's key too (service.auth.access): one round trip in all (bench/intake.py).
ONE_STATEMENT_REQUESTS = frozenset({("incidents.Incidents", "POST")})


def db_session() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        factory = services().statement_session_factory
        if factory is None or not has_request_context() or (request.endpoint, request.method) not in ONE_STATEMENT_REQUESTS:
            factory = services().session_factory
        g.db = factory()
    return g.db


def close_db_session(_exc: BaseException | None = None) -> None:
    """Close the request's session, rolling back anything left uncommitted."""
    session = g.pop("db", None)
    if session is None:
        return
    try:
        session.close()
    except DBAPIError as exc:
        # The connection broke after the request's work was over (committed, or discarded anyway):
        # SQLAlchemy has already invalidated it and returned it to the pool, and a failed rollback
        # must not turn the answer already made (a 201, or a 503) into a 500.
        log.warning("database connection lost while closing a request's session (%s)", type(exc).__name__)


def principal() -> "Principal":
    """The authenticated caller of this request (its key checked now if it was left to the request's statement)."""
    if "principal" not in g:
        g.principal = g.pop("pending_key").authenticate(db_session(), now())
    return g.principal


def caller() -> "Principal | KeyCheck":
    """The caller of this request, or its key when the request's own statement is to check it (service.auth.access)."""
    return g.get("pending_key") or principal()


def admitted(principal: "Principal") -> None:
    """Record the caller whose key the request's own statement checked and admitted."""
    g.pop("pending_key", None)
    g.principal = principal


def now() -> datetime:
    """The current time from the injected clock."""
    return services().clock()
