"""The planner: intake answers at once, `Prefer: wait`, and planners that die or run side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from service.app import create_app
from service.incidents.views import preferred_wait
from service.planner import run_planner
from tests.conftest import environment, seed_agencies, settings, wipe
from tests.factories import facilitator_body, incident_body, person, plan_reports
from tests.integration.planning_helpers import add_roster, overlapping_assignments


@pytest.fixture
def planner(app):
    """The planner, running in a thread of the test against the app's database, as `debrief planner` does."""
    stop = threading.Event()
    thread = threading.Thread(target=run_planner, args=(app.extensions["debrief"],), kwargs={"stop": stop, "poll": 0.1})
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_report_waits_for_its_plan_when_the_client_prefers(client, keys, planner):
    add_roster(client, keys)
    answer = client.post("/v1/incidents", json=incident_body(), headers={**keys.auth("dispatch"), "Prefer": "wait=20"})
    assert answer.status_code == 201
    assert answer.headers["Preference-Applied"] == "wait=20"
    incident = answer.get_json()
    assert incident["status"] == "planned" and len(incident["sessions"]) == 1
    # A replay answers 200 with the incident as it now stands.
    again = client.post("/v1/incidents", json=incident_body(), headers=keys.auth("dispatch"))
    assert again.status_code == 200 and again.get_json()["sessions"] == incident["sessions"]
    assert "Preference-Applied" not in again.headers


def test_without_a_planner_a_wait_ends_with_the_report_as_received(client, keys):
    answer = client.post("/v1/incidents", json=incident_body(), headers={**keys.auth("dispatch"), "Prefer": "wait=1"})
    assert answer.status_code == 201 and answer.headers["Preference-Applied"] == "wait=1"
    assert answer.get_json()["status"] == "received"


def test_a_report_that_breaks_the_planner_is_flagged_and_the_others_are_planned(app, client, keys, monkeypatch):
    from service.sessions import service as sessions

    add_roster(client, keys)
    for n in (1, 2):
        body = incident_body(f"CAD-{n}", personnel=[person(n)])
        assert client.post("/v1/incidents", json=body, headers=keys.auth("dispatch")).status_code == 201
    plan_locked = sessions.plan_locked

    def broken_batch(*_args, **_kwargs):
        raise RuntimeError("a fault in planning")

    def plan_all_but_the_first(db, *, incident, now, include_cancelled=False):
        if incident.external_id == "CAD-1":
            raise RuntimeError("a fault in planning")
        return plan_locked(db, incident=incident, now=now, include_cancelled=include_cancelled)

    # A fault the batch meets, and one that only the first report meets when planned alone.
    monkeypatch.setattr(sessions, "plan_batch_locked", broken_batch)
    monkeypatch.setattr(sessions, "plan_locked", plan_all_but_the_first)
    assert plan_reports(client) == 2
    listed = {i["external_id"]: i for i in client.get("/v1/incidents", headers=keys.auth("coordinator")).get_json()["items"]}
    assert listed["CAD-1"]["status"] == "needs_attention"
    assert listed["CAD-1"]["problems"] == [{"group": None, "kind": "debriefing", "reasons": ["planning_failed"]}]
    assert listed["CAD-2"]["status"] == "planned" and len(listed["CAD-2"]["sessions"]) == 1
    assert plan_reports(client) == 0  # nothing left `received`


@pytest.mark.parametrize(("prefer", "seconds"), [
    ("wait=10", 10), ("WAIT = 5", 5), ('wait="7"', 7), ("respond-async, wait=3", 3), ("wait=99", 30), ("wait=0", 0),
    ("wait=3; foo=bar", 3), (None, None), ("", None), ("wait=", None), ("wait=-1", None), ("wait=1.5", None),
    ("handling=strict", None), ("wait=99999999999999999999", None),
])
def test_prefer_wait_is_read_as_rfc_7240_says(prefer, seconds):
    assert preferred_wait(prefer) == seconds


# -- the planner as its own process -----------------------------------------------------------------


def _real_time_app(postgres_url):
    """The app on PostgreSQL with the real clock, as the planner process has it."""
    app = create_app(settings(postgres_url))
    with app.extensions["debrief"].session_factory() as db:
        keys = seed_agencies(db)
    return app, keys


def _recent_incident(n: int) -> dict:
    occurred = datetime.now(timezone.utc) - timedelta(hours=2)
    return incident_body(f"CAD-{n}", occurred_at=occurred.isoformat(), people=2,
                         personnel=[person(2 * n), person(2 * n + 1)])


def _planner_process(postgres_url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, **environment(postgres_url), "PUBLIC_BASE_URL": "http://127.0.0.1:9"}
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "service", "planner", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _count(conn, sql: str) -> int:
    return conn.execute(text(sql)).scalar_one()


def _assert_planned_once(app) -> None:
    """By SQL: no report left `received`, no facilitator booked twice, no message queued twice."""
    assert overlapping_assignments(app) == []
    with app.extensions["debrief"].engine.connect() as conn:
        assert _count(conn, "SELECT count(*) FROM incidents WHERE status = 'received'") == 0
        assert _count(conn, "SELECT count(*) FROM sessions") > 0
        # One invitation per participant of a session, one assignment notice per team member.
        assert _count(conn, "SELECT count(*) FROM outbox WHERE kind = 'invitation_new'") > 0
        assert _count(conn, "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE kind LIKE 'invitation%' "
                            "GROUP BY personnel_id, session_id, kind HAVING count(*) > 1) twice") == 0
        assert _count(conn, "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE kind LIKE 'assignment%' "
                            "GROUP BY facilitator_id, session_id, kind HAVING count(*) > 1) twice") == 0
        assert _count(conn, "SELECT count(*) FROM (SELECT session_id FROM session_participants "
                            "GROUP BY session_id, personnel_id HAVING count(*) > 1) twice") == 0


def test_a_planner_killed_mid_batch_loses_nothing_and_the_next_plans_it_once(postgres_url):
    app, keys = _real_time_app(postgres_url)
    client = app.test_client()
    try:
        add_roster(client, keys, clinicians=3, peers=6)
        for n in range(12):
            assert client.post("/v1/incidents", json=_recent_incident(n), headers=keys.auth("dispatch")).status_code == 201
        holder = create_engine(postgres_url)
        with holder.connect() as conn, holder.connect() as watch:
            # Hold every facilitator's row: the planner plans its batch, then waits to lock its teams' rows.
            conn.execute(text("SELECT id FROM facilitators FOR UPDATE"))
            holder_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            process = _planner_process(postgres_url, "--once")
            try:
                deadline = time.monotonic() + 60
                while not watch.execute(text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                                        {"pid": holder_pid}).scalar_one():
                    watch.rollback()  # pg_stat_activity is a snapshot per transaction
                    assert process.poll() is None, process.stderr.read().decode()
                    assert time.monotonic() < deadline, "the planner never reached its teams' rows"
                    time.sleep(0.02)
                process.send_signal(signal.SIGKILL)
            finally:
                process.wait(timeout=30)
                process.stderr.close()
            conn.rollback()
        holder.dispose()
        with app.extensions["debrief"].engine.connect() as conn:
            # Killed before its commit: nothing of the batch was written.
            assert _count(conn, "SELECT count(*) FROM incidents WHERE status = 'received'") == 12
            assert _count(conn, "SELECT count(*) FROM sessions") == 0
            assert _count(conn, "SELECT count(*) FROM outbox WHERE incident_id IS NOT NULL") == 0
        again = _planner_process(postgres_url, "--once")
        assert again.wait(timeout=120) == 0, again.stderr.read().decode()
        again.stderr.close()
        _assert_planned_once(app)
    finally:
        wipe(app.extensions["debrief"].engine)
        app.extensions["debrief"].close()


def test_two_planners_take_turns_on_one_pool(postgres_url):
    app, keys = _real_time_app(postgres_url)
    client = app.test_client()
    planners = []
    try:
        add_roster(client, keys, clinicians=3, peers=6)
        client.post("/v1/facilitators", json=facilitator_body(20, languages=["en", "fr"]), headers=keys.auth("coordinator"))
        planners = [_planner_process(postgres_url) for _ in range(2)]
        for n in range(30):
            assert client.post("/v1/incidents", json=_recent_incident(n), headers=keys.auth("dispatch")).status_code == 201
        deadline = time.monotonic() + 120
        with app.extensions["debrief"].engine.connect() as conn:
            while _count(conn, "SELECT count(*) FROM incidents WHERE status = 'received'"):
                assert all(p.poll() is None for p in planners), "a planner stopped"
                assert time.monotonic() < deadline, "reports left unplanned"
                conn.rollback()
                time.sleep(0.1)
        _assert_planned_once(app)
    finally:
        for process in planners:
            process.terminate()
        for process in planners:
            assert process.wait(timeout=30) == 0, process.stderr.read().decode()
            process.stderr.close()
        wipe(app.extensions["debrief"].engine)
        app.extensions["debrief"].close()


# -- a surge: the planner lets it pass, then plans it whole ------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("stored", "gathers"), [
    ([5], 1),                      # 10 reports a second: planned after one gather
    ([49], 1),                     # just under a surge
    ([50, 120, 80, 3], 4),         # a surge: gathered while it lasts, planned once it has passed
    ([200] * 100, 40),             # a surge that does not end: held 20 s (40 gathers of 0.5 s), no longer
])
def test_the_planner_lets_a_surge_pass_for_at_most_20_s(stored, gathers):
    from service.planner import let_surge_pass

    clock, counts = _Clock(), iter(stored)

    def gather(seconds: float) -> int:
        clock.now += seconds
        return next(counts)

    assert let_surge_pass(gather, clock=clock) == gathers


@pytest.mark.parametrize(("waited", "waiting", "stored", "asked"), [
    (0.3, 3, [2], [0.2]),          # 10 a second, a pass of 0.3 s: gathered 0.2 s more, half a second in all
    (0.8, 8, [0], [0.0]),          # a pass longer than the gather: planned at once
    (1.0, 100, [0, 3], [0.0, 0.5]),  # 100 a second during a pass of 1 s: a surge, held while it lasts
    (1.0, 60, [0], [0.0]),         # 60 a second: not a surge
    (0.2, 10, [40, 1], [0.3, 0.5]),  # 50 in half a second (10 during a pass of 0.2 s): a surge
])
def test_reports_stored_during_a_pass_gather_from_its_start(waited, waiting, stored, asked):
    from service.planner import let_surge_pass

    clock, counts, seconds = _Clock(), iter(stored), []

    def gather(s: float) -> int:
        seconds.append(s)
        clock.now += s
        return next(counts)

    assert let_surge_pass(gather, clock=clock, waited=waited, waiting=waiting) == len(asked)
    assert seconds == pytest.approx(asked)


def test_a_gather_counts_the_reports_stored_meanwhile(postgres_url):
    from service.planner import WakeUps
    from service.sessions.service import PLANNER_CHANNEL

    wake_ups = WakeUps(postgres_url, poll=5.0)
    engine = create_engine(postgres_url)
    try:
        assert wake_ups.listen()

        def store(reports: int) -> None:
            with engine.connect() as conn:
                for _ in range(reports):  # what intake's statements send, one a report, each committed
                    conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": PLANNER_CHANNEL})
                    conn.commit()

        stop = threading.Event()
        store(1)
        assert wake_ups.wait(stop) is True
        store(6)
        assert wake_ups.gather(stop, 2.0) == 6  # delivered in milliseconds; the margin is for a loaded machine
        assert wake_ups.gather(stop, 0.1) == 0
        store(3)  # stored during a pass: a gather of 0 s counts them without waiting, once they have come in
        counted, deadline = 0, time.monotonic() + 30
        while counted < 3 and time.monotonic() < deadline:
            counted += wake_ups.gather(stop, 0.0)
            time.sleep(0.01)
        assert counted == 3
        stop.set()
        assert wake_ups.gather(stop, 30) == 0  # stopping: returns at once
    finally:
        wake_ups.close()
        engine.dispose()
    without = WakeUps("sqlite://", poll=0.1)
    assert without.listen() is False and without.gather(threading.Event(), 0.01) == 0
