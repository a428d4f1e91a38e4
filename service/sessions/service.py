"""Session use cases: plan an incident, re-plan it, replace a facilitator, and coordinator actions.

Planning is pure (`service.planning`); this module loads its inputs, writes its outputs,
and makes concurrent planners safe. On PostgreSQL, every write that may book from the pool
runs in `retrying`, which takes one advisory lock (`_plan_alone`) before any row lock:
planners prefer the same least-loaded facilitators, so side by side they mostly planned twice
and threw one plan away, and writes that lock rows in different orders (a facilitator's own
change takes their row first) deadlocked each other. A plan is still committed only after
the rows of the facilitators it books are locked and the plan re-checked against bookings
committed meanwhile (an exclusion constraint backs this up); on SQLite every write
transaction holds the database lock from its first statement.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Row, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import selectinload

from service.agencies.models import Agency
from service.agencies.policy import policy_from_overrides
from service.auth.service import Principal
from service.db import is_postgres
from service.errors import Conflict, InvalidInput, NotFound
from service.facilitators.models import Facilitator
from service.facilitators.service import planning_profiles, to_profile
from service.followups.models import Followup
from service.followups.outgoing import individual_unstaffed, sync_incident
from service.incidents.models import Incident, Personnel
from service.planning import (
    AgendaItem, Booking, FacilitatorPool, FacilitatorProfile, Group, IncidentFacts, IncidentPlan, Participant, PlannedSession,
    PlanningPolicy, Schedule, build_agenda, find_replacement, ineligibility_reasons, plan_batch, plan_incident, plan_individual,
    session_ref, split_into_groups,
)
from service.planning import individual_starts as planned_starts
from service.planning.agenda import session_window
from service.planning.timegrid import grid_starts
from service.planning.types import Interval
from service.sessions.models import Assignment, Session, SessionParticipant

GROUP_KINDS = ("defusing", "debriefing")
PLANNING_ATTEMPTS = 4
# The PostgreSQL advisory lock key of booking from the pool (any constant no other code uses).
PLANNING_LOCK = 0x44656272  # "Debr"
# The PostgreSQL NOTIFY channel on which intake wakes the planners.
PLANNER_CHANNEL = "debrief_planner"
INDIVIDUAL_NOTICE = timedelta(hours=4)
UTC = timezone.utc
# Bookings loaded one by one: those that started at most this long ago (no session lasts longer).
BOOKINGS_KEPT = timedelta(days=8)


class LostRace(Exception):
    """Another transaction booked one of our facilitators first: plan again."""


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session as the API shows it: counts of people, never names."""

    id: uuid.UUID
    incident_id: uuid.UUID
    kind: str
    group: str | None
    language: str
    status: str
    starts_at: datetime
    ends_at: datetime
    sequence: int
    location: dict[str, str]
    facilitators: list[dict[str, Any]]
    participant_count: int
    agenda: list[dict[str, Any]]


def policy_for(agency: Agency | Row[Any]) -> PlanningPolicy:
    """The agency's planning policy (of its row, or of a row read with its `policy` column): the defaults with its overrides."""
    return policy_from_overrides(agency.policy or {})


def incident_facts(incident: Incident) -> IncidentFacts:
    """The incident as the planner sees it."""
    return IncidentFacts(
        ref=str(incident.id), agency_id=incident.agency_id, severity=incident.severity,
        occurred_at=incident.occurred_at, region=incident.region, timezone=incident.agency.timezone,
        participants=tuple(_participant(p) for p in incident.personnel),
    )


def _participant(p: Personnel) -> Participant:
    return Participant(key=p.external_id, email=p.email.lower(), role=p.role, unit=p.unit, exposure=p.exposure, language=p.language)


def present(session: Session, zone: ZoneInfo) -> SessionView:
    """The API view of a session, times in the agency's zone."""
    return SessionView(
        id=session.id, incident_id=session.incident_id, kind=session.kind, group=session.group_key,
        language=session.language, status=session.status,
        starts_at=session.starts_at.astimezone(zone), ends_at=session.ends_at.astimezone(zone),
        sequence=session.sequence, location={"mode": session.mode, "region": session.region},
        facilitators=[{"id": a.facilitator_id, "kind": a.facilitator.kind} for a in session.assignments if a.active],
        participant_count=session.participant_count,
        agenda=[
            {"phase": item["phase"], "starts_at": datetime.fromisoformat(item["starts_at"]).astimezone(zone), "minutes": item["minutes"]}
            for item in session.agenda
        ],
    )


def incident_sessions(db: DbSession, incidents: Sequence[Incident]) -> dict[uuid.UUID, list[SessionView]]:
    """The sessions of each incident, earliest first, read in one query for a whole page."""
    by_incident: dict[uuid.UUID, list[SessionView]] = {incident.id: [] for incident in incidents}
    if not incidents:
        return by_incident
    zones = {incident.id: ZoneInfo(incident.agency.timezone) for incident in incidents}
    rows = db.scalars(
        # Individual sessions are not shown with the incident: each one says someone accepted an offer.
        select(Session).where(Session.incident_id.in_(list(by_incident)), Session.kind.in_(GROUP_KINDS))
        .options(selectinload(Session.assignments)).order_by(Session.starts_at, Session.kind, Session.group_key)
    )
    for session in rows:
        by_incident[session.incident_id].append(present(session, zones[session.incident_id]))
    return by_incident


# -- loading the planner's inputs ---------------------------------------------------------------


@dataclass
class PlanningState:
    """The roster and the bookings, as the planner needs them."""

    pool: FacilitatorPool
    schedule: Schedule
    profiles: dict[int, Any] = field(default_factory=dict)


# The pool built from the last roster, per thread: its entries carry the planner's memos, which
# are safe to share between planning calls but not between threads planning at once.
_POOLS = threading.local()


def _pool(profiles: list[FacilitatorProfile]) -> FacilitatorPool:
    """The pool of these profiles: this thread's last one when the roster is unchanged."""
    key = tuple(map(id, profiles))  # cached profiles: the same content is the same object
    last = getattr(_POOLS, "last", None)
    if last is not None and last[0] == key:
        return last[1]
    pool = FacilitatorPool(profiles)
    # The pool holds the profiles, so their ids cannot be reused while the key is kept.
    _POOLS.last = (key, pool)
    return pool


def load_state(db: DbSession, *, now: datetime, policy: PlanningPolicy, facilitator_ids: Iterable[int] | None = None) -> PlanningState:
    """Load facilitators, the bookings that overlaps and caps can meet, and counts of older ones for load."""
    ids = None if facilitator_ids is None else sorted(set(facilitator_ids))
    roster = planning_profiles(db, ids)
    # Overlaps and the rolling-week cap look at most a week back from today: older sessions
    # only count towards a facilitator's load, which the database counts.
    recent = now - BOOKINGS_KEPT
    since = now - timedelta(days=policy.load_lookback_days)
    mine = () if ids is None else (Assignment.facilitator_id.in_(ids),)
    earlier: dict[str, Any] = {}
    if since < recent:
        earlier = {"earlier": (since, recent), "earlier_loads": dict(db.execute(
            select(Assignment.facilitator_id, func.count())
            .where(Assignment.active, Assignment.starts_at >= since, Assignment.starts_at < recent, *mine)
            .group_by(Assignment.facilitator_id)
        ).all())}
    schedule = Schedule(**earlier)
    for fid, session_id, starts_at, ends_at, group in db.execute(
        select(Assignment.facilitator_id, Assignment.session_id, Assignment.starts_at, Assignment.ends_at,
               Assignment.group_session).where(Assignment.active, Assignment.starts_at >= recent, *mine)
    ):
        # Already in UTC: the schedule would otherwise copy each booking to convert it.
        schedule.add(Booking(fid, str(session_id), starts_at.astimezone(UTC), ends_at.astimezone(UTC), group))
    pool = _pool(roster) if ids is None else FacilitatorPool(roster)
    return PlanningState(pool, schedule, {p.id: p for p in roster})


# -- transactions, locks and retries ---------------------------------------------------------------
#
# Every write path takes its locks in one order: the incident row, then its session rows, then
# facilitator rows in id order. What cannot follow that order (a facilitator's own change takes
# their row first) is covered by retrying on deadlock, as on a lost race.

# Deadlock detected, serialization failure, a lock not granted within lock_timeout (service.db).
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
EXCLUSION_VIOLATION = "23P01"
T = TypeVar("T")


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def retrying(db: DbSession, action: Callable[[], T], *, attempts: int = PLANNING_ATTEMPTS) -> T:
    """Run a write action that commits, alone on the pool; after a lost race or a deadlock, roll back and run it again."""
    for _attempt in range(attempts):
        try:
            _plan_alone(db)
            return action()
        except LostRace:
            db.rollback()
        except OperationalError as exc:
            if _sqlstate(exc) not in RETRYABLE_SQLSTATES:
                raise
            db.rollback()
    raise Conflict("Facilitators were booked concurrently and the change could not be made; retry shortly.")


def commit(db: DbSession) -> None:
    """Commit; an overlap refused by the exclusion constraint is a lost race."""
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        if _sqlstate(exc) == EXCLUSION_VIOLATION:
            raise LostRace(str(exc.orig)) from None
        raise


def _plan_alone(db: DbSession) -> None:
    """Wait until no other transaction is writing to the plan; held until this one ends.

    Taken first, before any row lock and before the bookings are read: the plan sees every
    booking committed before it, and writes that lock rows in different orders cannot deadlock.
    """
    if is_postgres(db):
        db.execute(select(func.pg_advisory_xact_lock(PLANNING_LOCK)))


def _lock_facilitators(db: DbSession, ids: Iterable[int]) -> None:
    """Lock facilitator rows in id order until commit; SQLite holds its write lock already."""
    ids = sorted(set(ids))
    if ids and is_postgres(db):
        db.execute(select(Facilitator.id).where(Facilitator.id.in_(ids)).order_by(Facilitator.id).with_for_update())


def lock_incident(db: DbSession, incident_id: uuid.UUID) -> Incident | None:
    """The incident with its personnel, its row locked for this transaction."""
    query = (
        select(Incident).where(Incident.id == incident_id)
        .options(selectinload(Incident.personnel)).execution_options(populate_existing=True)
    )
    if is_postgres(db):
        query = query.with_for_update(of=Incident)
    return db.scalar(query)


def _lock_sessions(db: DbSession, query: Any) -> list[Session]:
    query = query.options(selectinload(Session.assignments), selectinload(Session.participants)).order_by(Session.id)
    if is_postgres(db):
        query = query.with_for_update(of=Session)
    return list(db.scalars(query.execution_options(populate_existing=True)))


def _recheck(db: DbSession, planned: Sequence[tuple[PlannedSession, str, IncidentFacts]], *,
             policy: PlanningPolicy, now: datetime, ignore: Iterable[str] = ()) -> None:
    """After locking, check the new bookings (session, group language, incident) against what is committed now.

    Raises LostRace when one was taken meanwhile.
    """
    team = {fid for session, _, _ in planned for fid in session.facilitator_ids}
    _lock_facilitators(db, team)
    fresh = load_state(db, now=now, policy=policy, facilitator_ids=team)
    for ref in ignore:
        fresh.schedule.remove(ref)
    for session, language, incident in planned:
        for fid in session.facilitator_ids:
            reasons = ineligibility_reasons(
                fresh.profiles[fid], kind=session.kind, starts_at=session.starts_at, ends_at=session.ends_at,
                mode=session.mode, region=session.region, language=language, incident=incident,
                schedule=fresh.schedule, policy=policy, ignore_session_ref=session.ref,
            )
            if reasons:
                raise LostRace(f"facilitator {fid}: {', '.join(reasons)}")
        for fid in session.facilitator_ids:
            fresh.schedule.add(Booking(fid, session.ref, session.starts_at, session.ends_at, session.kind in GROUP_KINDS))


# -- the incident's status and problems ---------------------------------------------------------------


def _key(group: str | None, kind: str) -> tuple[str | None, str]:
    return (group, kind)


def _problems(incident: Incident) -> dict[tuple[str | None, str], list[str]]:
    return {_key(p["group"], p["kind"]): list(p["reasons"]) for p in incident.problems or []}


def _store_problems(incident: Incident, problems: dict[tuple[str | None, str], list[str]]) -> None:
    incident.problems = [
        {"group": group, "kind": kind, "reasons": reasons}
        for (group, kind), reasons in sorted(problems.items(), key=lambda item: (item[0][0] or "", item[0][1]))
    ]


def set_problem(incident: Incident, group: str | None, kind: str, reasons: Iterable[str]) -> None:
    """Record (or replace) why one group's session is missing or short, and refresh the status."""
    problems = _problems(incident)
    problems[_key(group, kind)] = list(reasons)
    _store_problems(incident, problems)
    refresh_status(incident)


def refresh_status(incident: Incident) -> None:
    """Derive the incident's status from its problems (a cancelled incident stays cancelled)."""
    if incident.status != "cancelled":
        incident.status = "needs_attention" if incident.problems else "planned"


# -- writing a plan -------------------------------------------------------------------------------


def _agenda_rows(agenda: Iterable[AgendaItem]) -> list[dict[str, Any]]:
    return [{"phase": a.phase, "starts_at": a.starts_at.isoformat(), "minutes": a.minutes} for a in agenda]


def _assign(session: Session, facilitator_ids: Iterable[int]) -> None:
    for fid in facilitator_ids:
        session.assignments.append(Assignment(
            facilitator_id=fid, active=True, group_session=session.kind in GROUP_KINDS,
            starts_at=session.starts_at, ends_at=session.ends_at,
        ))


def _release(assignment: Assignment, *, now: datetime, reason: str) -> None:
    assignment.active = False
    assignment.released_at = now
    assignment.release_reason = reason


def _move(session: Session, planned: PlannedSession, *, now: datetime, reason: str) -> bool:
    """Apply a re-planned time, place and team to a session; True when anything changed."""
    changed = (session.starts_at, session.ends_at, session.mode, session.region) != (
        planned.starts_at, planned.ends_at, planned.mode, planned.region)
    session.starts_at, session.ends_at = planned.starts_at, planned.ends_at
    session.mode, session.region = planned.mode, planned.region
    session.agenda = _agenda_rows(planned.agenda)
    keep = set(planned.facilitator_ids)
    current = {a.facilitator_id for a in session.assignments if a.active}
    for assignment in session.assignments:
        if assignment.active and assignment.facilitator_id not in keep:
            _release(assignment, now=now, reason=reason)
            changed = True
        elif assignment.active:
            assignment.starts_at, assignment.ends_at = planned.starts_at, planned.ends_at
    new = [fid for fid in planned.facilitator_ids if fid not in current]
    _assign(session, new)
    return changed or bool(new)


def _bump(session: Session, now: datetime) -> None:
    session.sequence += 1
    session.updated_at = now


def _members(session: Session) -> set[int]:
    return {sp.personnel_id for sp in session.participants}


def _set_participants(session: Session, group: Group, personnel_ids: dict[str, int]) -> None:
    wanted = {personnel_ids[p.key] for p in group.participants}
    session.participants = [sp for sp in session.participants if sp.personnel_id in wanted]
    present_ids = _members(session)
    session.participants.extend(SessionParticipant(personnel_id=pid) for pid in sorted(wanted - present_ids))
    session.participant_count = len(wanted)


def _cancel(session: Session, *, now: datetime, reason: str) -> None:
    session.status = "cancelled"
    for assignment in session.assignments:
        if assignment.active:
            _release(assignment, now=now, reason=reason)
    _bump(session, now)


def plan(db: DbSession, *, incident_id: uuid.UUID, now: datetime, include_cancelled: bool = False) -> None:
    """Plan (or re-plan) the group sessions of an incident whose groups are new, changed or short."""

    def attempt() -> None:
        incident = lock_incident(db, incident_id)
        if incident is None or incident.status == "cancelled":
            db.rollback()
            return
        plan_locked(db, incident=incident, now=now, include_cancelled=include_cancelled)
        commit(db)

    retrying(db, attempt)


def plan_locked(db: DbSession, *, incident: Incident, now: datetime, include_cancelled: bool = False) -> None:
    """Plan an incident whose row the caller has locked, in `retrying`; the caller commits (or retries on LostRace).

    A group is (re-)planned when it has never had a session, when its membership changed, or
    when its session is short of a team; never once its session is under way or held. A session
    a coordinator cancelled stays cancelled (flagged as a problem) unless `include_cancelled`.
    """
    policy = policy_for(incident.agency)
    state = load_state(db, now=now, policy=policy)
    pending = _pending(db, incident, state, policy=policy, now=now, include_cancelled=include_cancelled)
    outcome = _plan_one(pending, state, policy, now)
    _recheck(db, _to_check(pending, outcome), policy=policy, now=now, ignore=pending.set_aside)
    _apply(db, pending, outcome, now=now)


@dataclass
class _Pending:
    """One locked incident about to be planned: its groups, and which of them to (re-)plan."""

    incident: Incident
    facts: IncidentFacts
    wanted: dict[tuple[str, str], Group]
    personnel_ids: dict[str, int]
    problems: dict[tuple[str | None, str], list[str]]
    to_plan: dict[tuple[str, str], Session | None]
    stale: list[Session]
    exclude: dict[str, frozenset[int]]

    @property
    def set_aside(self) -> list[str]:
        """The booking refs of this incident's sessions that the plan replaces or cancels."""
        return [str(s.id) for s in self.to_plan.values() if s is not None] + [str(s.id) for s in self.stale]

    @property
    def all_new(self) -> bool:
        """Every group is planned from scratch (a report not planned yet)."""
        return set(self.to_plan) == set(self.wanted) and not any(self.to_plan.values())


def _pending(db: DbSession, incident: Incident, state: PlanningState, *, policy: PlanningPolicy, now: datetime,
             include_cancelled: bool = False) -> _Pending:
    """What planning this (locked) incident involves; the sessions it re-plans leave `state`'s schedule."""
    facts = incident_facts(incident)
    groups = split_into_groups(facts.participants, policy)
    kinds = GROUP_KINDS if incident.severity >= policy.defusing_min_severity else ("debriefing",)
    wanted = {(g.key, kind): g for g in groups for kind in kinds}
    personnel_ids = {p.external_id: p.id for p in incident.personnel}

    sessions = _lock_sessions(db, select(Session).where(Session.incident_id == incident.id, Session.kind.in_(GROUP_KINDS)))
    active = {(s.group_key, s.kind): s for s in sessions if s.status == "scheduled"}
    latest: dict[tuple[str | None, str], Session] = {}
    for s in sorted(sessions, key=lambda s: s.created_at):
        latest[(s.group_key, s.kind)] = s
    problems = _problems(incident)

    to_plan: dict[tuple[str, str], Session | None] = {}
    for key, group in wanted.items():
        target = {personnel_ids[p.key] for p in group.participants}
        session = active.get(key)
        if session is not None:
            if session.starts_at <= now or (_members(session) == target and key not in problems):
                continue
            to_plan[key] = session
            state.schedule.remove(str(session.id))
            continue
        last = latest.get(key)
        if last is not None and (last.status == "completed" or last.starts_at <= now):
            continue
        if last is not None and _members(last) == target and not include_cancelled:
            continue  # cancelled by a coordinator (flagged as a problem): not re-created behind their back
        to_plan[key] = None

    stale = [s for key, s in active.items() if key not in wanted and s.starts_at > now]
    for session in stale:
        state.schedule.remove(str(session.id))
    # A facilitator who declined a group's session is never put back on that group's session.
    # A group may have had several sessions (one cancelled, one re-planned): every one's decliners count.
    exclude: dict[str, frozenset[int]] = {}
    for s in sessions:
        if (s.group_key, s.kind) in to_plan and _declined(s):
            ref = session_ref(facts.ref, s.group_key, s.kind)
            exclude[ref] = exclude.get(ref, frozenset()) | _declined(s)
    return _Pending(incident, facts, wanted, personnel_ids, problems, to_plan, stale, exclude)


def _declined(session: Session) -> frozenset[int]:
    """The facilitators who declined this session: never put back on it."""
    return frozenset(a.facilitator_id for a in session.assignments if a.release_reason == "declined")


def _plan_one(pending: _Pending, state: PlanningState, policy: PlanningPolicy, now: datetime) -> IncidentPlan | None:
    """Plan the groups of one incident that need it (None when none does), booking them into `state`."""
    if not pending.to_plan:
        return None
    return plan_incident(pending.facts, state.pool, state.schedule, policy, now=now, only=frozenset(pending.to_plan),
                         exclude=pending.exclude)


def _to_check(pending: _Pending, outcome: IncidentPlan | None) -> list[tuple[PlannedSession, str, IncidentFacts]]:
    """The plan's sessions to re-check; existing sessions keep their id as booking ref, as the schedule has them."""
    checks = []
    for planned in outcome.sessions if outcome else ():
        existing = pending.to_plan[(planned.group_key, planned.kind)]
        checks.append((replace(planned, ref=str(existing.id)) if existing is not None else planned,
                       pending.wanted[(planned.group_key, planned.kind)].language, pending.facts))
    return checks


def _apply(db: DbSession, pending: _Pending, outcome: IncidentPlan | None, *, now: datetime) -> None:
    """Write a (re-checked) plan: sessions, teams, problems, the status, and the messages they owe."""
    incident, problems = pending.incident, pending.problems
    placed = {(p.group_key, p.kind): p for p in (outcome.sessions if outcome else ())}
    missing = {(p.group_key, p.kind): p.reasons for p in (outcome.problems if outcome else ())}
    for session in pending.stale:
        _cancel(session, now=now, reason="group_changed")
    for key, existing in pending.to_plan.items():
        group = pending.wanted[key]
        planned = placed.get(key)
        if planned is None:
            # Keep what exists (its people are already invited); say what is missing.
            problems[key] = list(missing.get(key, ()))
            if existing is not None:
                _set_participants(existing, group, pending.personnel_ids)
            continue
        problems.pop(key, None)
        if existing is None:
            session = Session(
                incident_id=incident.id, kind=planned.kind, group_key=group.key, language=group.language,
                status="scheduled", starts_at=planned.starts_at, ends_at=planned.ends_at, mode=planned.mode,
                region=planned.region, sequence=0, agenda=_agenda_rows(planned.agenda), created_at=now, updated_at=now,
            )
            _assign(session, planned.facilitator_ids)
            _set_participants(session, group, pending.personnel_ids)
            db.add(session)
        else:
            if _move(existing, planned, now=now, reason="replanned"):
                _bump(existing, now)
            _set_participants(existing, group, pending.personnel_ids)

    _store_problems(incident, {key: reasons for key, reasons in problems.items() if key in pending.wanted})
    refresh_status(incident)
    incident.updated_at = now
    sync_incident(db, incident, now)


# -- the planner's batch: every report not planned yet, together ---------------------------------------


def plan_received(db: DbSession, *, now: datetime, limit: int, solve_seconds: float,
                  solve_wall_seconds: float) -> list[uuid.UUID]:
    """Plan up to `limit` incidents still `received`, as one batch under the pool's lock; their ids.

    The batch commits as a whole: a planner that dies before the commit leaves every one of them
    `received` for the next pass, and planners that run side by side take turns on the lock.
    """

    def attempt() -> list[uuid.UUID]:
        incidents = _lock_received(db, limit)
        if not incidents:
            db.rollback()
            return []
        plan_batch_locked(db, incidents, now=now, solve_seconds=solve_seconds, solve_wall_seconds=solve_wall_seconds)
        commit(db)
        return [incident.id for incident in incidents]

    return retrying(db, attempt)


def planner_wake_up() -> Any:
    """PostgreSQL: the expression that wakes the planners when its transaction commits (elsewhere they poll)."""
    return func.pg_notify(PLANNER_CHANNEL, "")


# Reports waiting for the planner, in surge order: the earliest occurrence (the window closing first), then higher severity.
SURGE_ORDER = (Incident.occurred_at, Incident.severity.desc(), Incident.created_at, Incident.id)


def _lock_received(db: DbSession, limit: int) -> list[Incident]:
    """The incidents still `received`, in surge order (earliest occurrence, then higher severity), locked."""
    query = (
        select(Incident).where(Incident.status == "received").order_by(*SURGE_ORDER).limit(limit)
        .options(selectinload(Incident.personnel), selectinload(Incident.agency)).execution_options(populate_existing=True)
    )
    if is_postgres(db):
        query = query.with_for_update(of=Incident)
    return list(db.scalars(query))


def plan_batch_locked(db: DbSession, incidents: Sequence[Incident], *, now: datetime, solve_seconds: float,
                      solve_wall_seconds: float) -> None:
    """Plan locked incidents together, those of one planning policy competing for the pool as one surge."""
    by_policy: dict[PlanningPolicy, list[Incident]] = {}
    for incident in incidents:
        by_policy.setdefault(policy_for(incident.agency), []).append(incident)
    for policy, members in by_policy.items():
        # Bookings written for an earlier policy's incidents are flushed, so this load sees them.
        state = load_state(db, now=now, policy=policy)
        pendings = [_pending(db, incident, state, policy=policy, now=now) for incident in members]
        fresh = [p for p in pendings if p.all_new and p.to_plan]
        outcomes: dict[str, IncidentPlan | None] = {}
        if fresh:
            outcomes.update(plan_batch([p.facts for p in fresh], state.pool, state.schedule, policy, now=now,
                                       time_limit=solve_seconds, wall_limit=solve_wall_seconds))
        for p in pendings:
            if p.facts.ref not in outcomes:
                outcomes[p.facts.ref] = _plan_one(p, state, policy, now)
        checks = [check for p in pendings for check in _to_check(p, outcomes[p.facts.ref])]
        _recheck(db, checks, policy=policy, now=now, ignore=[ref for p in pendings for ref in p.set_aside])
        for p in pendings:
            _apply(db, p, outcomes[p.facts.ref], now=now)
        db.flush()


def cancel_incident_sessions(db: DbSession, *, incident: Incident, now: datetime) -> None:
    """Cancel every session of a (locked) incident that has not started; the caller commits."""
    for session in _lock_sessions(db, select(Session).where(Session.incident_id == incident.id, Session.status == "scheduled")):
        if session.starts_at > now:
            _cancel(session, now=now, reason="incident_cancelled")
    sync_incident(db, incident, now)


# -- one session ----------------------------------------------------------------------------------


def _check_visible(caller: Principal, session: Session, incident: Incident) -> None:
    if caller.role == "facilitator":
        if caller.facilitator_id not in {a.facilitator_id for a in session.assignments if a.active}:
            raise NotFound(f"No session {session.id}.")
    elif caller.role != "admin" and incident.agency_id != caller.agency_id:
        raise NotFound(f"No session {session.id}.")


def _visible(db: DbSession, caller: Principal, session_id: uuid.UUID) -> tuple[Session, Incident]:
    """A session the caller may see, with its incident (read, not locked); else NotFound."""
    session = db.scalar(select(Session).where(Session.id == session_id).options(selectinload(Session.assignments)))
    if session is None:
        raise NotFound(f"No session {session_id}.")
    incident = db.get(Incident, session.incident_id)
    assert incident is not None
    _check_visible(caller, session, incident)
    return session, incident


def get(db: DbSession, *, caller: Principal, session_id: uuid.UUID) -> SessionView:
    """One session."""
    session, incident = _visible(db, caller, session_id)
    return present(session, ZoneInfo(incident.agency.timezone))


def _change_session(db: DbSession, *, caller: Principal, session_id: uuid.UUID, now: datetime,
                    change: Callable[[Session, Incident], None], not_started: bool = True) -> SessionView:
    """Lock incident then session, check the caller may act, apply `change`, commit; retried on races."""
    incident_id = db.scalar(select(Session.incident_id).where(Session.id == session_id))
    if incident_id is None:
        raise NotFound(f"No session {session_id}.")

    def attempt() -> SessionView:
        incident = lock_incident(db, incident_id)
        assert incident is not None
        [session] = _lock_sessions(db, select(Session).where(Session.id == session_id))
        _check_visible(caller, session, incident)
        if session.status != "scheduled":
            raise Conflict(f"The session is {session.status}.")
        if not_started and session.starts_at <= now:
            raise Conflict("The session has started; it can no longer be changed.")
        change(session, incident)
        sync_incident(db, incident, now)
        commit(db)
        return present(session, ZoneInfo(incident.agency.timezone))

    return retrying(db, attempt)


def cancel(db: DbSession, *, caller: Principal, session_id: uuid.UUID, now: datetime) -> SessionView:
    """Cancel a scheduled session; the incident shows the group as needing attention."""

    def change(session: Session, incident: Incident) -> None:
        _cancel(session, now=now, reason="session_cancelled")
        if session.kind == "individual":
            # Not an incident problem (that would tell dispatch someone accepted an offer): the person is told.
            individual_unstaffed(db, incident=incident, session=session, now=now)
        else:
            set_problem(incident, session.group_key, session.kind, ["cancelled_by_coordinator"])

    return _change_session(db, caller=caller, session_id=session_id, now=now, change=change)


def complete(db: DbSession, *, caller: Principal, session_id: uuid.UUID, now: datetime) -> SessionView:
    """Mark a session that has started as held."""

    def change(session: Session, _incident: Incident) -> None:
        if session.starts_at > now:
            raise Conflict("The session has not started yet.")
        session.status = "completed"
        _bump(session, now)

    return _change_session(db, caller=caller, session_id=session_id, now=now, change=change, not_started=False)


def _planned(session: Session) -> PlannedSession:
    return PlannedSession(
        kind=session.kind, group_key=session.group_key, starts_at=session.starts_at, ends_at=session.ends_at,  # type: ignore[arg-type]
        mode=session.mode, region=session.region,  # type: ignore[arg-type]
        facilitator_ids=tuple(sorted(a.facilitator_id for a in session.assignments if a.active)),
        agenda=(), ref=str(session.id),
    )


def _group_of(session: Session, incident: Incident, policy: PlanningPolicy) -> Group:
    """The session's group as the planner sees it (its invited participants)."""
    people = tuple(_participant(p) for p in incident.personnel if p.id in _members(session))
    for group in split_into_groups(people, policy):
        if group.key == session.group_key:
            return group
    return Group(key=session.group_key or "", exposure=people[0].exposure if people else "direct",
                 command=False, language=session.language, participants=people)


def _window_anchor(db: DbSession, session: Session, incident: Incident) -> datetime:
    """Where a session's window starts from: the incident, or for an individual session the acceptance of the offer."""
    if session.kind == "individual":
        accepted = db.scalar(select(Followup.responded_at).where(Followup.booked_session_id == session.id))
        if accepted is not None:
            return accepted
    return incident.occurred_at


def _allowed_starts(db: DbSession, session: Session, incident: Incident, policy: PlanningPolicy, now: datetime) -> list[datetime]:
    """The grid starts a session may move to: inside its window, within the day's hours, not in the past."""
    length = session.ends_at - session.starts_at
    window = session_window(session.kind, _window_anchor(db, session, incident), policy)  # type: ignore[arg-type]
    return grid_starts(window, not_before=now, minutes=int(length.total_seconds() // 60), zone=incident.agency.timezone,
                       policy=policy)


def _team_blocks(session: Session, state: PlanningState, *, starts_at: datetime, facts: IncidentFacts,
                 policy: PlanningPolicy) -> dict[str, list[str]]:
    """Why each facilitator of the session's team could not take it at `starts_at` (empty: the whole team can)."""
    length = session.ends_at - session.starts_at
    blocked = {}
    for fid in sorted(a.facilitator_id for a in session.assignments if a.active):
        if fid not in state.profiles:  # off the roster since: they can take nothing
            blocked[f"facilitators.{fid}"] = ["inactive"]
            continue
        reasons = ineligibility_reasons(
            state.profiles[fid], kind=session.kind, starts_at=starts_at, ends_at=starts_at + length,  # type: ignore[arg-type]
            mode=session.mode, region=session.region, language=session.language, incident=facts,  # type: ignore[arg-type]
            schedule=state.schedule, policy=policy, ignore_session_ref=str(session.id),
        )
        if reasons:
            blocked[f"facilitators.{fid}"] = list(reasons)
    return blocked


def reschedule_starts(db: DbSession, *, caller: Principal, session_id: uuid.UUID, now: datetime) -> list[datetime]:
    """The starts `reschedule` would accept for a session now, earliest first (nothing is written or locked).

    The same rules as `reschedule` (which checks the one chosen again, under the locks): the grid
    inside the session's window, and the whole team eligible at that time.
    """
    session, incident = _visible(db, caller, session_id)
    if session.status != "scheduled" or session.starts_at <= now:
        return []
    policy = policy_for(incident.agency)
    facts = incident_facts(incident)
    team = sorted(a.facilitator_id for a in session.assignments if a.active)
    state = load_state(db, now=now, policy=policy, facilitator_ids=team)
    return [start for start in _allowed_starts(db, session, incident, policy, now)
            if start != session.starts_at and not _team_blocks(session, state, starts_at=start, facts=facts, policy=policy)]


def reschedule(db: DbSession, *, caller: Principal, session_id: uuid.UUID, starts_at: datetime, now: datetime) -> SessionView:
    """Move a session to a given start, checked by the same rules as planning."""

    def change(session: Session, incident: Incident) -> None:
        policy = policy_for(incident.agency)
        facts = incident_facts(incident)
        length = session.ends_at - session.starts_at
        if starts_at not in _allowed_starts(db, session, incident, policy, now):
            raise InvalidInput(
                "That start is not allowed for this session.",
                errors={"starts_at": [
                    f"Must lie on the {policy.grid_minutes}-minute grid, between {policy.earliest_start:%H:%M} and "
                    f"{policy.latest_start:%H:%M} local time, end by {policy.latest_end:%H:%M}, inside the session's "
                    "window, and not in the past."
                ]},
            )
        team = sorted(a.facilitator_id for a in session.assignments if a.active)
        _lock_facilitators(db, team)
        state = load_state(db, now=now, policy=policy, facilitator_ids=team)
        blocked = _team_blocks(session, state, starts_at=starts_at, facts=facts, policy=policy)
        if blocked:
            raise Conflict("A facilitator of the team cannot take the session at that time.", errors=blocked)
        moved = replace(_planned(session), starts_at=starts_at, ends_at=starts_at + length,
                        agenda=build_agenda(session.kind, starts_at, policy))  # type: ignore[arg-type]
        if _move(session, moved, now=now, reason="rescheduled"):
            _bump(session, now)

    return _change_session(db, caller=caller, session_id=session_id, now=now, change=change)


def replace_facilitator(db: DbSession, *, session: Session, incident: Incident, facilitator_id: int,
                        now: datetime, reason: str) -> None:
    """Take a facilitator off a (locked) session and find a replacement, same time if possible.

    Without a replacement the session keeps its reduced team and the incident says what is
    missing; the caller commits, in `retrying`.
    """
    policy = policy_for(incident.agency)
    facts = incident_facts(incident)
    state = load_state(db, now=now, policy=policy)
    planned = _planned(session)
    found = None
    if state.pool.get(facilitator_id) is not None and facilitator_id in planned.facilitator_ids:
        found = find_replacement(planned, leaving_facilitator_id=facilitator_id, incident=facts,
                                 accepted_at=_window_anchor(db, session, incident) if session.kind == "individual" else None,
                                 group=_group_of(session, incident, policy), pool=state.pool,
                                 schedule=state.schedule, policy=policy, now=now,
                                 exclude={planned.ref: _declined(session) | {facilitator_id}})
    if found is None and session.kind == "individual":
        # Not an incident problem: it would tell dispatch that someone accepted an individual session.
        _cancel(session, now=now, reason=reason)
        individual_unstaffed(db, incident=incident, session=session, now=now)
        return
    if found is None:
        for assignment in session.assignments:
            if assignment.active and assignment.facilitator_id == facilitator_id:
                _release(assignment, now=now, reason=reason)
        _bump(session, now)
        set_problem(incident, session.group_key, session.kind, ["no_replacement"])
        return
    _recheck(db, [(found, session.language, facts)], policy=policy, now=now, ignore=[str(session.id)])
    _move(session, found, now=now, reason=reason)
    _bump(session, now)


def decline(db: DbSession, *, caller: Principal, session_id: uuid.UUID, now: datetime) -> SessionView:
    """The caller (a facilitator on the team) declines; a replacement is found automatically."""

    def change(session: Session, incident: Incident) -> None:
        replace_facilitator(db, session=session, incident=incident, facilitator_id=caller.facilitator_id,  # type: ignore[arg-type]
                            now=now, reason="declined")

    return _change_session(db, caller=caller, session_id=session_id, now=now, change=change)


# -- one facilitator's sessions, as their pages show them ---------------------------------------------------

ON_TEAM, DECLINED, TAKEN_OFF = "on_team", "declined", "taken_off"


@dataclass(frozen=True, slots=True)
class TeamSession:
    """A session as one facilitator of its team, now or before, sees it: counts of people, never names.

    `standing` is ON_TEAM, DECLINED (they declined it) or TAKEN_OFF (cancelled, replaced, re-planned);
    off the team, `starts_at` and `ends_at` are the times they were given (the session may have moved since).
    """

    session: SessionView
    timezone: str
    standing: str
    can_decline: bool
    starts_at: datetime
    ends_at: datetime


def _team_session(session: Session, zone: str, facilitator_id: int, now: datetime) -> TeamSession | None:
    mine = [a for a in session.assignments if a.facilitator_id == facilitator_id]
    if not mine:
        return None
    current = next((a for a in mine if a.active), None)
    if current is not None:
        standing = ON_TEAM
    else:
        current = max(mine, key=lambda a: (a.released_at or a.starts_at, a.id))
        standing = DECLINED if current.release_reason == "declined" else TAKEN_OFF
    view = present(session, ZoneInfo(zone))
    can_decline = standing == ON_TEAM and session.status == "scheduled" and session.starts_at > now
    return TeamSession(view, zone, standing, can_decline, current.starts_at, current.ends_at)


def _with_zones(db: DbSession, *where: Any) -> list[tuple[Session, str]]:
    """Sessions with their teams and the time zone of their agency, earliest first."""
    return list(db.execute(
        select(Session, Agency.timezone).join(Incident, Incident.id == Session.incident_id)
        .join(Agency, Agency.id == Incident.agency_id).where(*where)
        .options(selectinload(Session.assignments)).order_by(Session.starts_at, Session.id)
    ))


def team_session(db: DbSession, *, facilitator_id: int, session_id: uuid.UUID, now: datetime) -> TeamSession:
    """One session as a facilitator who is or was on its team sees it; NotFound for anyone else."""
    for session, zone in _with_zones(db, Session.id == session_id):
        seen = _team_session(session, zone, facilitator_id, now)
        if seen is not None:
            return seen
    raise NotFound(f"No session {session_id}.")


def upcoming_sessions(db: DbSession, *, facilitator_id: int, now: datetime) -> list[TeamSession]:
    """The scheduled sessions a facilitator is on that have not ended, earliest first."""
    mine = select(Assignment.session_id).where(Assignment.facilitator_id == facilitator_id, Assignment.active)
    rows = _with_zones(db, Session.id.in_(mine), Session.status == "scheduled", Session.ends_at > now)
    return [seen for session, zone in rows if (seen := _team_session(session, zone, facilitator_id, now)) is not None]


def decline_once(db: DbSession, *, caller: Principal, session_id: uuid.UUID, now: datetime) -> TeamSession:
    """`decline` from the facilitator's session page: a session they already declined or left stays as it is."""
    seen = team_session(db, facilitator_id=caller.facilitator_id, session_id=session_id, now=now)  # type: ignore[arg-type]
    if seen.standing == ON_TEAM:
        try:
            decline(db, caller=caller, session_id=session_id, now=now)
        except NotFound:
            db.rollback()  # off the team meanwhile (the same form sent twice at once): shown as it now stands
        seen = team_session(db, facilitator_id=caller.facilitator_id, session_id=session_id, now=now)  # type: ignore[arg-type]
    return seen


def revalidate_facilitator(db: DbSession, *, facilitator: Facilitator, now: datetime) -> int:
    """Replace the facilitator on every future session they can no longer take; the caller commits."""
    profile = to_profile(facilitator)
    session_ids = list(db.scalars(
        select(Session.id).join(Assignment, Assignment.session_id == Session.id)
        .where(Assignment.facilitator_id == facilitator.id, Assignment.active, Session.status == "scheduled", Session.starts_at > now)
        .order_by(Session.starts_at)
    ))
    replaced = 0
    for session_id in session_ids:
        incident_id = db.scalar(select(Session.incident_id).where(Session.id == session_id))
        incident = lock_incident(db, incident_id)
        assert incident is not None
        [session] = _lock_sessions(db, select(Session).where(Session.id == session_id))
        policy = policy_for(incident.agency)
        state = load_state(db, now=now, policy=policy, facilitator_ids=[facilitator.id])
        reasons = ineligibility_reasons(
            profile, kind=session.kind, starts_at=session.starts_at, ends_at=session.ends_at,  # type: ignore[arg-type]
            mode=session.mode, region=session.region, language=session.language,  # type: ignore[arg-type]
            incident=incident_facts(incident), schedule=state.schedule, policy=policy, ignore_session_ref=str(session.id),
        )
        if reasons:
            replace_facilitator(db, session=session, incident=incident, facilitator_id=facilitator.id, now=now,
                                reason="no_longer_eligible")
            sync_incident(db, incident, now)
            replaced += 1
    return replaced


def individual_starts(db: DbSession, *, incident: Incident, person: Personnel, facilitator_kind: str,
                      now: datetime) -> list[datetime]:
    """The starts a participant may choose for their individual session now, earliest first (nothing is booked).

    The same rules as `book_individual`, which re-checks the one chosen under the pool's lock.
    """
    policy = policy_for(incident.agency)
    earliest = now + INDIVIDUAL_NOTICE
    state = load_state(db, now=earliest, policy=policy)
    return planned_starts(_participant(person), facilitator_kind=facilitator_kind,  # type: ignore[arg-type]
                          accepted_at=now, incident=incident_facts(incident), pool=state.pool,
                          schedule=state.schedule, policy=policy, now=earliest, busy=participant_busy(db, person, now))


def participant_busy(db: DbSession, person: Personnel, now: datetime) -> list[Interval]:
    """The participant's own sessions still to come: an individual session must not overlap them."""
    rows = db.execute(
        select(Session.starts_at, Session.ends_at)
        .join(SessionParticipant, SessionParticipant.session_id == Session.id)
        .where(SessionParticipant.personnel_id == person.id, Session.status == "scheduled", Session.ends_at > now)
        .order_by(Session.starts_at)
    ).all()
    return [Interval(start, end) for start, end in rows]


def book_individual(db: DbSession, *, incident: Incident, person: Personnel, facilitator_kind: str,
                    now: datetime, starts_at: datetime | None = None) -> Session | None:
    """Book an individual session for a participant of a (locked) incident who accepted the offer.

    60 minutes with one facilitator of the chosen kind, within the policy's days of acceptance,
    at the earliest feasible start or at `starts_at` (one of `individual_starts`); None when no
    one is free (then). The caller syncs messages and commits in `retrying`.
    """
    policy = policy_for(incident.agency)
    facts = incident_facts(incident)
    # Not in the next few hours: the person and the facilitator need time to get there. The planner
    # counts each facilitator's load up to that instant, so the state counts older sessions up to it too.
    earliest = now + INDIVIDUAL_NOTICE
    state = load_state(db, now=earliest, policy=policy)
    outcome = plan_individual(_participant(person), facilitator_kind=facilitator_kind,  # type: ignore[arg-type]
                              accepted_at=now, incident=facts, pool=state.pool, schedule=state.schedule,
                              policy=policy, now=earliest, starts_at=starts_at, busy=participant_busy(db, person, now))
    if not isinstance(outcome, PlannedSession):
        return None
    _recheck(db, [(outcome, person.language, facts)], policy=policy, now=now)
    session = Session(
        incident_id=incident.id, kind="individual", group_key=None, language=person.language, status="scheduled",
        starts_at=outcome.starts_at, ends_at=outcome.ends_at, mode=outcome.mode, region=outcome.region, sequence=0,
        agenda=_agenda_rows(outcome.agenda), participant_count=1, created_at=now, updated_at=now,
    )
    _assign(session, outcome.facilitator_ids)
    session.participants.append(SessionParticipant(personnel_id=person.id))
    db.add(session)
    db.flush()
    return session


def cancel_individual_sessions(db: DbSession, *, incident: Incident, personnel_id: int, now: datetime,
                               session_id: uuid.UUID | None = None) -> None:
    """Cancel the person's individual sessions still to come (or just one); the caller syncs and commits."""
    query = select(Session).join(SessionParticipant).where(
        Session.incident_id == incident.id, Session.kind == "individual", Session.status == "scheduled",
        Session.starts_at > now, SessionParticipant.personnel_id == personnel_id)
    if session_id is not None:
        query = query.where(Session.id == session_id)
    for session in _lock_sessions(db, query):
        _cancel(session, now=now, reason="participant_cancelled")
