"""Incident intake over HTTP: POST /v1/incidents on gunicorn and PostgreSQL, next to /healthz of the same server.

Run from the repository root: `python -m bench intake` (`--quick` for a short run). It needs
PostgreSQL (127.0.0.1:5432, database `test`, user `root`) and works in a schema of its own,
dropped at the end. The server is `python -m service serve --workers 4` (gunicorn, gthread,
8 threads a worker) with REDIS_URL set, and the planner `python -m service planner` is a process
of its own beside it, as docker-compose deploys them; the relay and the RQ workers are other
processes, not started here.

The database is seeded with 3 agencies and 500 facilitators (peers and clinicians, French and
English, 7 regions, weekly availability, time off, certifications, some expired), and 30 days
of history: incidents planned by the service's own planner as they occurred, written as
incidents, personnel, sessions, assignments and participants, so that the bookings of the
coming days (and the caps of the last 7) are ones the planner must work around.

A load generator in another process (threads, one keep-alive http.client connection each)
posts incident reports of 10 personnel, each with a new external_id, with a dispatch key:
- healthz: GET /healthz, closed loop at maximum rate (each connection sends as soon as it has
  its answer) - the baseline throughput;
- fixed rate: POST /v1/incidents open loop at --rate for --seconds: request i is due at
  start + i/rate whether or not earlier answers came back, and its latency is measured from
  that due time, so a server that falls behind shows it (no coordinated omission). Requests
  still unsent --drain seconds after the last one was due are counted as unsent;
- max rate: POST /v1/incidents, closed loop on --max-connections connections;
- plan latency: open loop at --plan-rate (10) for --plan-seconds;
- burst: --burst (1,000) reports open loop at 100 req/s.
During each intake phase the bench polls the database (every PLAN_POLL_SECONDS) for the reports
no longer `received`: a report's plan latency runs from its 201 to the first poll that sees it
planned or needs_attention; after the phase it waits until none is `received` (the burst's
figure: from the last 201 to then). The max-rate phase, whose figure is throughput, is polled
only after its last request (every MAX_PHASE_POLL_SECONDS): each poll reads every report of the
phase, thousands there, from the database under test; its row of the planning table has the
drain and no plan latency.
Every phase starts from the seeded state: the incidents of the previous phase are deleted.
Every intake answer must be 201. Afterwards SQL checks that each incident answered 201 is
stored, and that no facilitator holds two bookings closer than the 60-minute buffer, nor two
group sessions on one local day.
Targets (DESIGN.md section 7): p99 < 50 ms at 100 req/s; max throughput >= 20% of /healthz; plan
latency p99 < 2 s at 10 req/s; the 1,000-report burst planned < 60 s after its last answer.

`--profile N` instead runs N intakes in this process (Flask test client, same seeded database),
once timed and once under pyinstrument, and prints where the time goes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import select
import shutil
import sys
import tempfile
import threading
import time
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Only the standard library up here: the load generator imports this module in its own
# process, where SQLAlchemy and Flask would only take memory and start-up time.
from bench._harness import SECRET_KEY, Planner, Server, create_schema, drop_schema, load_average

UTC = timezone.utc
REDIS_URL = "redis://127.0.0.1:6379/8"  # configured, not used by intake: only /readyz pings it
WORKERS = 4
FACILITATORS = 500
PERSONNEL = 10
HISTORY_DAYS = 33  # 3 more than the 30 that count for load, so that the 7-day caps are already filled at their start
HISTORY_PER_DAY = 10
INDIVIDUAL_TAKE_UP = 0.1  # share of participants who accept the offer of an individual session
TEMPLATES = 256  # distinct reports the generator cycles through, each posted under new external_ids
LOAD_PREFIX = "LOAD-"
REQUEST_TIMEOUT = 10.0  # a hundred times the p99 target: an answer later than this counts as a timeout
QUIET_TIMEOUT = 120.0  # how long to wait for the server to finish requests the generator gave up on
SAMPLE_BODIES = 3  # problem bodies kept per status for the report
PLAN_POLL_SECONDS = 0.02  # how often the bench looks for reports the planner has planned
# The same after the max-rate phase (thousands of reports, each poll reading them all); during that
# phase, whose figure is throughput, the bench does not poll: its reads took CPU from the server.
MAX_PHASE_POLL_SECONDS = 0.25
PLAN_TIMEOUT = 300.0  # how long after a phase the bench waits for the planner to plan every report
BURST_RATE, BURST_SECONDS = 100.0, 10.0  # DESIGN section 7: 1,000 reports at 100 req/s

REGIONS = ("north-east", "north-west", "central", "lakeshore", "west", "east", "capital")
UNITS = ("patrol-1", "patrol-2", "patrol-3", "patrol-4", "patrol-5", "patrol-6", "traffic", "tactical",
         "investigations", "communications")
INCIDENT_TYPES = (("officer_involved_shooting", 12), ("line_of_duty_death", 3), ("member_serious_injury", 10),
                  ("member_suicide", 3), ("child_death", 10), ("mass_casualty", 4), ("hostage_barricade", 6),
                  ("violent_assault", 20), ("prolonged_rescue", 8), ("other", 24))
SEVERITIES = ((1, 5), (2, 15), (3, 40), (4, 30), (5, 10))
NAMES = {
    "en": (("Sarah", "James", "Emily", "Michael", "Jessica", "David", "Ashley", "Daniel", "Megan", "Ryan",
            "Priya", "Kevin", "Amanda", "Jason", "Olivia", "Marcus"),
           ("Smith", "MacDonald", "Wilson", "Campbell", "Anderson", "Singh", "Thompson", "O'Brien", "Patel",
            "Robinson", "Fraser", "Chen", "Murray", "Bennett", "Walsh", "Hughes")),
    "fr": (("Émilie", "Mathieu", "Geneviève", "François", "Chloé", "Étienne", "Sophie", "Jérôme", "Isabelle",
            "Mélanie", "Benoît", "Amélie", "Olivier", "Josée", "Sébastien", "Karine"),
           ("Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "Gagné",
            "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc")),
}


@dataclass(frozen=True, slots=True)
class AgencyProfile:
    """A police service of the bench: its main language, the regions it covers, its share of incidents."""

    code: str
    name: str
    timezone: str
    language: str
    regions: tuple[str, ...]
    share: float


AGENCIES = (
    AgencyProfile("north-shore", "North Shore Regional Police", "America/Toronto", "en",
                  ("north-east", "north-west", "central"), 0.45),
    AgencyProfile("riviere-claire", "Service de police de Rivière-Claire", "America/Toronto", "fr",
                  ("east", "capital"), 0.25),
    AgencyProfile("lakeshore", "Lakeshore Police Service", "America/Toronto", "en",
                  ("lakeshore", "west", "central"), 0.30),
)


# -- realistic rosters and reports (standard library only: the generator builds reports too) ------


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[weight for _, weight in pairs])[0]


def _ascii(text: str) -> str:
    """The name as it can appear in an email address."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace("'", "")


def _agency(rng: random.Random) -> AgencyProfile:
    return rng.choices(AGENCIES, weights=[a.share for a in AGENCIES])[0]


def weekly_availability(rng: random.Random) -> list[dict[str, str]]:
    """Weekly windows of one facilitator, in the API's form: office hours, evenings, on call..."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    pattern = rng.random()
    if pattern < 0.35:
        return [{"day": d, "start": "07:00", "end": "18:00"} for d in days[:5]]
    if pattern < 0.55:  # evenings and weekends: often peers with a day job
        return ([{"day": d, "start": "16:00", "end": "23:00"} for d in days[:5]]
                + [{"day": d, "start": "08:00", "end": "20:00"} for d in days[5:]])
    if pattern < 0.70:
        return [{"day": d, "start": "07:00", "end": "22:00"} for d in days]
    if pattern < 0.80:  # on call overnight: the end before the start runs past midnight
        return [{"day": d, "start": "18:00", "end": "08:00"} for d in days]
    windows = []
    for d in sorted(rng.sample(range(7), rng.randint(2, 5))):
        start = rng.choice([6, 7, 8, 9, 12, 13])
        windows.append({"day": days[d], "start": f"{start:02d}:00", "end": f"{min(start + rng.randint(4, 10), 23):02d}:00"})
    return windows


def facilitator_body(n: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    """A facilitator as a coordinator would post it (POST /v1/facilitators)."""
    pool_member = rng.random() < 0.25  # the provincial pool: no agency, wider regions, often virtual
    agency = None if pool_member else _agency(rng)
    clinician = rng.random() < 0.3
    main = agency.language if agency else rng.choice(("en", "en", "fr"))
    languages = [main] if rng.random() < 0.7 else ["fr", "en"]
    if agency:
        regions = rng.sample(agency.regions, rng.randint(1, min(2, len(agency.regions))))
        if rng.random() < 0.2:
            extra = rng.choice(REGIONS)
            regions += [extra] if extra not in regions else []
    else:
        regions = rng.sample(REGIONS, rng.randint(2, 4))
    first, last = rng.choice(NAMES[main][0]), rng.choice(NAMES[main][1])
    gci_expiry = (now - timedelta(days=rng.randint(1, 60))) if rng.random() < 0.04 else (now + timedelta(days=rng.randint(60, 900)))
    certifications = [{"name": "GCI", "expires_on": gci_expiry.date().isoformat()}]
    if clinician:
        certifications.append({"name": "LICENSE", "expires_on": (now + timedelta(days=rng.randint(100, 1000))).date().isoformat()})
    exceptions = []
    if rng.random() < 0.1:
        off = (now + timedelta(days=rng.randint(-10, 10))).replace(hour=5, minute=0, second=0, microsecond=0)
        exceptions.append({"start": off.isoformat(), "end": (off + timedelta(days=rng.randint(1, 7))).isoformat()})
    # Peers are serving members of their agency: their unit and badge number drive conflict-of-interest checks.
    peer_of_agency = agency is not None and not clinician
    return {
        "name": f"{first} {last}",
        "email": f"{_ascii(first)}.{_ascii(last)}.{n}@cism.example.org",
        "kind": "clinician" if clinician else "peer",
        "agency": agency.code if agency else None,
        "unit": rng.choice(UNITS) if peer_of_agency else ("wellness" if agency else None),
        "external_id": f"B{rng.randint(1000, 9999)}" if peer_of_agency else None,
        "languages": languages,
        "regions": regions,
        "virtual_ok": rng.random() < (0.6 if clinician else 0.35),
        "timezone": "America/Toronto",
        "active": rng.random() >= 0.03,
        "certifications": certifications,
        "availability": {"weekly": weekly_availability(rng), "exceptions": exceptions},
    }


def personnel(rng: random.Random, agency: AgencyProfile, count: int = PERSONNEL) -> list[dict[str, Any]]:
    """The people involved in one incident, in the API's form."""
    other = "fr" if agency.language == "en" else "en"
    mixed = rng.random() < 0.2  # a few people of the other language
    units = rng.sample(UNITS[:8], 2)
    people = []
    for k, badge in enumerate(rng.sample(range(1000, 10000), count)):
        if k == 0 and rng.random() < 0.4:
            role = "supervisor"
        elif k == count - 1 and rng.random() < 0.5:
            role = "dispatcher"
        else:
            role = "paramedic" if rng.random() < 0.1 else "officer"
        exposure = "support" if role == "dispatcher" else ("direct" if rng.random() < 0.75 else "witness")
        language = other if mixed and rng.random() < 0.3 else agency.language
        first, last = rng.choice(NAMES[language][0]), rng.choice(NAMES[language][1])
        people.append({
            "external_id": f"B{badge}", "name": f"{first} {last}",
            "email": f"{_ascii(first)}.{_ascii(last)}.{badge}@{agency.code}.example.org",
            "phone": f"+1 416 555 {rng.randint(0, 9999):04d}", "role": role,
            "unit": "communications" if role == "dispatcher" else rng.choice(units),
            "exposure": exposure, "language": language,
        })
    return people


def incident_report(rng: random.Random, agency: AgencyProfile, external_id: str, occurred_at: datetime) -> dict[str, Any]:
    """One incident report as a CAD system posts it (POST /v1/incidents), with its offset in local time."""
    return {
        "external_id": external_id,
        "type": _weighted(rng, INCIDENT_TYPES),
        "severity": _weighted(rng, SEVERITIES),
        "occurred_at": occurred_at.astimezone(ZoneInfo(agency.timezone)).isoformat(timespec="seconds"),
        "region": rng.choice(agency.regions),
        "personnel": personnel(rng, agency),
    }


# -- seeding (through the service's own schemas, roster service and planner) -------------------------


@dataclass
class Seeded:
    """What the seed put in the database."""

    keys: dict[str, str]  # agency code -> dispatch API key
    facilitators: int
    incidents: int
    sessions: int
    past_assignments: int
    upcoming_assignments: int
    booked_facilitators: int
    last_assignment_id: int
    seconds: float


def seed(url: str, now: datetime, rng: random.Random, facilitators: int) -> Seeded:
    """Agencies, dispatch keys, the roster, and 30 days of planned incidents written as the service writes them."""
    from sqlalchemy import func, select, text

    from service.agencies import service as agencies
    from service.auth.service import create_key
    from service.calendars.service import issue_token
    from service.db import make_engine, make_session_factory
    from service.facilitators.models import Facilitator
    from service.facilitators.schemas import FacilitatorCreate
    from service.facilitators.service import to_profile
    from service.planning import FacilitatorPool, PlanningPolicy, Schedule
    from service.sessions.models import Assignment

    started = time.perf_counter()
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        agency_ids = {}
        for a in AGENCIES:
            agency = agencies.create(db=db, data={"code": a.code, "name": a.name, "timezone": a.timezone})
            agency.coordinator_email = f"cism-coordination@{a.code}.example.org"
            agency_ids[a.code] = agency.id
        db.commit()
        keys = {a.code: create_key(db=db, role="dispatch", agency_code=a.code) for a in AGENCIES}
        # Each body passes the API's validation; it is already in the stored form (ISO dates, "HH:MM"),
        # so the rows are written in one transaction instead of one commit per POST.
        validate = FacilitatorCreate().load
        for n in range(1, facilitators + 1):
            body = facilitator_body(n, rng, now)
            validate(body)
            availability = body.pop("availability")
            code = body.pop("agency")
            row = Facilitator(**body, agency_id=agency_ids[code] if code else None, weekly=availability["weekly"],
                              exceptions=availability["exceptions"], created_at=now, updated_at=now)
            issue_token(row)
            db.add(row)
        db.commit()
        pool = FacilitatorPool([to_profile(f) for f in db.scalars(select(Facilitator))])
        incidents, sessions = _history(db, now=now, rng=rng, agency_ids=agency_ids, pool=pool, schedule=Schedule(),
                                       policy=PlanningPolicy())
        active = select(Assignment).where(Assignment.active)
        past = db.scalar(select(func.count()).select_from(active.where(Assignment.ends_at <= now).subquery()))
        upcoming = db.scalar(select(func.count()).select_from(active.where(Assignment.ends_at > now).subquery()))
        booked = db.scalar(select(func.count(func.distinct(Assignment.facilitator_id))).where(
            Assignment.active, Assignment.ends_at > now - timedelta(days=30)))
        last_id = db.scalar(select(func.max(Assignment.id))) or 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))  # fresh tables: give the query planner real statistics
    engine.dispose()
    return Seeded(keys, facilitators, incidents, sessions, past or 0, upcoming or 0, booked or 0, last_id,
                  time.perf_counter() - started)


@dataclass
class _Planned:
    """One incident of the history with what the planner booked for it."""

    agency: AgencyProfile
    data: dict[str, Any]
    reported_at: datetime
    plan: Any
    individual: list[tuple[Any, Any, datetime]]  # participant, planned session, accepted at


def _history(db: Any, *, now: datetime, rng: random.Random, agency_ids: dict[str, int], pool: Any, schedule: Any,
             policy: Any) -> tuple[int, int]:
    """Incidents of the last HISTORY_DAYS, each planned when reported, and some accepted individual sessions."""
    from service.incidents.schemas import IncidentCreate
    from service.planning import (
        IncidentFacts, Participant, PlannedSession, plan_incident, plan_individual, split_into_groups,
    )

    load = IncidentCreate().load
    start = now - timedelta(days=HISTORY_DAYS)
    count = HISTORY_DAYS * HISTORY_PER_DAY
    moments = sorted(start + timedelta(seconds=rng.uniform(0, (now - start).total_seconds() - 3600)) for _ in range(count))
    history: list[_Planned] = []
    # The planner first, in memory and in time order: rows need no database ids for it.
    for n, occurred_at in enumerate(moments, start=1):
        agency = _agency(rng)
        data = load(incident_report(rng, agency, f"CAD-{occurred_at:%y%m%d}-{n:05d}", occurred_at))
        reported_at = data["occurred_at"] + timedelta(minutes=rng.randint(5, 45))
        facts = IncidentFacts(
            ref=f"history-{n}", agency_id=agency_ids[agency.code], severity=data["severity"],
            occurred_at=data["occurred_at"], region=data["region"], timezone=agency.timezone,
            participants=tuple(Participant(key=p["external_id"], email=p["email"].lower(), role=p["role"], unit=p["unit"],
                                           exposure=p["exposure"], language=p["language"]) for p in data["personnel"]),
        )
        plan = plan_incident(facts, pool, schedule, policy, now=reported_at)
        groups = {g.key: g for g in split_into_groups(facts.participants, policy)}
        individual = []
        for planned in plan.sessions:
            if planned.kind != "debriefing":
                continue
            for member in groups[planned.group_key].participants:  # type: ignore[index]
                accepted_at = planned.ends_at + timedelta(hours=rng.randint(2, 48))
                if accepted_at >= now or rng.random() >= INDIVIDUAL_TAKE_UP:
                    continue
                outcome = plan_individual(member, facilitator_kind=rng.choice(("peer", "clinician")),
                                          accepted_at=accepted_at, incident=facts, pool=pool, schedule=schedule,
                                          policy=policy, now=accepted_at)
                if isinstance(outcome, PlannedSession):
                    individual.append((member, outcome, accepted_at))
        history.append(_Planned(agency, data, reported_at, plan, individual))
    sessions = 0
    for batch in range(0, len(history), 100):
        sessions += _write_history(db, history[batch:batch + 100], agency_ids=agency_ids, now=now, policy=policy)
        db.commit()
    return count, sessions


def _write_history(db: Any, batch: list[_Planned], *, agency_ids: dict[str, int], now: datetime, policy: Any) -> int:
    """Write planned incidents as rows: incidents and personnel first (for their ids), then sessions."""
    from service.incidents.models import Incident, Personnel
    from service.incidents.service import fingerprint
    from service.planning import Participant, split_into_groups

    incidents = []
    for item in batch:
        problems = [{"group": p.group_key, "kind": p.kind, "reasons": list(p.reasons)} for p in item.plan.problems]
        incident = Incident(
            agency_id=agency_ids[item.agency.code], external_id=item.data["external_id"], type=item.data["type"],
            severity=item.data["severity"], occurred_at=item.data["occurred_at"], region=item.data["region"],
            status="needs_attention" if problems else "planned", problems=problems,
            fingerprint=fingerprint(item.data), created_at=item.reported_at, updated_at=item.reported_at,
            personnel=[Personnel(**p, added_at=item.reported_at) for p in item.data["personnel"]],
        )
        incidents.append(incident)
        db.add(incident)
    db.flush()
    written = 0
    for item, incident in zip(batch, incidents):
        person_ids = {p.external_id: p.id for p in incident.personnel}
        people = [Participant(key=p.external_id, email=p.email.lower(), role=p.role, unit=p.unit, exposure=p.exposure,
                              language=p.language) for p in incident.personnel]
        groups = {g.key: g for g in split_into_groups(people, policy)}
        for planned in item.plan.sessions:
            members = groups[planned.group_key].participants
            db.add(_session_row(incident.id, planned, language=members[0].language,
                                participants=[person_ids[m.key] for m in members], now=now,
                                created_at=item.reported_at))
            written += 1
        for member, planned, accepted_at in item.individual:
            db.add(_session_row(incident.id, planned, language=member.language, participants=[person_ids[member.key]],
                                now=now, created_at=accepted_at))
            written += 1
    return written


def _session_row(incident_id: uuid.UUID, planned: Any, *, language: str, participants: list[int], now: datetime,
                 created_at: datetime) -> Any:
    """A planned session as sessions.service writes it; one that has ended is completed."""
    from service.sessions.models import Assignment, Session, SessionParticipant

    group = planned.kind != "individual"
    session = Session(
        incident_id=incident_id, kind=planned.kind, group_key=planned.group_key, language=language,
        status="completed" if planned.ends_at <= now else "scheduled", starts_at=planned.starts_at,
        ends_at=planned.ends_at, mode=planned.mode, region=planned.region, sequence=0,
        participant_count=len(participants), created_at=created_at, updated_at=created_at,
        agenda=[{"phase": a.phase, "starts_at": a.starts_at.isoformat(), "minutes": a.minutes} for a in planned.agenda],
    )
    for fid in planned.facilitator_ids:
        session.assignments.append(Assignment(facilitator_id=fid, active=True, group_session=group,
                                              starts_at=planned.starts_at, ends_at=planned.ends_at))
    session.participants.extend(SessionParticipant(personnel_id=pid) for pid in participants)
    return session


# -- the load generator (runs in its own process) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase of load: what to request, how fast, for how long, on how many connections."""

    label: str
    port: int
    path: str
    connections: int
    seconds: float
    rate: float | None = None  # None: closed loop at maximum rate
    drain: float = 0.0  # open loop: how long after the last due time unsent requests may still go
    keys: dict[str, str] = field(default_factory=dict)  # present for intake: agency code -> dispatch key
    id_prefix: str = ""
    seed: int = 0

    @property
    def intake(self) -> bool:
        """True when the phase posts incident reports."""
        return bool(self.keys)


@dataclass(slots=True)
class Outcome:
    """One request: when it was due and sent, when its answer was read (seconds from the phase start)."""

    due: float
    sent: float
    done: float
    status: int  # 0: no HTTP answer (see error)
    error: str = ""
    external_id: str = ""
    incident_id: str | None = None
    incident_status: str | None = None
    sessions: int = 0
    reasons: tuple[str, ...] = ()


@dataclass
class PhaseResult:
    """What the generator measured in one phase."""

    phase: Phase
    outcomes: list[Outcome]
    samples: dict[str, list[str]]  # status or error -> a few answer bodies
    elapsed: float  # from the phase start to the last answer
    origin: float = 0.0  # the phase start on the machine's monotonic clock (time.perf_counter), shared by processes


class _Reports:
    """Encoded incident reports: TEMPLATES distinct bodies, each posted under a new external_id."""

    PLACEHOLDER = "@@EXTERNAL_ID@@"

    def __init__(self, phase: Phase) -> None:
        rng = random.Random(phase.seed)
        now = datetime.now(UTC)
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        for _ in range(TEMPLATES):
            agency = _agency(rng)
            # Reported between 1 and 20 hours after the fact: the debriefing window (24-72 h) is still ahead.
            occurred_at = now - timedelta(minutes=rng.randint(60, 1200))
            body = json.dumps(incident_report(rng, agency, self.PLACEHOLDER, occurred_at), ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {phase.keys[agency.code]}"}
            self.bodies.append((body, headers))
        self.prefix = phase.id_prefix

    def request(self, n: int) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the n-th report of the phase."""
        body, headers = self.bodies[n % len(self.bodies)]
        return body.replace(self.PLACEHOLDER.encode(), f"{self.prefix}{n:07d}".encode()), headers


class _Connection:
    """One keep-alive HTTP connection (http.client sets TCP_NODELAY), re-opened when the server closed it."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        # Opened before the clock starts, with a first request: gunicorn's gthread worker holds a
        # thread for a new connection until its first request comes (up to 5 s), so 32 connections
        # opened and left idle would hold every thread of the workers and stall the others' requests.
        self.http.request("GET", "/healthz")
        self.http.getresponse().read()

    def fresh(self) -> None:
        """Drop a connection the server closed while it was idle (readable with nothing asked means EOF).

        http.client connects again on the next request; that connect is part of its latency.
        """
        sock = self.http.sock
        if sock is not None and select.select([sock], [], [], 0)[0]:
            self.http.close()

    def exchange(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes, str]:
        """Status, body and error of one request (status 0 and an error name when no answer came)."""
        try:
            self.http.request(method, path, body=body, headers=headers)
            response = self.http.getresponse()
            status, data = response.status, response.read()
        except TimeoutError:
            self.http.close()
            return 0, b"", "timeout"
        except (OSError, http.client.HTTPException) as exc:
            self.http.close()
            return 0, b"", type(exc).__name__
        if response.will_close:
            self.http.close()
        return status, data, ""


def drive(phase: Phase) -> PhaseResult:
    """Run one phase of load and return every request's timings and answer (the generator's process)."""
    reports = _Reports(phase) if phase.intake else None
    method = "POST" if phase.intake else "GET"
    total = math.ceil(phase.rate * phase.seconds) if phase.rate else None
    outcomes: list[Outcome] = []
    samples: dict[str, list[str]] = {}
    lock = threading.Lock()
    counter = iter(range(10**9))
    connections = [_Connection(phase.port) for _ in range(phase.connections)]
    start = time.perf_counter() + 0.05  # every thread is waiting before the first request is due
    stop_sending = start + phase.seconds + phase.drain

    def run(connection: _Connection) -> None:
        mine: list[Outcome] = []
        pause = start - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        while True:
            with lock:
                n = next(counter)
            if total is not None:
                if n >= total:
                    break
                due = start + n / phase.rate  # type: ignore[operator]
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                if time.perf_counter() > stop_sending:
                    # Never sent: its latency is at least the time it has waited so far.
                    mine.append(Outcome(due - start, math.nan, stop_sending - start, 0, "unsent"))
                    continue
            else:
                due = time.perf_counter()
                if due >= start + phase.seconds:
                    break
            body, headers = reports.request(n) if reports else (None, {})
            connection.fresh()
            sent = time.perf_counter()
            status, data, error = connection.exchange(method, phase.path, body, headers)
            done = time.perf_counter()
            outcome = Outcome(due - start, sent - start, done - start, status, error,
                              external_id=f"{phase.id_prefix}{n:07d}" if reports else "")
            if status == 201 and reports:
                answer = json.loads(data)
                outcome.incident_id, outcome.incident_status = answer["id"], answer["status"]
                outcome.sessions = len(answer.get("sessions", ()))
                outcome.reasons = tuple(reason for problem in answer.get("problems", ()) for reason in problem["reasons"])
            elif not 200 <= status < 300:
                key = str(status) if status else error
                with lock:
                    kept = samples.setdefault(key, [])
                    if len(kept) < SAMPLE_BODIES and data:
                        kept.append(data[:2000].decode("utf-8", "replace"))
            mine.append(outcome)
        with lock:
            outcomes.extend(mine)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.http.close()
    outcomes.sort(key=lambda o: o.due)
    elapsed = max((o.done for o in outcomes), default=0.0)
    return PhaseResult(phase, outcomes, samples, elapsed, start)


# -- figures -------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


@dataclass
class Figures:
    """The table row of a phase."""

    label: str
    requests: int
    errors: Counter[str]
    throughput: float
    p50: float
    p90: float
    p99: float
    worst: float
    lower_bounds: bool  # some latencies are waits of unsent requests, so the figures are at least these
    cpu_ms: float  # gunicorn's CPU per request the server answered (PostgreSQL's not included)


def figures(result: PhaseResult, expected: int, cpu_ms: float) -> Figures:
    """Throughput of good answers and latency percentiles (ms) of a phase; `expected` is the success status."""
    outcomes = result.outcomes
    errors = Counter(str(o.status) if o.status else o.error for o in outcomes if o.status != expected)
    good = sum(1 for o in outcomes if o.status == expected)
    # Open loop: from the due time, so time spent waiting for a free connection counts.
    latencies = sorted((o.done - o.due) * 1000 for o in outcomes)
    return Figures(result.phase.label, len(outcomes), errors, good / result.elapsed if result.elapsed else 0.0,
                   percentile(latencies, 50), percentile(latencies, 90), percentile(latencies, 99),
                   latencies[-1] if latencies else math.nan, "unsent" in errors, cpu_ms)


def print_table(rows: list[Figures]) -> None:
    """The table of phases."""
    print(f"{'phase':<30} {'requests':>8} {'errors':<24} {'good req/s':>10} {'p50 ms':>9} {'p90 ms':>9} "
          f"{'p99 ms':>9} {'max ms':>9} {'CPU ms/req':>10}")
    for r in rows:
        errors = ", ".join(f"{key} x{n}" for key, n in sorted(r.errors.items())) or "0"
        mark = ">=" if r.lower_bounds else ""
        print(f"{r.label:<30} {r.requests:>8} {errors:<24} {r.throughput:>10.1f} "
              + " ".join(f"{mark + format(v, '.1f'):>9}" for v in (r.p50, r.p90, r.p99, r.worst))
              + f" {r.cpu_ms:>10.2f}")


def answered_by_server(port: int, route: str = "/v1/incidents") -> int | None:
    """POSTs on the route the server has answered so far, from its /metrics; None while it is too busy to say."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=QUIET_TIMEOUT / 4)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("debrief_http_requests_total{") and 'method="POST"' in line and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def wait_until_quiet(port: int, sent: int) -> int | None:
    """Wait until the server has answered every POST sent so far, those the generator gave up on included.

    Returns the server's count of answered POSTs, or None if it was still short of `sent` after QUIET_TIMEOUT.
    """
    deadline = time.monotonic() + QUIET_TIMEOUT
    while time.monotonic() < deadline:
        answered = answered_by_server(port)
        if answered is not None and answered >= sent:
            return answered
        time.sleep(0.5)
    return None


# -- when the planner planned each report ----------------------------------------------------------


class PlanWatch:
    """Polls the database every `every` seconds for the phase's reports no longer `received`.

    The schema keeps no time of the planner's commit (an incident's updated_at is the planner's
    clock when its pass began), so the time a report was planned is when this poll first sees its
    status change: at most `every` late. The clock is time.perf_counter (the machine's
    monotonic clock), which the generator's process shares.
    """

    def __init__(self, url: str, prefix: str, every: float = PLAN_POLL_SECONDS,
                 not_before: threading.Event | None = None) -> None:
        from sqlalchemy.engine import make_url

        self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.prefix = prefix
        self.every = every
        self.planned: dict[str, tuple[float, str]] = {}  # external_id -> (first seen planned, status)
        self.received = 0  # reports still `received` at the last poll
        self.stored = 0
        self.drained_at: float | None = None  # the first poll that found none `received`
        self.not_before = not_before  # set when polling may start (None: at once)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PlanWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psycopg

        while self.not_before is not None and not self.not_before.wait(0.05):
            if self._stop.is_set():
                return
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute("SELECT external_id, status FROM incidents WHERE external_id LIKE %s",
                                    (f"{self.prefix}%",)).fetchall()
                seen = time.perf_counter()
                received = 0
                for external_id, status in rows:
                    if status == "received":
                        received += 1
                    elif external_id not in self.planned:
                        self.planned[external_id] = (seen, status)
                self.received, self.stored = received, len(rows)
                if received == 0 and rows and self.drained_at is None:
                    self.drained_at = seen
                elif received:
                    self.drained_at = None
                self._stop.wait(self.every)

    def wait_drained(self, stored_at_least: int, timeout: float = PLAN_TIMEOUT) -> bool:
        """Wait until at least `stored_at_least` reports are stored and none is `received`; False after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.drained_at is not None and self.stored >= stored_at_least:
                return True
            time.sleep(self.every)
        return False


@dataclass
class PlanFigures:
    """How long the planner took over a phase's reports."""

    label: str
    answered: int  # reports answered 201
    planned: int  # of those, seen planned (or needs_attention)
    statuses: Counter[str]
    p50: float  # ms from the 201 to planned
    p90: float
    p99: float
    worst: float
    after_last: float  # s from the last 201 to no report `received`
    drained: bool
    planner_cpu: float  # the planner process's CPU seconds over the phase and its drain


def plan_figures(result: PhaseResult, watch: PlanWatch, drained: bool, planner_cpu: float) -> PlanFigures:
    """Plan latency of each report answered 201 (poll time minus answer time), and the drain after the last answer.

    A phase polled only after its last request has no plan latency (nan): only its drain.
    """
    latencies, statuses = [], Counter[str]()
    missing = 0
    watched = watch.not_before is None  # polled during the phase: a plan latency for each report
    answers = [o for o in result.outcomes if o.status == 201]
    for o in answers:
        seen = watch.planned.get(o.external_id)
        if seen is None:  # not planned within PLAN_TIMEOUT: later than any figure
            missing += 1
            latencies.append(math.inf if watched else math.nan)
            continue
        latencies.append((seen[0] - (result.origin + o.done)) * 1000 if watched else math.nan)
        statuses[seen[1]] += 1
    latencies.sort()
    last_answer = result.origin + max((o.done for o in answers), default=0.0)
    last_planned = max((t for t, _ in watch.planned.values()), default=math.nan)
    after = (watch.drained_at if drained and watch.drained_at is not None else last_planned) - last_answer
    return PlanFigures(result.phase.label, len(answers), len(answers) - missing, statuses,
                       *(percentile(latencies, p) for p in (50, 90, 99)),
                       latencies[-1] if latencies else math.nan, after, drained, planner_cpu)


def print_plan_table(rows: list[PlanFigures]) -> None:
    """The table of plan latencies."""
    print(f"{'planning after intake':<30} {'answered':>8} {'planned':>8} {'needs_att':>9} {'p50 ms':>9} {'p90 ms':>9} "
          f"{'p99 ms':>9} {'max ms':>9} {'drain s':>8} {'planner CPU s':>13}")
    for r in rows:
        print(f"{r.label:<30} {r.answered:>8} {r.statuses.get('planned', 0):>8} {r.statuses.get('needs_attention', 0):>9} "
              + " ".join(f"{v:>9.1f}" if not math.isnan(v) else f"{'-':>9}" for v in (r.p50, r.p90, r.p99, r.worst))
              + f" {(format(r.after_last, '.1f') if r.drained else '>' + format(r.after_last, '.1f')):>8}"
              + f" {r.planner_cpu:>13.1f}")


# -- checks in the database ----------------------------------------------------------------------------


def database_checks(url: str, result: PhaseResult, seeded: Seeded) -> list[tuple[str, bool]]:
    """Every incident answered 201 is stored; no facilitator is double-booked, inside buffers or over the day cap."""
    from sqlalchemy import select, text

    from service.db import make_engine, make_session_factory
    from service.incidents.models import Incident

    answered = {o.incident_id for o in result.outcomes if o.status == 201}
    prefix = result.phase.id_prefix
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        stored = {str(i) for i in db.scalars(select(Incident.id).where(Incident.external_id.startswith(prefix)))}
        # Any two active bookings of one facilitator, one of them made in this phase, closer than the buffer.
        too_close = db.execute(text(
            "SELECT count(*) FROM assignments a JOIN assignments b ON a.facilitator_id = b.facilitator_id "
            "AND a.id > :seeded AND b.id <> a.id AND a.active AND b.active "
            "AND a.starts_at < b.ends_at + interval '60 minutes' AND b.starts_at < a.ends_at + interval '60 minutes'"
        ), {"seeded": seeded.last_assignment_id}).scalar_one()
        over_day_cap = db.execute(text(
            "SELECT count(*) FROM (SELECT a.facilitator_id FROM assignments a JOIN facilitators f ON f.id = a.facilitator_id "
            "WHERE a.active AND a.group_session GROUP BY a.facilitator_id, (a.starts_at AT TIME ZONE f.timezone)::date "
            "HAVING count(*) > 1 AND max(a.id) > :seeded) AS days"
        ), {"seeded": seeded.last_assignment_id}).scalar_one()
        new_bookings = db.execute(text("SELECT count(*) FROM assignments WHERE id > :seeded"),
                                  {"seeded": seeded.last_assignment_id}).scalar_one()
    engine.dispose()
    missing = answered - stored
    unanswered = stored - answered
    # A request the generator gave up on (timeout) may still have been recorded: a CAD system's retry
    # would get it back with 200. Any other incident without its 201 would be an answer lost.
    abandoned = sum(1 for o in result.outcomes if o.status == 0 and o.error != "unsent")
    return [
        (f"{result.phase.label}: incidents answered 201 and stored: {len(answered & stored)} of {len(answered)}",
         not missing),
        (f"{result.phase.label}: incidents stored without a 201 answer: {len(unanswered)} "
         f"(requests given up by the generator: {abandoned})", len(unanswered) <= abandoned),
        (f"{result.phase.label}: bookings made {new_bookings}; pairs of one facilitator's bookings closer than "
         f"the 60-minute buffer: {too_close}", too_close == 0),
        (f"{result.phase.label}: facilitator-days with two group sessions: {over_day_cap}", over_day_cap == 0),
    ]


def reset(url: str) -> None:
    """Back to the seeded state: delete the generator's incidents (cascading to their plans) and the outbox."""
    from sqlalchemy import text

    from service.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents WHERE external_id LIKE :prefix"), {"prefix": f"{LOAD_PREFIX}%"})
        conn.execute(text("DELETE FROM outbox"))  # the seed queues none: everything there came from the load
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


# -- the in-process profile ------------------------------------------------------------------------


def profile(url: str, seeded: Seeded, count: int) -> None:
    """Run `count` intakes in this process under pyinstrument; print where the time goes."""
    from pyinstrument import Profiler

    from service.app import create_app
    from service.config import Config

    app = create_app(Config(database_url=url, redis_url=REDIS_URL, secret_keys=(SECRET_KEY,)))
    client = app.test_client()
    phase = Phase("profile", 0, "/v1/incidents", 1, 0, keys=seeded.keys, id_prefix=f"{LOAD_PREFIX}P-", seed=23)
    reports = _Reports(phase)
    for n in range(3):  # first requests build caches (spec, templates, zone data): not the steady state
        body, headers = reports.request(10**6 + n)
        response = client.post("/v1/incidents", data=body, headers=headers)
        assert response.status_code == 201, (response.status_code, response.get_data(as_text=True))

    def intakes(first: int) -> tuple[list[float], Counter[str]]:
        timings, statuses = [], Counter[str]()
        for n in range(first, first + count):
            body, headers = reports.request(n)
            started = time.perf_counter()
            response = client.post("/v1/incidents", data=body, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
            statuses[f"{response.status_code} {response.get_json().get('status')}"] += 1
        return sorted(timings), statuses

    # Both runs start from the seeded state, so the profiled one sees the same pool.
    reset(url)
    cpu = time.process_time()
    plain, statuses = intakes(0)
    cpu = (time.process_time() - cpu) * 1000 / count
    print(f"{count} intakes in-process (Flask test client, PostgreSQL), one after another: median "
          f"{percentile(plain, 50):.1f} ms, p90 {percentile(plain, 90):.1f} ms, max {plain[-1]:.1f} ms; "
          f"CPU of this process {cpu:.1f} ms each; answers: {dict(statuses)}")
    reset(url)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    profiled, statuses = intakes(count)
    profiler.stop()
    app.extensions["debrief"].close()
    print(f"the same under pyinstrument: median {percentile(profiled, 50):.1f} ms; answers: {dict(statuses)}")
    print_profile(profiler, "intake", functions=25, flat=True)


def profile_planner(url: str, seeded: Seeded, passes: int, batch: int) -> None:
    """Run `passes` planner passes of `batch` new reports each in this process under pyinstrument; print where the time goes."""
    from pyinstrument import Profiler

    from service.app import create_app
    from service.config import Config
    from service.planner import plan_pending

    app = create_app(Config(database_url=url, redis_url=REDIS_URL, secret_keys=(SECRET_KEY,)))
    client = app.test_client()
    services = app.extensions["debrief"]
    reports = _Reports(Phase("profile", 0, "/v1/incidents", 1, 0, keys=seeded.keys, id_prefix=f"{LOAD_PREFIX}Q-", seed=29))
    timings, planned = [], 0
    profiler = Profiler(interval=0.0005)
    for n in range(passes):
        for i in range(batch):
            body, headers = reports.request(n * batch + i)
            assert client.post("/v1/incidents", data=body, headers=headers).status_code == 201
        started = time.perf_counter()
        profiler.start()
        planned += plan_pending(services)
        profiler.stop()
        timings.append((time.perf_counter() - started) * 1000)
    services.close()
    timings.sort()
    print(f"{passes} planner passes of {batch} reports each ({planned} planned), in-process on PostgreSQL: median "
          f"{percentile(timings, 50):.0f} ms, p90 {percentile(timings, 90):.0f} ms, max {timings[-1]:.0f} ms (under pyinstrument)")
    print_profile(profiler, "planning", functions=30, flat=False)


def print_profile(profiler: Any, what: str, *, functions: int, flat: bool) -> None:
    """Where the profiled time went: the service's functions (inclusive), the flat view if asked, the call tree."""
    root = profiler.last_session.root_frame() if profiler.last_session else None
    if root is None:
        return
    print(f"\ntime inside each function of the service (inclusive, % of all {what} time):")
    for name, seconds in hot_spots(root)[:functions]:
        print(f"  {seconds / root.time * 100:5.1f}%  {name}")
    if flat:
        print("\nself time, top functions (pyinstrument flat view):")
        view = profiler.output_text(unicode=True, color=False, flat=True, time="percent_of_total")
        print("\n".join(view.splitlines()[:30]))
    print("\ncall tree (pyinstrument):")
    print(profiler.output_text(unicode=True, color=False, time="percent_of_total"))


def hot_spots(root: Any) -> list[tuple[str, float]]:
    """Inclusive seconds of each function of the service or its workers, a recursive call counted once."""
    totals: Counter[str] = Counter()

    def walk(frame: Any, active: frozenset[str]) -> None:
        path = (frame.file_path or "").replace(os.sep, "/")
        name = None
        for package in ("/service/", "/workers/"):
            if package in path and "/site-packages/" not in path:
                name = f"{package.strip('/')}.{path.split(package, 1)[1][:-3].replace('/', '.')}.{frame.function}"
        if name and name not in active:
            totals[name] += frame.time
            active = active | {name}
        for child in frame.children:
            walk(child, active)

    walk(root, frozenset())
    return totals.most_common()


# -- the run ----------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench intake", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="fixed-rate phase: requests per second (default 100)")
    parser.add_argument("--seconds", type=float, default=20.0, help="fixed-rate phase: seconds of requests (default 20)")
    parser.add_argument("--drain", type=float, default=10.0,
                        help="fixed-rate phase: seconds after the last due time before unsent requests are given up (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="fixed-rate phase: connections (default 32)")
    parser.add_argument("--healthz-seconds", type=float, default=5.0, help="healthz phase: seconds (default 5)")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="max-rate intake phase: seconds (default 15)")
    parser.add_argument("--max-connections", type=int, default=16,
                        help="closed-loop phases: connections (default 16)")
    parser.add_argument("--facilitators", type=int, default=FACILITATORS, help=f"roster size (default {FACILITATORS})")
    parser.add_argument("--plan-rate", type=float, default=10.0,
                        help="plan-latency phase: reports per second (default 10)")
    parser.add_argument("--plan-seconds", type=float, default=30.0, help="plan-latency phase: seconds (default 30)")
    parser.add_argument("--burst", type=int, default=int(BURST_RATE * BURST_SECONDS),
                        help=f"burst phase: reports, at {BURST_RATE:g} req/s (default {BURST_RATE * BURST_SECONDS:.0f})")
    parser.add_argument("--quick", action="store_true", help="short phases at 20 req/s, for a check of the bench itself")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="instead of the load: N intakes in-process under pyinstrument")
    parser.add_argument("--profile-planner", type=int, metavar="N",
                        help="instead of the load: N planner passes in-process under pyinstrument")
    parser.add_argument("--profile-batch", type=int, default=5, metavar="K",
                        help="with --profile-planner: new reports per pass (default 5: 10 req/s over the 0.5 s gather)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rate, args.seconds, args.drain, args.healthz_seconds, args.max_seconds = 20.0, 5.0, 5.0, 2.0, 5.0
        args.plan_seconds, args.burst = 5.0, 200
    return args


def main(argv: list[str] | None = None) -> int:
    """Seed, serve, run the phases, check the database, print the table and the ratios."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    args = parse(argv)
    now = datetime.now(UTC)
    print(f"{now:%Y-%m-%d %H:%M:%S} UTC; {os.cpu_count()} CPUs; load average before: {load_average()}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="debrief-bench-intake-"))
    schema, url = create_schema("bench_intake")
    server: Server | None = None
    planner: Planner | None = None
    rows: list[Figures] = []
    plan_rows: dict[str, PlanFigures] = {}
    checks: list[tuple[str, bool]] = []
    notes: list[str] = []
    try:
        seeded = seed(url, now, random.Random(7), args.facilitators)
        print(f"seeded in {seeded.seconds:.1f} s: {len(AGENCIES)} agencies, {seeded.facilitators} facilitators; "
              f"{seeded.incidents} incidents over {HISTORY_DAYS} days with {seeded.sessions} sessions; active bookings: "
              f"{seeded.past_assignments} past, {seeded.upcoming_assignments} upcoming; "
              f"{seeded.booked_facilitators} facilitators booked in the last 30 days", flush=True)
        if args.profile:
            profile(url, seeded, args.profile)
            return 0
        if args.profile_planner:
            profile_planner(url, seeded, args.profile_planner, batch=args.profile_batch)
            return 0
        env = {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "SECRET_KEY": SECRET_KEY}
        server = Server(env, workdir / "server.log", workers=WORKERS)
        server.start()
        port = server.port
        # As docker-compose deploys it: REDIS_URL set, so `serve` starts no planner; the planner is a process of its own.
        planner = Planner({**server.env, **env}, workdir / "planner.log")
        planner.start()
        print(f"server: python -m service serve --workers {WORKERS} (gunicorn gthread, 8 threads each) on port {port}; "
              f"planner: python -m service planner, a process of its own; "
              f"load generator: 1 process, one thread per connection", flush=True)
        posting = dict(port=port, path="/v1/incidents", keys=seeded.keys)
        rate_label = f"intake {args.rate:g} req/s, {args.connections} conns"
        phases = {
            "warm-up": Phase("warm-up", connections=4, seconds=2.0, id_prefix=f"{LOAD_PREFIX}W-", seed=1, **posting),
            "healthz": Phase(f"healthz max, {args.max_connections} conns", port, "/healthz", args.max_connections,
                             args.healthz_seconds),
            "rate": Phase(rate_label, connections=args.connections, seconds=args.seconds, rate=args.rate,
                          drain=args.drain, id_prefix=f"{LOAD_PREFIX}R-", seed=2, **posting),
            "max": Phase(f"intake max, {args.max_connections} conns", connections=args.max_connections,
                         seconds=args.max_seconds, id_prefix=f"{LOAD_PREFIX}M-", seed=3, **posting),
            "latency": Phase(f"intake {args.plan_rate:g} req/s, {args.connections} conns", connections=args.connections,
                             seconds=args.plan_seconds, rate=args.plan_rate, drain=args.drain,
                             id_prefix=f"{LOAD_PREFIX}L-", seed=4, **posting),
            "burst": Phase(f"burst {args.burst} at {BURST_RATE:g} req/s", connections=args.connections,
                           seconds=args.burst / BURST_RATE, rate=BURST_RATE, drain=args.drain,
                           id_prefix=f"{LOAD_PREFIX}B-", seed=5, **posting),
        }
        results: dict[str, PhaseResult] = {}
        cpu_ms: dict[str, float] = {}
        posted = 0
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as generator:
            for name, phase in phases.items():
                if phase.intake:
                    reset(url)
                print(f"phase {phase.label} ...", flush=True)
                cpu, planner_cpu = server.cpu_seconds(), planner.cpu_seconds()
                if not phase.intake:
                    results[name] = result = generator.submit(drive, phase).result()
                    cpu_ms[name] = (server.cpu_seconds() - cpu) * 1000 / max(1, len(result.outcomes))
                    continue
                phase_over = threading.Event() if name == "max" else None
                with PlanWatch(url, phase.id_prefix, MAX_PHASE_POLL_SECONDS if name == "max" else PLAN_POLL_SECONDS,
                               not_before=phase_over) as watch:
                    results[name] = result = generator.submit(drive, phase).result()
                    if phase_over is not None:
                        phase_over.set()
                    answered_201 = sum(1 for o in result.outcomes if o.status == 201)
                    drained = watch.wait_drained(answered_201)
                plan_rows[name] = plan_figures(result, watch, drained, planner.cpu_seconds() - planner_cpu)
                checks.append((f"{phase.label}: the planner planned every report within {PLAN_TIMEOUT:.0f} s "
                               f"({watch.stored - watch.received} of {watch.stored} stored)", drained))
                # Requests the generator gave up on are still being served: let them finish before
                # checking, and before the next phase (which they would otherwise slow down).
                sent = sum(1 for o in result.outcomes if not math.isnan(o.sent))
                answered = wait_until_quiet(port, posted + sent)
                cpu_ms[name] = (server.cpu_seconds() - cpu) * 1000 / max(1, (answered or posted + sent) - posted)
                posted = answered or posted + sent
                checks.append((f"{phase.label}: the server answered every request sent, late ones included",
                               answered is not None))
                if name != "warm-up":
                    checks += database_checks(url, result, seeded)
        for name in ("healthz", "rate", "max", "latency", "burst"):
            rows.append(figures(results[name], 200 if name == "healthz" else 201, cpu_ms[name]))
        for name in ("warm-up", "rate", "max", "latency", "burst"):
            result = results[name]
            errors = sum(1 for o in result.outcomes if o.status != 201)
            checks.append((f"{result.phase.label}: every answer 201 ({len(result.outcomes) - errors} of "
                           f"{len(result.outcomes)})", errors == 0))
            answers = Counter(o.incident_status for o in result.outcomes if o.status == 201)
            if name != "warm-up" and answers:
                notes.append(f"{result.phase.label}: 201 answers by status {dict(answers)}")
            for key, bodies in result.samples.items():
                for body in bodies[:1]:
                    notes.append(f"{result.phase.label}: sample answer for {key}: {body}")
        for name in ("rate", "latency", "burst"):
            sent = [o for o in results[name].outcomes if not math.isnan(o.sent)]
            lag = sorted((o.sent - o.due) * 1000 for o in sent)
            offered = (len(sent) - 1) / (sent[-1].sent - sent[0].sent) if len(sent) > 1 else math.nan
            notes.append(f"{results[name].phase.label}: open loop, latency from each request's due time; "
                         f"offered {offered:.1f} req/s ({len(sent)} sent from first to last send); send lag behind "
                         f"schedule p50 {percentile(lag, 50):.1f} ms, p99 {percentile(lag, 99):.1f} ms, "
                         f"max {lag[-1] if lag else math.nan:.1f} ms")
    finally:
        if planner is not None:
            planner.stop()
            if any(r.planned < r.answered for r in plan_rows.values()):
                print(f"planner log (last lines):\n{planner.log_tail(80)}")
        if server is not None:
            server.stop()
            if any(key.startswith("5") for f in rows for key in f.errors):
                print(f"server log (last lines):\n{server.log_tail(80)}")
        drop_schema(schema)
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(rows)
    print()
    print_plan_table([plan_rows[name] for name in ("rate", "max", "latency", "burst")])
    print("  planning after intake: ms from each 201 until the bench's poll (every "
          f"{PLAN_POLL_SECONDS * 1000:.0f} ms) saw the report planned or needs_attention (the max-rate phase is polled "
          f"only after it, every {MAX_PHASE_POLL_SECONDS * 1000:.0f} ms: no latency); drain s: from the phase's last 201 "
          "until no report of it is received")
    for note in notes:
        print(note)
    print(f"load average after: {load_average()}")
    failed = False
    for label, ok in checks:
        print(f"check {'ok  ' if ok else 'FAIL'} {label}")
        failed = failed or not ok
    healthz, fixed, best = rows[:3]
    ratio = best.throughput / healthz.throughput if healthz.throughput else math.nan
    print(f"gunicorn CPU per request: healthz {healthz.cpu_ms:.2f} ms, intake (max rate) {best.cpu_ms:.1f} ms; "
          f"{healthz.cpu_ms / best.cpu_ms:.3g} would be the throughput ratio if gunicorn's CPU were the only limit "
          f"(PostgreSQL's CPU and lock waits not counted; other load on the machine moves it less than req/s); "
          f"intake max {best.throughput:.1f} req/s, healthz {healthz.throughput:.1f} req/s")
    latency, burst = plan_rows["latency"], plan_rows["burst"]
    print(f"p99 at {args.rate:g} req/s: {'>=' if fixed.lower_bounds else ''}{fixed.p99:.0f} ms (target < 50 ms)")
    print(f"plan latency at {args.plan_rate:g} req/s: p50 {latency.p50:.0f} ms, p99 {latency.p99:.0f} ms "
          f"(target p99 < 2000 ms)")
    print(f"burst: {burst.answered} reports planned {'' if burst.drained else '> '}{burst.after_last:.1f} s after the "
          f"last answer (target < 60 s)")
    print(f"ratio: intake max throughput / healthz throughput = {ratio:.2f} (target >= 0.20)")
    missed = (fixed.lower_bounds or fixed.p99 >= 50 or latency.p99 >= 2000 or not burst.drained
              or burst.after_last >= 60 or not ratio >= 0.20)
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
