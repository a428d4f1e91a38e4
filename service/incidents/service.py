"""Incident use cases: intake (idempotent), reading, listing, changing."""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from collections import abc
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Integer, Row, Select, String, and_, bindparam, column, func, insert, literal, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from service.agencies.models import Agency
from service.auth.service import KeyCheck, Principal, checked, key_parameters, live_key, principal_of
from service.db import is_postgres, new_id
from service.errors import Conflict, InvalidInput, NotFound
from service.followups.outgoing import sync_incident
from service.incidents import status as incident_status
from service.incidents.models import IdempotencyRecord, Incident, Personnel
from service.incidents.schemas import MAX_PERSONNEL
from service.pagination import decode_cursor, encode_cursor, newest_first
from service.planning import PlanningPolicy
from service.planning.agenda import session_window
from service.sessions import service as sessions

DEFAULT_POLICY = PlanningPolicy()



@dataclass(frozen=True, slots=True)
class Window:
    """The group-debriefing window of an incident."""

    opens_at: datetime
    closes_at: datetime


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An incident as the API shows it: times in the agency's zone, counts instead of people."""

    id: uuid.UUID
    external_id: str
    agency_code: str
    type: str
    severity: int
    occurred_at: datetime
    region: str
    status: str
    window: Window
    personnel_count: int
    created_at: datetime
    updated_at: datetime
    sessions: list[sessions.SessionView] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """An incident in a supervisor's list: the plan's state only (no sessions, groups or problems)."""

    id: uuid.UUID
    external_id: str
    status: str
    window: Window
    at_risk: bool
    summary: bool = True


# Roles that list incidents as their status only (and see counts at /status): never the groups,
# whose keys (language, exposure, command staff) can single people out.
STATUS_ONLY_ROLES = frozenset({"supervisor"})


@dataclass(frozen=True, slots=True)
class Intake:
    """The outcome of an incident report: the incident's id, whether it is new (then, its view as stored), and who reported it."""

    incident_id: uuid.UUID
    created: bool
    view: IncidentView | None = None
    principal: Principal | None = None


def debriefing_window(occurred_at: datetime, policy: PlanningPolicy = DEFAULT_POLICY) -> Window:
    """By default 24 to 72 elapsed hours after the incident (elapsed: a DST change cannot shift it)."""
    window = session_window("debriefing", occurred_at, policy)
    return Window(window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc))


_PLAIN = (str, int, float)


def fingerprint(report: Mapping[str, Any]) -> str:
    """SHA-256 of a report in canonical form: equal for semantically equal bodies."""

    def canonical(value: Any) -> Any:
        if isinstance(value, _PLAIN):  # most values: tested first, a surge's reports come through here
            return value
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc).isoformat()
        if isinstance(value, abc.Mapping):
            return {k: canonical(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return value

    body = canonical(dict(report))
    body["personnel"] = sorted(body.get("personnel", []), key=lambda p: p["external_id"])
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def present(db: Session, incident: Incident, *, personnel_count: int | None = None,
            session_views: list[sessions.SessionView] | None = None) -> IncidentView:
    """The API view of an incident; a list passes its sessions, read for the whole page at once."""
    zone = ZoneInfo(incident.agency.timezone)
    return IncidentView(
        id=incident.id,
        external_id=incident.external_id,
        agency_code=incident.agency.code,
        type=incident.type,
        severity=incident.severity,
        occurred_at=incident.occurred_at.astimezone(zone),
        region=incident.region,
        status=incident.status,
        window=_local_window(incident.occurred_at, zone, sessions.policy_for(incident.agency)),
        personnel_count=len(incident.personnel) if personnel_count is None else personnel_count,
        created_at=incident.created_at.astimezone(zone),
        updated_at=incident.updated_at.astimezone(zone),
        sessions=session_views if session_views is not None else sessions.incident_sessions(db, [incident])[incident.id],
        problems=list(incident.problems or []),
    )


def _local_window(occurred_at: datetime, zone: ZoneInfo, policy: PlanningPolicy) -> Window:
    window = debriefing_window(occurred_at, policy)
    return Window(window.opens_at.astimezone(zone), window.closes_at.astimezone(zone))


def _received(agency: Row[Any], incident_id: uuid.UUID, data: Mapping[str, Any], now: datetime) -> IncidentView:
    """The view of a report just stored: what it says, as `received`, with no plan yet."""
    zone = ZoneInfo(agency.timezone)
    return IncidentView(
        id=incident_id, external_id=data["external_id"], agency_code=agency.code, type=data["type"],
        severity=data["severity"], occurred_at=data["occurred_at"].astimezone(zone), region=data["region"],
        status="received", window=_local_window(data["occurred_at"], zone, sessions.policy_for(agency)),
        personnel_count=len(data["personnel"]), created_at=now.astimezone(zone), updated_at=now.astimezone(zone),
    )


def _check_occurred_at(occurred_at: datetime, *, now: datetime, skew: timedelta) -> None:
    if occurred_at > now + skew:
        raise InvalidInput(
            "occurred_at lies in the future.",
            errors={"occurred_at": [f"Must not be later than now (allowing {int(skew.total_seconds())} s of clock skew)."]},
        )


_PERSON_COLUMNS = ("external_id", "name", "email", "phone", "role", "unit", "exposure", "language")


def _person(p: Mapping[str, Any]) -> dict[str, Any]:
    """A person's personnel columns from the report (validated: only phone and unit may be missing)."""
    return {name: p.get(name) for name in _PERSON_COLUMNS}


def _personnel_rows(people: Sequence[Mapping[str, Any]]) -> list[Personnel]:
    return [Personnel(**_person(p)) for p in people]


def _load(db: Session, *, agency_id: int, incident_id: uuid.UUID) -> Incident:
    incident = db.scalar(
        select(Incident)
        .where(Incident.id == incident_id, Incident.agency_id == agency_id)
        .options(selectinload(Incident.personnel))
    )
    if incident is None:
        raise NotFound(f"No incident {incident_id}.")
    return incident


def _replay_key(db: Session, *, agency_id: int, key: str | None, print_: str) -> Intake | None:
    """The answer already given under this Idempotency-Key, if any."""
    if key is None:
        return None
    record = db.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.agency_id == agency_id, IdempotencyRecord.key == key)
    )
    if record is None:
        return None
    if record.fingerprint != print_:
        raise InvalidInput(
            "This Idempotency-Key was used with a different request body.",
            errors={"Idempotency-Key": ["Already used for another request."]},
        )
    incident = _load(db, agency_id=agency_id, incident_id=record.incident_id)
    return Intake(incident.id, created=record.status_code == 201)


def _replay(db: Session, *, agency_id: int, key: str | None, external_id: str, print_: str) -> Intake | None:
    """The answer already given to this report, if it was seen before."""
    by_key = _replay_key(db, agency_id=agency_id, key=key, print_=print_)
    if by_key is not None:
        return by_key
    existing = db.execute(
        select(Incident.id, Incident.fingerprint).where(Incident.agency_id == agency_id, Incident.external_id == external_id)
    ).first()
    if existing is None:
        return None
    if existing.fingerprint != print_:
        raise Conflict(
            f"Incident {external_id!r} was already reported with different content.",
            incident_id=str(existing.id),
        )
    return Intake(existing.id, created=False)


def report(
    *, db: Session, caller: Principal | KeyCheck, data: Mapping[str, Any], idempotency_key: str | None,
    now: datetime, clock_skew: timedelta,
) -> tuple[IncidentView, bool, Principal]:
    """Record an incident report once, for the planner to plan; a retry gets the same incident, a changed body a 409.

    `caller`: the reporter, or their key, then checked in the same statement (PostgreSQL), a 401 or 403 storing nothing.
    """
    intake = _record(db=db, caller=caller, data=data, idempotency_key=idempotency_key, now=now, clock_skew=clock_skew)
    assert intake.principal is not None
    if intake.view is not None:
        return intake.view, intake.created, intake.principal
    return get(db=db, agency_id=intake.principal.agency_id, incident_id=intake.incident_id), intake.created, intake.principal


def await_plan(*, db: Session, agency_id: int, incident_id: uuid.UUID, seconds: float,
               clock: Callable[[], float] = time.monotonic, pause: Callable[[float], None] = time.sleep) -> IncidentView:
    """The incident once the planner has planned it, or as it stands after `seconds`."""
    deadline = clock() + seconds
    interval = 0.02
    while True:
        db.rollback()  # a fresh read each time
        status = db.scalar(select(Incident.status).where(Incident.id == incident_id, Incident.agency_id == agency_id))
        db.rollback()  # no transaction (on SQLite, no lock) held while waiting
        left = deadline - clock()
        if status != "received" or left <= 0:
            return get(db=db, agency_id=agency_id, incident_id=incident_id)
        pause(min(interval, left))
        interval = min(interval * 2, 0.25)


def flag_unplanned(db: Session, *, incident_id: uuid.UUID, reason: str, now: datetime) -> None:
    """A report the planner could not plan: say so (needs_attention, coordinators alerted) rather than leave it `received`."""
    incident = sessions.lock_incident(db, incident_id)
    if incident is not None and incident.status == "received":
        sessions.set_problem(incident, None, "debriefing", [reason])
        incident.updated_at = now
        sync_incident(db, incident, now)  # the coordinators' alert, and everyone's 30-day check-in
        db.commit()
    else:
        db.rollback()


# Intake's statements on SQLite, or for a caller already known (Core, built once); on PostgreSQL, _store_at_once.
_INSERT_INCIDENT = insert(Incident.__table__).values(
    id=bindparam("incident_id"), agency_id=bindparam("agency_id"), external_id=bindparam("external_id"), type=bindparam("type"),
    severity=bindparam("severity"), occurred_at=bindparam("occurred_at"), region=bindparam("region"), status="received",
    problems=[], fingerprint=bindparam("fingerprint"), created_at=bindparam("now"), updated_at=bindparam("now"),
)
_INSERT_KEY = insert(IdempotencyRecord.__table__).values(
    agency_id=bindparam("agency_id"), key=bindparam("key"), fingerprint=bindparam("fingerprint"), incident_id=bindparam("incident_id"),
    status_code=201, created_at=bindparam("now"),
)
_INSERT_PERSONNEL = insert(Personnel.__table__)
_AGENCY_OF_INTAKE = select(Agency.code, Agency.timezone, Agency.policy).where(Agency.id == bindparam("agency_id"))


def _param(table: Any, name: str, parameter: str | None = None) -> Any:
    """A parameter typed as the column it fills (a SELECT of parameters has no column to infer it from)."""
    return bindparam(parameter or name, type_=table.c[name].type)


@functools.cache
def _store_at_once(with_key: bool, roles: frozenset[str]) -> Select[Any]:
    """PostgreSQL, in one statement (one round trip): the caller's key checked (service.auth.service.live_key) and,
    for a role among `roles`, the report, its personnel (a JSON array), its Idempotency-Key and the planners' wake-up
    stored. Its one row is the key's, with its agency's code, zone and policy; no row: no live key."""
    caller, touched = live_key("caller")
    incidents, keys = Incident.__table__, IdempotencyRecord.__table__
    now = _param(incidents, "created_at", "now")
    incident = insert(incidents).from_select(
        ("id", "agency_id", "external_id", "type", "severity", "occurred_at", "region", "status", "problems", "fingerprint",
         "created_at", "updated_at"),
        select(_param(incidents, "id", "incident_id"), caller.c.agency_id, *(_param(incidents, name) for name in
               ("external_id", "type", "severity", "occurred_at", "region")), literal("received"),
               literal([], incidents.c.problems.type), _param(incidents, "fingerprint"), now, now)
        .where(caller.c.role.in_([literal(role) for role in sorted(roles)])),  # a fixed list: no expanding parameter
    ).returning(incidents.c.id).cte("stored_incident")
    people = func.json_to_recordset(bindparam("people", type_=JSON)).table_valued(
        *(column(name, String) for name in _PERSON_COLUMNS), column("listed", Integer),
    ).render_derived(name="person", with_types=True)
    personnel = insert(Personnel.__table__).from_select(
        ("incident_id", *_PERSON_COLUMNS, "added_at"),
        select(incident.c.id, *(people.c[name] for name in _PERSON_COLUMNS), now)
        .select_from(incident).join(people, true()).order_by(people.c.listed),  # their ids in the report's order
    ).cte("stored_personnel")
    ctes = [touched, incident, personnel]
    if with_key:
        ctes.append(insert(keys).from_select(
            ("agency_id", "key", "fingerprint", "incident_id", "status_code", "created_at"),
            select(caller.c.agency_id, _param(keys, "key"), _param(keys, "fingerprint"), incident.c.id, literal(201), now)
            .select_from(incident).join(caller, true()),
        ).cte("stored_key"))
    return (
        select(caller.c.id, caller.c.role, caller.c.agency_id, caller.c.facilitator_id, Agency.code, Agency.timezone,
               Agency.policy, select(sessions.planner_wake_up()).select_from(incident).scalar_subquery().label("planners_woken"))
        .select_from(caller).outerjoin(Agency, Agency.id == caller.c.agency_id)
        .add_cte(*ctes)
    )


def _store(db: Session, *, caller: Principal | KeyCheck, incident_id: uuid.UUID, data: Mapping[str, Any], key: str | None,
           print_: str, now: datetime) -> tuple[Principal, Row[Any]]:
    """Check the caller's key if it is left to this statement, insert the report, its personnel and its
    Idempotency-Key, and wake the planners; the caller, and its agency's code, zone and policy."""
    params = {"incident_id": incident_id, "external_id": data["external_id"], "type": data["type"],
              "severity": data["severity"], "occurred_at": data["occurred_at"], "region": data["region"],
              "fingerprint": print_, "key": key, "now": now}
    if isinstance(caller, KeyCheck) and is_postgres(db):
        people = [{**_person(p), "listed": n} for n, p in enumerate(data["personnel"])]
        # On a connection of the session's engine, outside the session: one statement needs no transaction (on
        # intake's autocommit engine, the commit sends nothing), and the session's would cost some 7% of the
        # server's CPU per report (bench/RESULTS.md).
        with db.get_bind().connect() as connection:
            row = connection.execute(
                _store_at_once(key is not None, caller.roles), {**params, **key_parameters(caller.secret, now), "people": people},
            ).first()
            connection.commit()
        principal = caller.admit(principal_of(row) if row is not None else None)  # refused: nothing was stored
        return principal, row
    principal = checked(caller, db, now)
    params["agency_id"] = principal.agency_id
    db.execute(_INSERT_INCIDENT, params)
    db.execute(_INSERT_PERSONNEL, [{**_person(p), "incident_id": incident_id, "added_at": now} for p in data["personnel"]])
    if key is not None:
        db.execute(_INSERT_KEY, params)
    agency = db.execute(_AGENCY_OF_INTAKE, params).one()
    db.commit()
    return principal, agency


def _record(
    *, db: Session, caller: Principal | KeyCheck, data: Mapping[str, Any], idempotency_key: str | None,
    now: datetime, clock_skew: timedelta,
) -> Intake:
    """Store the report in its own transaction, so it is durable before planning starts."""
    _check_occurred_at(data["occurred_at"], now=now, skew=clock_skew)
    print_ = fingerprint(data)
    incident_id = new_id()
    try:
        # A report seen before (by its external_id or its Idempotency-Key), or a concurrent twin, meets a
        # unique constraint here: the common case, a new report, costs no lookup.
        principal, agency = _store(db, caller=caller, incident_id=incident_id, data=data, key=idempotency_key,
                                   print_=print_, now=now)
    except IntegrityError:
        db.rollback()
        principal = checked(caller, db, now)
        replay = _replay(db, agency_id=principal.agency_id, key=idempotency_key, external_id=data["external_id"],
                         print_=print_)
        if replay is None:
            raise
        if idempotency_key is not None:
            _remember_key(db, agency_id=principal.agency_id, key=idempotency_key, print_=print_,
                          incident_id=replay.incident_id, status=200)
        return replace(replay, principal=principal)
    # Its answer, from what is stored: nothing to read back, and no session yet.
    return Intake(incident_id, created=True, principal=principal, view=_received(agency, incident_id, data, now))


def _remember_key(db: Session, *, agency_id: int, key: str, print_: str, incident_id: uuid.UUID, status: int) -> None:
    """Bind a new Idempotency-Key to the incident a retry resolved to."""
    exists = db.scalar(select(IdempotencyRecord.id).where(IdempotencyRecord.agency_id == agency_id, IdempotencyRecord.key == key))
    if exists is not None:
        db.rollback()
        return
    db.add(IdempotencyRecord(agency_id=agency_id, key=key, fingerprint=print_, incident_id=incident_id, status_code=status))
    try:
        db.commit()
    except IntegrityError:
        db.rollback()


def get(*, db: Session, agency_id: int, incident_id: uuid.UUID) -> IncidentView:
    """One incident of the caller's agency."""
    return present(db, _load(db, agency_id=agency_id, incident_id=incident_id))


def list_page(
    *, db: Session, agency_id: int, status: str | None, limit: int, cursor: str | None, at_risk: bool = False,
    now: datetime, role: str,
) -> tuple[list[IncidentView] | list[IncidentSummary], str | None]:
    """Incidents of the agency, newest first (at risk: the window closing first), one page at a time."""
    query = select(Incident).where(Incident.agency_id == agency_id)
    if status is not None:
        query = query.where(Incident.status == status)
    if at_risk:
        rows, next_cursor = _at_risk_page(db, query, limit=limit, cursor=cursor, now=now)
    else:
        rows, next_cursor = newest_first(db, query, at=Incident.created_at, id=Incident.id, limit=limit, cursor=cursor,
                                         parse_id=uuid.UUID)
    if role in STATUS_ONLY_ROLES:
        return [_summary(r, now) for r in rows], next_cursor
    return _views(db, rows), next_cursor


def _summary(incident: Incident, now: datetime) -> IncidentSummary:
    zone = ZoneInfo(incident.agency.timezone)
    window = _local_window(incident.occurred_at, zone, sessions.policy_for(incident.agency))
    return IncidentSummary(
        id=incident.id, external_id=incident.external_id, status=incident.status, window=window,
        at_risk=incident_status.is_at_risk(incident, window.closes_at, now),
    )


def _at_risk_page(db: Session, query: Any, *, limit: int, cursor: str | None, now: datetime) -> tuple[list[Incident], str | None]:
    """Incidents needing attention, or unplanned with the window closing within 12 h, the earliest close first.

    One agency has one policy, so its windows close in the order its incidents occurred: the
    cursor is on (occurred_at, id).
    """
    query = query.where(Incident.status.in_(("needs_attention", "received")))
    if cursor:
        occurred, after = decode_cursor(cursor, uuid.UUID)
        query = query.where(or_(Incident.occurred_at > occurred, and_(Incident.occurred_at == occurred, Incident.id > after)))
    rows: list[Incident] = []
    more = False
    for incident in db.scalars(query.order_by(Incident.occurred_at, Incident.id)):
        closes_at = debriefing_window(incident.occurred_at, sessions.policy_for(incident.agency)).closes_at
        if not incident_status.is_at_risk(incident, closes_at, now):
            continue
        if len(rows) == limit:
            more = True
            break
        rows.append(incident)
    return rows, (encode_cursor(rows[-1].occurred_at, rows[-1].id) if more else None)


def _views(db: Session, rows: list[Incident]) -> list[IncidentView]:
    counts = _personnel_counts(db, [r.id for r in rows])
    page_sessions = sessions.incident_sessions(db, rows)
    return [present(db, r, personnel_count=counts.get(r.id, 0), session_views=page_sessions[r.id]) for r in rows]


def _personnel_counts(db: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not ids:
        return {}
    query = select(Personnel.incident_id, func.count()).where(Personnel.incident_id.in_(ids)).group_by(Personnel.incident_id)
    return {incident_id: count for incident_id, count in db.execute(query)}


def update(*, db: Session, agency_id: int, incident_id: uuid.UUID, changes: Mapping[str, Any], now: datetime) -> IncidentView:
    """Add personnel, change severity, or cancel; the change and its re-plan commit together."""

    def attempt() -> None:
        incident = sessions.lock_incident(db, incident_id)
        if incident is None or incident.agency_id != agency_id:
            raise NotFound(f"No incident {incident_id}.")
        if incident.status == "cancelled":
            raise Conflict("The incident is cancelled; it can no longer change.")
        if changes.get("status") == "cancelled":
            incident.status = "cancelled"
            incident.updated_at = now
            sessions.cancel_incident_sessions(db, incident=incident, now=now)
            sessions.commit(db)
            return
        if "severity" in changes:
            incident.severity = changes["severity"]
        _add_personnel(incident, changes.get("add_personnel") or [])
        db.flush()
        sessions.plan_locked(db, incident=incident, now=now)
        sessions.commit(db)

    sessions.retrying(db, attempt)
    return get(db=db, agency_id=agency_id, incident_id=incident_id)


def replan(*, db: Session, agency_id: int, incident_id: uuid.UUID, now: datetime) -> IncidentView:
    """Plan every group without a scheduled or held session, those a coordinator cancelled included."""
    incident = _load(db, agency_id=agency_id, incident_id=incident_id)
    if incident.status == "cancelled":
        raise Conflict("The incident is cancelled.")
    db.rollback()
    sessions.plan(db, incident_id=incident_id, now=now, include_cancelled=True)
    return get(db=db, agency_id=agency_id, incident_id=incident_id)


def _add_personnel(incident: Incident, added: Sequence[Mapping[str, Any]]) -> None:
    if not added:
        return
    known = {p.external_id for p in incident.personnel}
    clashes = {f"add_personnel.{i}.external_id": ["Already involved in this incident."] for i, p in enumerate(added) if p["external_id"] in known}
    if clashes:
        raise Conflict("Some personnel are already listed on the incident.", errors=clashes)
    if len(known) + len(added) > MAX_PERSONNEL:
        raise InvalidInput(
            f"An incident has at most {MAX_PERSONNEL} personnel.",
            errors={"add_personnel": [f"Would bring the incident to {len(known) + len(added)} personnel."]},
        )
    incident.personnel.extend(_personnel_rows(added))
