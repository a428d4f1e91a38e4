"""Calendar feed of a facilitator with 2,000 sessions, over HTTP on a real gunicorn, next to /healthz.

Run from the repository root: `python -m bench.feed`. It seeds a temporary SQLite database
through the models, starts `python -m service serve` on a free port, and times each request
from the first byte sent to the last byte read, on one keep-alive connection.
Targets (DESIGN.md section 6): render < 50 ms; the 304 answer < 5 ms.

Rendered VEVENT blocks are cached per process, so a render costs what changed since the last
one: the bench times a render after one session changed (the usual case: calendar servers
poll hourly), after every session changed (all blocks rendered, the worst case), and the
very first request of the process.
"""

from __future__ import annotations

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
REPEATS = {"healthz": 300, "304": 300, "unchanged": 30, "one_changed": 20, "all_changed": 5}
ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc


def seed(url: str, now: datetime) -> str:
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
        for n in range(SESSIONS):
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


def main() -> None:
    """Seed, serve, time each case, print the table and the ratios."""
    workdir = Path(tempfile.mkdtemp(prefix="debrief-bench-feed-"))
    url = f"sqlite:///{workdir / 'feed.sqlite3'}"
    now = datetime.now(UTC)
    print(f"seeding {SESSIONS:,} sessions for one facilitator in {workdir} ...", flush=True)
    secret = seed(url, now)
    port = free_port()
    server = start_server(url, port)
    try:
        client = Client(port)
        path = f"/v1/calendars/{secret}.ics"
        first_ms, status, body, headers = client.get(path)
        assert status == 200, status
        events = body.count(b"BEGIN:VEVENT")
        etag = headers["ETag"]
        timings: dict[str, list[float]] = {key: [] for key in REPEATS}
        for _ in range(REPEATS["healthz"]):
            timings["healthz"].append(client.get("/healthz")[0])
        for _ in range(REPEATS["304"]):
            ms, status, _, _ = client.get(path, {"If-None-Match": etag})
            assert status == 304, status
            timings["304"].append(ms)
        for _ in range(REPEATS["unchanged"]):
            timings["unchanged"].append(client.get(path)[0])
        for case in ("one_changed", "all_changed"):
            for n in range(REPEATS[case]):
                touch(url, all_sessions=case == "all_changed", now=now + timedelta(seconds=n + 1))
                ms, status, body, headers = client.get(path, {"If-None-Match": etag})
                assert status == 200 and headers["ETag"] != etag, status
                etag = headers["ETag"]
                timings[case].append(ms)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    health = statistics.median(timings["healthz"])
    rows = [
        ("GET /healthz", "healthz", ""),
        ("feed, If-None-Match current: 304", "304", "< 5 ms"),
        ("feed 200, nothing changed", "unchanged", "< 50 ms"),
        ("feed 200, one session changed", "one_changed", "< 50 ms"),
        ("feed 200, every session changed", "all_changed", "< 50 ms"),
    ]
    print(f"feed: {events:,} events, {len(body):,} bytes; SQLite, 1 gunicorn worker (gthread, 4 threads)")
    print(f"{'request':<36} {'n':>5} {'median ms':>10} {'p90 ms':>8} {'x healthz':>10} {'target':>8}")
    for label, key, target in rows:
        values = sorted(timings[key])
        median, p90 = statistics.median(values), values[int(0.9 * (len(values) - 1))]
        print(f"{label:<36} {len(values):>5} {median:>10.2f} {p90:>8.2f} {median / health:>10.1f} {target:>8}")
    print(f"{'feed 200, first request of the process':<36} {1:>5} {first_ms:>10.2f} {'':>8} {first_ms / health:>10.1f}")
    print(
        "ratios to /healthz (median): "
        f"304 {statistics.median(timings['304']) / health:.1f}x, "
        f"render after one change {statistics.median(timings['one_changed']) / health:.1f}x, "
        f"render after every change {statistics.median(timings['all_changed']) / health:.1f}x"
    )


if __name__ == "__main__":
    main()
