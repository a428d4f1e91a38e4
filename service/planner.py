"""The planner: plans the reports still `received`, together, as they arrive (DESIGN.md section 2).

Intake only stores a report and wakes the planners (PostgreSQL NOTIFY); a planner also polls,
so a lost wake-up costs a poll interval, not a plan. A pass takes every incident still
`received` (up to a batch) under the pool's lock and commits their plans together: a planner
killed mid-batch leaves them `received` for the next pass, and planners side by side take
turns. A batch that cannot be planned is planned one report at a time, and a report that
still cannot be is flagged `needs_attention`: a report never stays `received`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from service.errors import Conflict
from service.incidents.models import Incident
from service.incidents.service import flag_unplanned
from service.sessions import service as sessions

if TYPE_CHECKING:
    from service.app import Services

log = logging.getLogger("service.planner")

BATCH = 100
# CP-SAT's limit per batch, in deterministic seconds (a count of work: the same plan on a busy machine).
SOLVE_SECONDS = 2.0
# Between passes when nothing wakes the planner: PostgreSQL wakes it; SQLite cannot, so it looks often.
POLL_SECONDS = {"postgresql": 2.0, "sqlite": 0.25}
# Once woken, how long the planner lets a surge's reports gather before it plans them: reports that
# come together are planned together (a plan committed is announced, and stays), for half a second
# of latency.
GATHER_SECONDS = 0.5


def plan_pending(services: Services, *, batch: int = BATCH, solve_seconds: float = SOLVE_SECONDS) -> int:
    """Plan every report still `received`, a batch at a time; how many were planned."""
    total = 0
    while True:
        planned = _pass(services, batch=batch, solve_seconds=solve_seconds)
        total += planned
        if planned < batch:
            return total


def _pass(services: Services, *, batch: int, solve_seconds: float) -> int:
    now = services.clock()
    with services.session_factory() as db:
        try:
            return len(sessions.plan_received(db, now=now, limit=batch, solve_seconds=solve_seconds))
        except DBAPIError:
            raise  # the database is away: the reports wait, `received`, for the next pass
        except Conflict:
            # The pool stayed busy (another planner's turn, a long change): the reports wait for the next pass.
            db.rollback()
            log.warning("the pool was busy; planning waits for the next pass")
            return 0
        except Exception:
            db.rollback()
            log.exception("planning a batch failed; planning its reports one by one")
        return _one_by_one(services, db, batch=batch)


def _one_by_one(services: Services, db: Any, *, batch: int) -> int:
    """Plan the waiting reports alone; flag those that still cannot be planned."""
    ids: list[uuid.UUID] = list(db.scalars(
        select(Incident.id).where(Incident.status == "received").order_by(Incident.occurred_at, Incident.id).limit(batch)
    ))
    db.rollback()
    for incident_id in ids:
        now = services.clock()
        try:
            sessions.plan(db, incident_id=incident_id, now=now)
            continue
        except DBAPIError:
            raise
        except Conflict:
            db.rollback()
            reason = "planning_contention"
        except Exception:
            db.rollback()
            log.exception("planning incident %s failed", incident_id)
            reason = "planning_failed"
        flag_unplanned(db, incident_id=incident_id, reason=reason, now=now)
    return len(ids)


class WakeUps:
    """Waits for intake's NOTIFY on PostgreSQL, or for the poll interval; never longer than the interval."""

    def __init__(self, database_url: str, *, poll: float) -> None:
        self.poll = poll
        url = make_url(database_url)
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False) \
            if url.get_backend_name() == "postgresql" else None
        self._connection: Any = None

    def listen(self) -> bool:
        """Listen for intake's wake-ups from now on (before a pass, so none is missed during it)."""
        return self._conninfo is not None and self._listening()

    def wait(self, stop: threading.Event) -> bool:
        """Wait until a report is stored, the poll interval has passed, or soon after `stop` is set; True when woken."""
        if not self.listen():
            stop.wait(self.poll)
            return False
        deadline = time.monotonic() + self.poll
        try:
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                # A short timeout keeps `stop` noticed; the generator ends at the first notification.
                for _ in self._connection.notifies(timeout=min(left, 1.0), stop_after=1):
                    return True
        except Exception as exc:  # noqa: BLE001 - PostgreSQL went away: poll until it is back
            log.warning("planner wake-ups lost (%s); polling", type(exc).__name__)
            self.close()
            stop.wait(self.poll)
        return False

    def _listening(self) -> bool:
        if self._connection is not None:
            return True
        import psycopg

        try:
            self._connection = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
            self._connection.execute(f"LISTEN {sessions.PLANNER_CHANNEL}")
        except psycopg.Error as exc:
            log.warning("cannot listen for reports (%s); polling", type(exc).__name__)
            self.close()
            return False
        return True

    def close(self) -> None:
        """Drop the listening connection."""
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


def run_planner(services: Services, *, stop: threading.Event, poll: float | None = None,
                gather: float = GATHER_SECONDS, parent_pid: int | None = None) -> None:
    """Plan pending reports until `stop` is set (or the parent process is gone), woken by intake."""
    backend = make_url(services.config.database_url).get_backend_name()
    wake_ups = WakeUps(services.config.database_url, poll=poll or POLL_SECONDS.get(backend, 1.0))
    try:
        while not stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                return  # started by `debrief serve`, which is gone
            wake_ups.listen()
            try:
                plan_pending(services)
            except Exception as exc:  # noqa: BLE001 - an outage must not end the planner
                log.warning("planner pass failed (%s); retrying", type(exc).__name__)
                stop.wait(wake_ups.poll)
                continue
            if wake_ups.wait(stop):
                stop.wait(gather)
    finally:
        wake_ups.close()
