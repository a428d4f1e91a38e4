"""The planner: plans the reports still `received`, together, as they arrive (DESIGN.md section 2).

Intake only stores a report and wakes the planners (PostgreSQL NOTIFY); a planner also polls,
so a lost wake-up costs a poll interval, not a plan. Woken, it lets reports gather, and lets a
surge pass (up to SURGE_HOLD_SECONDS) before it plans. A pass takes every incident still
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
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from service.errors import Conflict
from service.incidents.models import Incident
from service.incidents.service import flag_unplanned
from service.sessions import service as sessions

if TYPE_CHECKING:
    from service.app import Services

log = logging.getLogger("service.planner")

BATCH = 100
# CP-SAT's limit per batch, in deterministic seconds (a count of work: the same plan on a busy machine),
# and in wall seconds: the pool's lock is held meanwhile, and other writers wait for it at most
# lock_timeout (5 s) an attempt before they try again.
SOLVE_SECONDS = 2.0
SOLVE_WALL_SECONDS = 4.0
# Passes in a row that found the pool busy before the reports are planned one at a time.
BUSY_PASSES = 3
# The database is away (or the connection broke): the reports wait, `received`, for the next pass.
OUTAGES = (OperationalError, InterfaceError)
# Between passes when nothing wakes the planner: PostgreSQL wakes it; SQLite cannot, so it looks often.
POLL_SECONDS = {"postgresql": 2.0, "sqlite": 0.25}
# Once woken, how long the planner lets a surge's reports gather before it plans them: reports that
# come together are planned together (a plan committed is announced, and stays), for half a second
# of latency. Reports stored during a pass have waited for it: their gather counts from its start,
# so that a report waits the longer of half a second and the pass under way, then its own pass
# (not the pass under way, half a second, then its own).
GATHER_SECONDS = 0.5
# A surge: reports stored at this many per gather (100 a second), or more. The planner then lets
# it pass, gathering again while it lasts, for up to SURGE_HOLD_SECONDS: every CPU second spent planning
# during a surge is taken from intake's answers to dispatch (bench/intake.py), and a surge planned
# once it has passed is planned as a whole. Reports come one by one at 10 a second: never held.
SURGE_REPORTS = 50
SURGE_HOLD_SECONDS = 20.0
# The planner process's CPU priority below intake's (os.nice): in a surge, reports are accepted
# first and planned with the CPU left (bench/intake.py); at rest the planner has the CPU alone.
NICENESS = 10


class PoolBusy(Exception):
    """A pass could not take the pool's lock in time: the reports wait for the next one."""


def plan_pending(services: Services, *, batch: int = BATCH, solve_seconds: float = SOLVE_SECONDS,
                 one_by_one: bool = False) -> int:
    """Plan every report still `received`, a batch at a time (or one at a time); how many were planned."""
    total = 0
    while True:
        try:
            planned = _pass(services, batch=batch, solve_seconds=solve_seconds, one_by_one=one_by_one)
        except PoolBusy:
            return total
        total += planned
        if planned < batch:
            return total


def _pass(services: Services, *, batch: int, solve_seconds: float, one_by_one: bool = False) -> int:
    with services.session_factory() as db:
        if one_by_one:
            return _one_by_one(services, db, batch=batch)
        try:
            return len(sessions.plan_received(db, now=services.clock(), limit=batch, solve_seconds=solve_seconds,
                                              solve_wall_seconds=SOLVE_WALL_SECONDS))
        except OUTAGES:
            raise
        except Conflict:
            # Another planner's turn, or a long change: the reports wait for the next pass.
            db.rollback()
            log.warning("the pool was busy; planning waits for the next pass")
            raise PoolBusy() from None
        except Exception as exc:  # noqa: BLE001 - a report that breaks the batch must not hold back the others
            db.rollback()
            # The type only, as everywhere: an exception's text may carry what a report holds.
            log.error("planning a batch failed (%s); planning its reports one by one", type(exc).__name__)
        return _one_by_one(services, db, batch=batch)


def _one_by_one(services: Services, db: Any, *, batch: int) -> int:
    """Plan the waiting reports alone; flag those that still cannot be planned."""
    ids: list[uuid.UUID] = list(db.scalars(
        select(Incident.id).where(Incident.status == "received").order_by(*sessions.SURGE_ORDER).limit(batch)
    ))
    db.rollback()
    for incident_id in ids:
        now = services.clock()
        try:
            sessions.plan(db, incident_id=incident_id, now=now)
            continue
        except OUTAGES:
            raise
        except Conflict:
            db.rollback()
            reason = "planning_contention"
        except Exception as exc:  # noqa: BLE001 - flagged below, for a coordinator to see
            db.rollback()
            log.error("planning incident %s failed (%s)", incident_id, type(exc).__name__)
            reason = "planning_failed"
        _flag(db, incident_id=incident_id, reason=reason, now=now)
    return len(ids)


def _flag(db: Any, *, incident_id: uuid.UUID, reason: str, now: Any) -> None:
    """Flag a report that cannot be planned; if even that fails, at least take it out of `received`."""
    try:
        flag_unplanned(db, incident_id=incident_id, reason=reason, now=now)
        return
    except OUTAGES:
        raise
    except Exception as exc:  # noqa: BLE001 - the last resort below must still run
        db.rollback()
        log.error("flagging incident %s failed (%s)", incident_id, type(exc).__name__)
    db.execute(update(Incident).where(Incident.id == incident_id, Incident.status == "received").values(
        status="needs_attention", updated_at=now,
        problems=[{"group": None, "kind": "debriefing", "reasons": [reason]}]))
    db.commit()


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
        woken = self._notified(stop, self.poll, first_only=True)
        if woken is None:
            stop.wait(self.poll)  # PostgreSQL went away: poll until it is back
            return False
        return woken > 0

    def gather(self, stop: threading.Event, seconds: float) -> int:
        """Wait `seconds` (less if `stop` is set) and count the reports stored meanwhile, or before if not yet counted
        (0 seconds: those only; 0 without NOTIFY)."""
        if self._connection is None:
            stop.wait(seconds)
            return 0
        return self._notified(stop, seconds, first_only=False) or 0

    def _notified(self, stop: threading.Event, seconds: float, *, first_only: bool) -> int | None:
        """Wake-ups received within `seconds` (returning at the first if `first_only`); None when the connection broke."""
        received = 0
        deadline = time.monotonic() + seconds
        try:
            while not stop.is_set():
                # A short timeout keeps `stop` noticed; none (0 seconds) takes those already received.
                left = min(max(deadline - time.monotonic(), 0.0), 1.0)
                for _ in self._connection.notifies(timeout=left, stop_after=1 if first_only else None):
                    received += 1
                    if first_only:
                        return received
                if time.monotonic() >= deadline:
                    break
        except Exception as exc:  # noqa: BLE001 - PostgreSQL went away
            log.warning("planner wake-ups lost (%s); polling", type(exc).__name__)
            self.close()
            return None
        return received

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
    busy = 0
    try:
        while not stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                return  # started by `debrief serve`, which is gone
            wake_ups.listen()
            started = time.monotonic()
            try:
                planned = _pass(services, batch=BATCH, solve_seconds=SOLVE_SECONDS, one_by_one=busy >= BUSY_PASSES)
                busy = 0
            except PoolBusy:
                busy += 1
                planned = 0
            except Exception as exc:  # noqa: BLE001 - an outage must not end the planner
                log.warning("planner pass failed (%s); retrying", type(exc).__name__)
                stop.wait(wake_ups.poll)
                continue
            if planned >= BATCH:
                continue  # more are waiting
            # Reports stored during the pass have waited since it began, at most: their gathering counts from there.
            waiting = wake_ups.gather(stop, 0.0)
            if waiting or wake_ups.wait(stop):
                let_surge_pass(lambda seconds: wake_ups.gather(stop, seconds), clock=time.monotonic, seconds=gather,
                               waited=time.monotonic() - started if waiting else 0.0, waiting=waiting)
    finally:
        wake_ups.close()


def let_surge_pass(gather: Callable[[float], int], *, clock: Callable[[], float], seconds: float = GATHER_SECONDS,
                   waited: float = 0.0, waiting: int = 0, surge: int = SURGE_REPORTS,
                   hold: float = SURGE_HOLD_SECONDS) -> int:
    """Let reports gather for `seconds`, counting the `waited` seconds in which `waiting` were stored (during the
    last pass); while they come at a surge's rate (`surge` in `seconds`), gather again, for at most `hold` seconds.

    `gather(s)` waits s seconds and returns the reports stored meanwhile. Returns the number of gathers.
    """
    until = clock() + hold
    window = max(seconds, waited)
    stored = waiting + gather(max(0.0, seconds - waited))
    gathers = 1
    while stored * seconds >= surge * window and clock() < until:
        stored, window = gather(seconds), seconds
        gathers += 1
    return gathers
