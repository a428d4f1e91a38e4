"""Calendar feed of a facilitator with 2,000 sessions, over HTTP on a real gunicorn, next to /healthz.

Run from the repository root: `python -m bench.feed`. It seeds a temporary SQLite database
through the models, starts `python -m service serve` on a free port, and times each request
from the first byte sent to the last byte read, on one keep-alive connection.
Targets (DESIGN.md section 6): render < 50 ms; the 304 answer < 5 ms.

Each VEVENT is rendered with icalendar (about half a millisecond each) and kept, in the
process's memory and in the feed_events table, so a feed costs what changed since it was
last served. The bench times: the 304; a feed with nothing changed; a feed after one session
changed (the usual case: calendar servers poll hourly); the first feed of a new server process
(events stored, memory empty, as in another gunicorn worker); and a feed after every session
changed (every event rendered again: the worst case, after a bulk change or a new release).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, update

from service import migrate
from service.agencies.models import Agency
from service.calendars.service import hash_token
from service.db import make_engine, make_session_factory
from service.facilitators.models import Facilitator
from service.incidents.models import Incident
from service.planning.agenda import build_agenda
from service.planning.policy import PlanningPolicy
from service.sessions.models import Assignment, Session

SESSIONS = 2_000
SESSIONS_PER_INCIDENT = 20
REPEATS = {"healthz": 300, "304": 300, "unchanged": 30, "one_changed": 20, "new_process": 3, "all_changed": 3}
ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc


def seed(url: str, now: datetime, sessions: int = SESSIONS) -> str:
    """A facilitator with SESSIONS sessions from 25 days back, a few cancelled or released; return the feed secret."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    policy, rng, secret = PlanningPolicy(), random.Random(7), secrets.token_urlsafe(32)
    with make_session_factory(engine)() as db:
        agency = Agency(code="bench", name="Bench Police", timezone="America/Toronto", policy={})
        db.add(agency)
        db.flush()
        facilitator = Facilitator(
            agency_id=agency.id, name="Émilie Tremblay-Côté", email="emilie@cism.example.org", kind="clinician",
            unit="cism", external_id=None, languages=["fr", "en"], regions=["north-east"], virtual_ok=True,
            timezone="America/Toronto", active=True, certifications=[], weekly=[], exceptions=[],
            calendar_token_hash=hash_token(secret), created_at=now, updated_at=now,
        )
        db.add(facilitator)
        db.flush()
        incident = None
        first = (now - timedelta(days=25)).replace(minute=0, second=0, microsecond=0)
        for n in range(sessions):
            if n % SESSIONS_PER_INCIDENT == 0:
                incident = Incident(agency_id=agency.id, external_id=f"BENCH-{n}", type="other", severity=3,
                                    occurred_at=first, region="north-east", status="planned", problems=[], fingerprint="-")
                db.add(incident)
                db.flush()
            kind = rng.choice(["debriefing", "debriefing", "defusing", "individual"])
            starts_at = first + timedelta(hours=8 * n)
            agenda = build_agenda(kind, starts_at, policy)  # type: ignore[arg-type]
            minutes = sum(a.minutes for a in agenda) or policy.individual_minutes
            ends_at = starts_at + timedelta(minutes=minutes)
            off = n % 50 == 0  # 2% cancelled, 2% released, all within the last 14 days
            released = n % 50 == 25
            session = Session(
                incident_id=incident.id, kind=kind, group_key="g", language="fr",  # type: ignore[union-attr]
                status="cancelled" if off else "scheduled", starts_at=starts_at, ends_at=ends_at,
                mode=rng.choice(["in_person", "virtual"]), region="north-east", sequence=rng.randint(0, 3),
                participant_count=6, created_at=now - timedelta(days=30), updated_at=now - timedelta(days=rng.randint(1, 29)),
                agenda=[{"phase": a.phase, "starts_at": a.starts_at.isoformat(), "minutes": a.minutes} for a in agenda],
            )
            session.assignments.append(Assignment(
                facilitator_id=facilitator.id, active=not (off or released), group_session=kind != "individual",
                starts_at=starts_at, ends_at=ends_at, released_at=now - timedelta(days=3) if off or released else None,
                release_reason="declined" if released else ("session_cancelled" if off else None),
            ))
            db.add(session)
        db.commit()
    engine.dispose()
    return secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    """`python -m service serve` on the bench database; returns once /healthz answers."""
    env = {**os.environ, "DATABASE_URL": url, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start")


class Client:
    """One keep-alive HTTP connection that times whole requests."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[float, int, bytes, dict[str, str]]:
        """Milliseconds, status, body and headers of one GET."""
        started = time.perf_counter()
        self.connection.request("GET", path, headers=headers or {})
        response = self.connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, response.status, body, dict(response.getheaders())


def touch(url: str, *, all_sessions: bool, now: datetime) -> None:
    """Change one session (as a reschedule does: sequence and updated_at), or every session."""
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        query = update(Session).values(sequence=Session.sequence + 1, updated_at=now)
        if not all_sessions:
            target = db.scalar(select(Session.id).order_by(Session.starts_at.desc()).limit(1))
            query = query.where(Session.id == target)
        db.execute(query)
        db.commit()
    engine.dispose()


def timed_cases(url: str, secret: str, now: datetime, workdir: Path) -> tuple[dict[str, list[float]], float, int, int]:
    """Every case's timings, the very first render's, and the feed's size in events and bytes."""
    path = f"/v1/calendars/{secret}.ics"
    timings: dict[str, list[float]] = {key: [] for key in REPEATS}
    port = free_port()
    server = start_server(url, port)
    try:
        client = Client(port)
        first_ms, status, body, headers = client.get(path)
        assert status == 200, status
        etag = headers["ETag"]
        for _ in range(REPEATS["healthz"]):
            timings["healthz"].append(client.get("/healthz")[0])
        for _ in range(REPEATS["304"]):
            ms, status, _, _ = client.get(path, {"If-None-Match": etag})
            assert status == 304, status
            timings["304"].append(ms)
        for _ in range(REPEATS["unchanged"]):
            ms, status, again, _ = client.get(path)
            assert status == 200 and again == body, status
            timings["unchanged"].append(ms)
        for n in range(REPEATS["one_changed"]):
            touch(url, all_sessions=False, now=now + timedelta(seconds=n + 1))
            ms, status, body, headers = client.get(path, {"If-None-Match": etag})
            assert status == 200 and headers["ETag"] != etag, status
            etag = headers["ETag"]
            timings["one_changed"].append(ms)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for _ in range(REPEATS["new_process"]):
        server = start_server(url, port)
        try:
            client = Client(port)
            client.get("/healthz")  # the process's own start-up is not the feed's cost
            ms, status, again, _ = client.get(path)
            assert status == 200 and again == body, status
            timings["new_process"].append(ms)
        finally:
            server.terminate()
            server.wait(timeout=30)
    server = start_server(url, port)
    try:
        client = Client(port)
        client.get(path)
        for n in range(REPEATS["all_changed"]):
            touch(url, all_sessions=True, now=now + timedelta(minutes=n + 1))
            ms, status, body, headers = client.get(path)
            assert status == 200, status
            timings["all_changed"].append(ms)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return timings, first_ms, body.count(b"BEGIN:VEVENT"), len(body)


def main(argv: list[str] | None = None) -> int:
    """Seed, serve, time each case, print the table and the ratios."""
    parser = argparse.ArgumentParser(prog="python -m bench feed", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=SESSIONS, help=f"sessions in the feed (default {SESSIONS:,})")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="debrief-bench-feed-"))
    url = f"sqlite:///{workdir / 'feed.sqlite3'}"
    now = datetime.now(UTC)
    print(f"seeding {args.sessions:,} sessions for one facilitator in {workdir} ...", flush=True)
    try:
        secret = seed(url, now, args.sessions)
        timings, first_ms, events, size = timed_cases(url, secret, now, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    health = statistics.median(timings["healthz"])
    rows = [
        ("GET /healthz", "healthz", ""),
        ("feed, If-None-Match current: 304", "304", "< 5 ms"),
        ("feed 200, nothing changed", "unchanged", "< 50 ms"),
        ("feed 200, one session changed", "one_changed", "< 50 ms"),
        ("feed 200, new process, events stored", "new_process", "< 50 ms"),
        ("feed 200, every session changed", "all_changed", "worst"),
    ]
    print(f"feed: {events:,} events, {size:,} bytes; SQLite, 1 gunicorn worker (gthread, 8 threads)")
    print(f"{'request':<38} {'n':>5} {'median ms':>10} {'p90 ms':>8} {'x healthz':>10} {'target':>8}")
    for label, key, target in rows:
        values = sorted(timings[key])
        median, p90 = statistics.median(values), values[int(0.9 * (len(values) - 1))]
        print(f"{label:<38} {len(values):>5} {median:>10.2f} {p90:>8.2f} {median / health:>10.1f} {target:>8}")
    print(f"{'feed 200, first ever (none stored)':<38} {1:>5} {first_ms:>10.2f} {'':>8} {first_ms / health:>10.1f} {'worst':>8}")
    render = statistics.median(timings["one_changed"])
    not_modified = statistics.median(timings["304"])
    print(
        f"ratios to /healthz (median {health:.2f} ms): 304 {not_modified / health:.1f}x, "
        f"render after one change {render / health:.1f}x; "
        f"render {render:.1f} ms (target < 50), 304 {not_modified:.2f} ms (target < 5)"
    )
    return 0 if render < 50 and not_modified < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
