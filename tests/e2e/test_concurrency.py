"""Concurrent writers over a tight facilitator pool: gunicorn (4 workers) on PostgreSQL, over HTTP.

Dispatch systems race each other with new, repeated and conflicting reports while facilitators
decline and change their availability and a coordinator reschedules. Whatever interleaving the
server picks, the database must end up consistent: no facilitator double-booked, no incident
twice, no session outside its window, nothing answered 2xx missing, and never a 5xx.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import wipe
from tests.e2e.conftest import Answer, Server, base_env, create_keys, issue_key, start_server, stop, wait_until_planned
from tests.factories import EVERY_DAY, facilitator_body, incident_body, person

pytestmark = pytest.mark.e2e

AGENCY = "metro"
ZONE_NAME = "America/Toronto"
ZONE = ZoneInfo(ZONE_NAME)
DEBRIEFING = timedelta(minutes=150)
BUFFER = "60 minutes"


@dataclass
class Call:
    """One request of the load and the answer it got."""

    what: str
    status: int
    body: Any


class Load:
    """Runs requests on many threads at once, released together, and keeps every answer."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def run(self, requests: list[tuple[str, Callable[[], Answer]]]) -> list[Call]:
        """Send all `requests` in parallel (one thread each, started at the same instant)."""
        barrier = threading.Barrier(len(requests))

        def send(what: str, request: Callable[[], Answer]) -> Call:
            barrier.wait()
            answer = request()
            body = answer.json() if answer.body and answer.headers.get("Content-Type", "").endswith("json") else None
            return Call(what, answer.status, body)

        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            calls = list(pool.map(lambda item: send(*item), requests))
        with self._lock:
            self.calls.extend(calls)
        return calls

    def statuses(self, what: str) -> Counter:
        """How many answers of each status the requests named `what` got."""
        return Counter(call.status for call in self.calls if call.what == what)


def local(day: date, at: time) -> datetime:
    """A wall-clock time of the agency as a UTC instant."""
    return datetime.combine(day, at, tzinfo=ZONE).astimezone(timezone.utc)


def debriefing_starts(occurred_at: datetime, not_before: datetime) -> list[datetime]:
    """Every start the rules allow a debriefing of an incident: 24-72 h after it, 08:00-18:30 on the half hour."""
    opens, closes = occurred_at + timedelta(hours=24), occurred_at + timedelta(hours=72)
    starts = []
    day = opens.astimezone(ZONE).date()
    while day <= closes.astimezone(ZONE).date():
        for minutes in range(8 * 60, 18 * 60 + 31, 30):
            start = local(day, time(minutes // 60, minutes % 60))
            if start >= max(opens, not_before) and start + DEBRIEFING <= closes:
                starts.append(start)
        day += timedelta(days=1)
    return starts


def exception_over(day: date) -> dict[str, list]:
    """Availability every day 07:00-22:00 except one whole local day."""
    start, end = local(day, time(0)), local(day + timedelta(days=1), time(0))
    return {"weekly": EVERY_DAY, "exceptions": [{"start": start.isoformat(), "end": end.isoformat()}]}


def test_parallel_reports_declines_and_reschedules_keep_the_plan_consistent(postgres_url, tmp_path):
    env = base_env(DATABASE_URL=postgres_url)
    engine = create_engine(postgres_url)
    rng = random.Random(7)
    process = None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            booting = pool.submit(start_server, ["--workers", "4"], env, tmp_path)
            admin = issue_key(env, "admin")
            process, output, port = booting.result()
        server = Server(f"http://127.0.0.1:{port}", process, output)
        created = server.request("POST", "/v1/agencies", key=admin,
                                 body={"code": AGENCY, "name": "Metro Police", "timezone": ZONE_NAME})
        assert created.status == 201, created.body
        dispatch, coordinator = create_keys(postgres_url, [("dispatch", AGENCY, None), ("coordinator", AGENCY, None)])

        # A tight pool: two clinicians and three peers, each at most one group session a day.
        facilitator_ids = []
        for n, kind in enumerate(("clinician", "clinician", "peer", "peer", "peer")):
            answer = server.request("POST", "/v1/facilitators", body=facilitator_body(n, kind=kind), key=coordinator)
            assert answer.status == 201, answer.body
            facilitator_ids.append(answer.json()["id"])
        facilitator_keys = dict(zip(facilitator_ids, create_keys(
            postgres_url, [("facilitator", AGENCY, fid) for fid in facilitator_ids])))

        now = datetime.now(timezone.utc)
        occurred_at = (now - timedelta(hours=1)).replace(microsecond=0)
        first_day = (occurred_at + timedelta(hours=24)).astimezone(ZONE).date()
        load = Load(server)

        def report(what: str, body: dict, headers: dict | None = None) -> tuple[str, Callable[[], Answer]]:
            return what, lambda: server.request("POST", "/v1/incidents", body=body, key=dispatch,
                                                headers={"Prefer": "wait=20", **(headers or {})})

        def report_body(external_id: str, **overrides: Any) -> dict:
            people = [person(n, email=f"{external_id.lower()}-{n}@metro.example.org") for n in range(1, 4)]
            return incident_body(external_id, occurred_at=occurred_at.isoformat(), personnel=people, **overrides)

        # Round 1: distinct reports, a report sent six times, six retries under one Idempotency-Key,
        # four conflicting versions of one report, and facilitators taking days off, all at once.
        distinct = [report("distinct", report_body(f"CAD-{n:02d}")) for n in range(8)]
        repeated = [report("repeated", report_body("CAD-REPEAT")) for _ in range(6)]
        keyed = [report("keyed", report_body("CAD-KEYED"), {"Idempotency-Key": "cad-retry-1"}) for _ in range(6)]
        versions = [report_body("CAD-CONFLICT", severity=s) for s in (1, 2, 3)]
        versions.append(report_body("CAD-CONFLICT", type="line_of_duty_death"))
        conflicting = [report("conflicting", body) for body in versions]
        days_off = [
            ("availability", lambda fid=fid, day=day: server.request(
                "PUT", f"/v1/facilitators/{fid}/availability", body=exception_over(day), key=facilitator_keys[fid]))
            for fid, day in ((facilitator_ids[0], first_day + timedelta(days=1)), (facilitator_ids[2], first_day))
        ]
        round_one = load.run(distinct + repeated + keyed + conflicting + days_off)
        assert not [c for c in round_one if c.status >= 500], server.output.read_text()

        assert load.statuses("distinct") == {201: 8}
        assert load.statuses("repeated") == {201: 1, 200: 5}
        assert set(load.statuses("keyed")) <= {200, 201} and load.statuses("keyed")[201] >= 1
        assert load.statuses("conflicting") == {201: 1, 409: 3}
        assert set(load.statuses("availability")) <= {200, 409} and load.statuses("availability")[200] >= 1
        for what in ("repeated", "keyed"):
            assert len({c.body["id"] for c in load.calls if c.what == what}) == 1
        winner = next(c for c in load.calls if c.what == "conflicting" and c.status == 201)
        assert all(c.body["incident_id"] == winner.body["id"] for c in load.calls if c.what == "conflicting" and c.status == 409)
        wait_until_planned(engine)

        with engine.connect() as conn:
            scheduled = conn.execute(text(
                "SELECT s.id, i.occurred_at, s.starts_at, a.facilitator_id FROM sessions s "
                "JOIN incidents i ON i.id = s.incident_id JOIN assignments a ON a.session_id = s.id AND a.active "
                "WHERE s.status = 'scheduled' AND s.kind = 'debriefing' ORDER BY s.starts_at, a.facilitator_id"
            )).all()
        teams: dict[Any, list[int]] = defaultdict(list)
        timing = {}
        for session_id, incident_occurred, starts_at, facilitator_id in scheduled:
            teams[session_id].append(facilitator_id)
            timing[session_id] = (incident_occurred, starts_at)
        assert len(teams) >= 2, "the pool should place some debriefings before running out"

        # Round 2: every team member of every session declines, while the coordinator moves each
        # session (half on its own day, half anywhere in its window), two more facilitators take a
        # day off, and dispatch keeps reporting.
        declines = [
            ("decline", lambda sid=sid, fid=fid: server.request("POST", f"/v1/sessions/{sid}/decline", key=facilitator_keys[fid]))
            for sid, team in teams.items() for fid in team
        ]
        moves, targets = [], {}
        for n, (sid, (incident_occurred, starts_at)) in enumerate(timing.items()):
            options = [s for s in debriefing_starts(incident_occurred, now + timedelta(minutes=5)) if s != starts_at]
            if n % 2 == 0:
                options = [s for s in options if s.astimezone(ZONE).date() == starts_at.astimezone(ZONE).date()] or options
            target = targets[str(sid)] = rng.choice(options)
            moves.append(("reschedule", lambda sid=sid, target=target: server.request(
                "POST", f"/v1/sessions/{sid}/reschedule", body={"starts_at": target.astimezone(ZONE).isoformat()},
                key=coordinator)))
        more_days_off = [
            ("availability", lambda fid=fid, day=day: server.request(
                "PUT", f"/v1/facilitators/{fid}/availability", body=exception_over(day), key=facilitator_keys[fid]))
            for fid, day in ((facilitator_ids[1], first_day), (facilitator_ids[3], first_day + timedelta(days=1)))
        ]
        more_reports = [report("distinct", report_body(f"CAD-{n:02d}")) for n in range(8, 12)]
        more_reports += [report("repeated", report_body("CAD-REPEAT")) for _ in range(3)]
        round_two = load.run(declines + moves + more_days_off + more_reports)
        assert not [c for c in round_two if c.status >= 500], server.output.read_text()

        # A decline is answered with a replacement or a short team (200); it may also find the facilitator
        # already taken off the team by another change (404), or lose every retry to other writers (409).
        assert set(load.statuses("decline")) <= {200, 404, 409} and load.statuses("decline")[200] >= 1
        assert set(load.statuses("reschedule")) <= {200, 409}
        moved = [c.body for c in load.calls if c.what == "reschedule" and c.status == 200]
        assert all(datetime.fromisoformat(b["starts_at"]) == targets[b["id"]] for b in moved)
        assert set(load.statuses("availability")) <= {200, 409}
        assert load.statuses("distinct") == {201: 12}
        assert load.statuses("repeated") == {201: 1, 200: 8}
        # A 409 says why: a conflicting report, a team that cannot take the new time, or a session no longer open.
        assert all(c.body and c.body["status"] == 409 and c.body["detail"] for c in load.calls if c.status == 409)

        # Everything answered 2xx is there, exactly once per report.
        answered = defaultdict(set)
        for call in load.calls:
            if call.what in ("distinct", "repeated", "keyed", "conflicting") and call.status in (200, 201):
                answered[call.body["external_id"]].add(call.body["id"])
        assert all(len(ids) == 1 for ids in answered.values()), answered
        wait_until_planned(engine)
        with engine.connect() as conn:
            stored = {external_id: str(id) for id, external_id in conn.execute(text("SELECT id, external_id FROM incidents"))}
            duplicates = conn.execute(text(
                "SELECT agency_id, external_id FROM incidents GROUP BY agency_id, external_id HAVING count(*) > 1")).all()
            # Planners take turns on the pool, so losing a race never leaves an incident unplanned.
            contended = conn.execute(text(
                "SELECT external_id FROM incidents WHERE CAST(problems AS TEXT) LIKE '%planning_contention%'")).all()
        assert duplicates == []
        assert contended == []
        assert stored == {external_id: ids.pop() for external_id, ids in answered.items()}

        assert_plan_is_consistent(engine)
    finally:
        if process is not None:
            stop(process)
        wipe(engine)
        engine.dispose()




def booked(assignment: str = "a", session: str = "s") -> str:
    """The bookings that count: active assignments of scheduled sessions, under the given aliases."""
    return (f"assignments {assignment} JOIN sessions {session} ON {session}.id = {assignment}.session_id "
            f"AND {session}.status = 'scheduled' AND {assignment}.active")


BOOKED = booked()


def assert_plan_is_consistent(engine) -> None:
    """The hard rules, read back from the database after the load."""
    with engine.connect() as conn:
        # One facilitator on two sessions closer than the 60-minute buffer, let alone overlapping.
        double_booked = conn.execute(text(
            f"SELECT a.facilitator_id, a.session_id, b.session_id FROM {BOOKED} "
            f"JOIN {booked('b', 't')} ON b.facilitator_id = a.facilitator_id AND b.id > a.id "
            f"WHERE a.starts_at < b.ends_at + interval '{BUFFER}' AND b.starts_at < a.ends_at + interval '{BUFFER}'"
        )).all()
        assert double_booked == []
        over_daily_cap = conn.execute(text(
            f"SELECT a.facilitator_id, (a.starts_at AT TIME ZONE '{ZONE_NAME}')::date, count(*) FROM {BOOKED} "
            "WHERE a.group_session GROUP BY 1, 2 HAVING count(*) > 1"
        )).all()
        assert over_daily_cap == []
        # The exclusion constraint reads the assignment's own copy of its session's times.
        stale_copies = conn.execute(text(
            f"SELECT a.id FROM {BOOKED} WHERE a.starts_at <> s.starts_at OR a.ends_at <> s.ends_at")).all()
        assert stale_copies == []
        held_by_cancelled = conn.execute(text(
            "SELECT a.id FROM assignments a JOIN sessions s ON s.id = a.session_id "
            "WHERE a.active AND s.status = 'cancelled'")).all()
        assert held_by_cancelled == []
        outside_window = conn.execute(text(
            "SELECT s.id, s.kind, s.starts_at, s.ends_at, i.occurred_at FROM sessions s JOIN incidents i ON i.id = s.incident_id "
            "WHERE s.status = 'scheduled' AND ("
            " (s.kind = 'debriefing' AND (s.starts_at < i.occurred_at + interval '24 hours'"
            "   OR s.ends_at > i.occurred_at + interval '72 hours'))"
            " OR (s.kind = 'defusing' AND (s.starts_at < i.occurred_at OR s.ends_at > i.occurred_at + interval '8 hours'))"
            f" OR extract(minute FROM s.starts_at AT TIME ZONE '{ZONE_NAME}') NOT IN (0, 30)"
            f" OR (s.starts_at AT TIME ZONE '{ZONE_NAME}')::time < time '08:00'"
            f" OR (s.ends_at AT TIME ZONE '{ZONE_NAME}')::time > time '21:00'"
            f" OR (s.ends_at AT TIME ZONE '{ZONE_NAME}')::date <> (s.starts_at AT TIME ZONE '{ZONE_NAME}')::date)"
        )).all()
        assert outside_window == []
        # No one works during a period they took off, nor inside the buffer around it.
        bookings = conn.execute(text(
            f"SELECT a.facilitator_id, a.session_id, a.starts_at, a.ends_at, f.exceptions FROM {BOOKED} "
            "JOIN facilitators f ON f.id = a.facilitator_id"
        )).all()
        for facilitator_id, session_id, starts_at, ends_at, exceptions in bookings:
            for period in exceptions:
                start, end = datetime.fromisoformat(period["start"]), datetime.fromisoformat(period["end"])
                assert not (start < ends_at + timedelta(minutes=60) and starts_at - timedelta(minutes=60) < end), (
                    facilitator_id, session_id, period)
        # An incident that says `planned` has full teams: a clinician, a peer, two to four people.
        teams = conn.execute(text(
            "SELECT s.id, count(a.id) FILTER (WHERE f.kind = 'clinician'), count(a.id) FILTER (WHERE f.kind = 'peer'), count(a.id) "
            "FROM sessions s JOIN incidents i ON i.id = s.incident_id AND i.status = 'planned' "
            "LEFT JOIN assignments a ON a.session_id = s.id AND a.active LEFT JOIN facilitators f ON f.id = a.facilitator_id "
            "WHERE s.status = 'scheduled' AND s.kind = 'debriefing' GROUP BY s.id"
        )).all()
        assert [t for t in teams if not (t[1] >= 1 and t[2] >= 1 and 2 <= t[3] <= 4)] == []
