"""Planning: choose time, mode and team for each group's sessions, and explain what cannot be planned."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import chain
from typing import Callable, Collection, Iterable, Iterator, Sequence
from zoneinfo import ZoneInfo

from service.planning.agenda import build_agenda, session_minutes, session_window, team_requirements
from service.planning.eligibility import (
    Involvement, certified_until, conflict_reasons, dynamic_reasons, static_reasons,
)
from service.planning.groups import split_into_groups
from service.planning.policy import PlanningPolicy
from service.planning.pool import Facilitator, FacilitatorPool
from service.planning.schedule import Schedule
from service.planning.timegrid import grid_starts
from service.planning.types import (
    ALL_CANDIDATES_CONFLICTED, GROUP_KINDS, IN_PERSON, LANGUAGE_NOT_COVERED, NO_CLINICIAN_AVAILABLE,
    NO_COMMON_SLOT, NOT_ENOUGH_PEERS, REGION_NOT_COVERED, VIRTUAL, WINDOW_CLOSED, Booking, FacilitatorKind,
    Group, IncidentFacts, IncidentPlan, Interval, Mode, Participant, PlannedSession, Problem, SessionKind,
    TeamRequirement,
)

UTC = timezone.utc
_PREFERRED_MODES: tuple[Mode, ...] = (IN_PERSON, VIRTUAL)
_Candidate = tuple[Facilitator, date]  # a statically eligible facilitator and the last date their certificates hold


def session_ref(incident_ref: str, group_key: str | None, kind: SessionKind) -> str:
    """The session_ref under which a planned group session is booked."""
    return f"{incident_ref}/{group_key}/{kind}"


def individual_ref(incident_ref: str, participant_key: str) -> str:
    """The session_ref under which a participant's individual session is booked."""
    return f"{incident_ref}/individual/{participant_key}"


@dataclass(frozen=True, slots=True)
class _Spec:
    """One session to place: for whom, what kind, and which team it needs."""

    incident: IncidentFacts
    kind: SessionKind
    language: str
    region: str
    requirement: TeamRequirement
    facilitator_kind: FacilitatorKind | None  # only individual sessions restrict the kind


@dataclass(frozen=True, slots=True)
class _Slot:
    start: datetime
    end: datetime
    day: date  # in the incident's zone: the date certificates must cover


class _Candidates:
    """Statically eligible facilitators in preference order, filtered lazily and remembered.

    Most plans are decided by the first few candidates, so the pool is filtered only as far
    as the walk over slots actually reaches.
    """

    __slots__ = ("items", "_source", "_accept", "_defer", "_deferred")

    def __init__(self, source: Iterator[Facilitator], accept: Callable[[Facilitator], date | None],
                 defer: Callable[[Facilitator], bool]) -> None:
        self.items: list[_Candidate] = []
        self._source: Iterator[Facilitator] | None = source
        self._accept = accept
        self._defer = defer
        self._deferred: list[_Candidate] = []

    def __iter__(self) -> Iterator[_Candidate]:
        items, i = self.items, 0
        while True:
            if i < len(items):
                yield items[i]
                i += 1
            elif not self._pull():
                return

    def complete(self) -> list[_Candidate]:
        """Every statically eligible candidate."""
        while self._pull():
            pass
        return self.items

    def _pull(self) -> bool:
        while self._source is not None:
            f = next(self._source, None)
            if f is None:
                self._source = None
                # Deferred candidates (peers of the incident's own agency) come after all others.
                self.items.extend(self._deferred)
                found = bool(self._deferred)
                self._deferred = []
                return found
            until = self._accept(f)
            if until is None:
                continue
            if self._defer(f):
                self._deferred.append((f, until))
                continue
            self.items.append((f, until))
            return True
        return False


class _Run:
    """One planning call. Loads are fixed for its length: everything it books starts after `now`."""

    def __init__(self, pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy, now: datetime) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now: expected a timezone-aware datetime")
        self.pool, self.schedule, self.policy = pool, schedule, policy
        self.now = now.astimezone(UTC)
        self._loads: dict[int, int] = {}
        self._ordered: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._streams: dict[tuple[object, ...], _Candidates] = {}
        self._slots: dict[tuple[object, ...], list[_Slot]] = {}
        self._involvements: dict[str, Involvement] = {}
        self._virtual_adds: dict[tuple[str, str], bool] = {}

    # -- preference -------------------------------------------------------------------------
    def _rank(self, fid: int) -> tuple[int, int]:
        load = self._loads.get(fid)
        if load is None:
            load = self._loads[fid] = self.schedule.load(fid, self.now, self.policy)
        return load, fid

    def _by_preference(self, key: tuple[str, ...], ids: Sequence[int]) -> tuple[int, ...]:
        ordered = self._ordered.get(key)
        if ordered is None:
            ordered = self._ordered[key] = tuple(sorted(ids, key=self._rank))
        return ordered

    def _source(self, language: str, region: str, mode: Mode) -> Iterator[Facilitator]:
        entry = self.pool.entry
        serving = self._by_preference(("place", language, region), self.pool.serving(language, region))
        if mode == IN_PERSON:
            return map(entry, serving)
        remote = self._by_preference(("virtual", language), self.pool.virtual(language))
        return map(entry, _unique(heapq.merge(serving, remote, key=self._rank)))

    def _virtual_adds_someone(self, language: str, region: str) -> bool:
        """Whether a virtual session reaches anyone an in-person one does not."""
        key = (language, region)
        adds = self._virtual_adds.get(key)
        if adds is None:
            serving = set(self.pool.serving(language, region))
            adds = self._virtual_adds[key] = any(fid not in serving for fid in self.pool.virtual(language))
        return adds

    # -- inputs derived once ------------------------------------------------------------------
    def involvement(self, incident: IncidentFacts) -> Involvement:
        found = self._involvements.get(incident.ref)
        if found is None:
            found = self._involvements[incident.ref] = Involvement.of(incident)
        return found

    def slots(self, spec: _Spec, window: Interval) -> list[_Slot]:
        zone = spec.incident.timezone
        minutes = session_minutes(spec.kind, self.policy)
        key = (zone, window.start, window.end, minutes)
        found = self._slots.get(key)
        if found is None:
            tz = ZoneInfo(zone)
            length = timedelta(minutes=minutes)
            found = self._slots[key] = [
                _Slot(s, s + length, s.astimezone(tz).date())
                for s in grid_starts(window, not_before=self.now, minutes=minutes, zone=zone, policy=self.policy)
            ]
        return found

    def candidates(self, spec: _Spec, mode: Mode, first_day: date) -> _Candidates:
        key = (spec.incident.ref, spec.kind, spec.language, spec.region, mode, spec.facilitator_kind, first_day)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Candidates(
                self._source(spec.language, spec.region, mode),
                self._acceptor(spec, mode, first_day), self._deferrer(spec))
        return stream

    def _acceptor(self, spec: _Spec, mode: Mode, first_day: date) -> Callable[[Facilitator], date | None]:
        involvement = self.involvement(spec.incident)

        def accept(f: Facilitator) -> date | None:
            if spec.facilitator_kind is not None and f.profile.kind != spec.facilitator_kind:
                return None
            if static_reasons(f, kind=spec.kind, mode=mode, region=spec.region, language=spec.language,
                              involvement=involvement, on_date=first_day):
                return None
            return certified_until(f, spec.kind)

        return accept

    @staticmethod
    def _deferrer(spec: _Spec) -> Callable[[Facilitator], bool]:
        agency = spec.incident.agency_id

        def defer(f: Facilitator) -> bool:
            # Peers from the incident's own agency are a last resort: they may know the participants.
            return not f.is_clinician and f.profile.agency_id == agency

        return defer

    # -- the walk ------------------------------------------------------------------------------
    def team_at(self, spec: _Spec, slot: _Slot, candidates: Iterable[_Candidate], *,
                exclude: frozenset[int], ignore_ref: str | None) -> tuple[list[Facilitator] | None, int, int]:
        """The most preferred full team free at `slot`, else None; also how many of each kind were free."""
        req = spec.requirement
        size = req.size
        team: list[Facilitator] = []
        clinicians = peers = free_clinicians = free_peers = 0
        seen = set(exclude)
        for f, until in candidates:
            if f.id in seen or until < slot.day:
                continue
            seen.add(f.id)
            if dynamic_reasons(f, kind=spec.kind, starts_at=slot.start, ends_at=slot.end,
                               schedule=self.schedule, policy=self.policy,
                               ignore_session_ref=ignore_ref, stop_at_first=True):
                continue
            # Take a member only if the places left can still hold the kinds still missing.
            if f.is_clinician:
                free_clinicians += 1
                if size - len(team) - 1 >= max(0, req.min_peers - peers):
                    team.append(f)
                    clinicians += 1
            else:
                free_peers += 1
                if size - len(team) - 1 >= max(0, req.min_clinicians - clinicians):
                    team.append(f)
                    peers += 1
            if len(team) == size:
                return team, free_clinicians, free_peers
        return None, free_clinicians, free_peers

    def search(self, spec: _Spec, attempts: Iterable[tuple[_Slot, tuple[Mode, ...]]], first_day: date, *,
               seeds: Sequence[Facilitator] = (), exclude: frozenset[int] = frozenset(),
               ignore_ref: str | None = None) -> tuple[_Slot, Mode, list[Facilitator]] | tuple[int, int, int]:
        """First (slot, mode) with a full team; when none, the most clinicians, peers and people ever free."""
        best = [0, 0, 0]
        seeded: dict[Mode, list[_Candidate]] = {}
        for slot, modes in attempts:
            for mode in modes:
                if (mode == VIRTUAL and IN_PERSON in modes[:modes.index(mode)]
                        and not self._virtual_adds_someone(spec.language, spec.region)):
                    continue
                if mode not in seeded:
                    seeded[mode] = self._seed(spec, mode, first_day, seeds)
                stream = self.candidates(spec, mode, first_day)
                team, free_c, free_p = self.team_at(spec, slot, chain(seeded[mode], stream),
                                                    exclude=exclude, ignore_ref=ignore_ref)
                if team is not None:
                    return slot, mode, team
                best = [max(best[0], free_c), max(best[1], free_p), max(best[2], free_c + free_p)]
        return best[0], best[1], best[2]

    def _seed(self, spec: _Spec, mode: Mode, first_day: date, seeds: Sequence[Facilitator]) -> list[_Candidate]:
        accept = self._acceptor(spec, mode, first_day)
        out = []
        for f in seeds:
            until = accept(f)
            if until is not None:
                out.append((f, until))
        return out

    def diagnose(self, spec: _Spec, slots: list[_Slot], free: tuple[int, int, int]) -> tuple[str, ...]:
        """The most informative group-level reasons a session could not be placed."""
        if not slots:
            return (WINDOW_CLOSED,)
        pool, fkind = self.pool, spec.facilitator_kind

        def of_kind(ids: Iterable[int]) -> list[int]:
            return [fid for fid in ids if fkind is None or pool.entry(fid).profile.kind == fkind]

        if not of_kind(pool.speakers(spec.language)):
            return (LANGUAGE_NOT_COVERED,)
        reachable = of_kind(sorted(set(pool.serving(spec.language, spec.region)) | set(pool.virtual(spec.language))))
        if not reachable:
            return (REGION_NOT_COVERED,)
        involvement = self.involvement(spec.incident)
        if all(conflict_reasons(pool.entry(fid), involvement) for fid in reachable):
            return (ALL_CANDIDATES_CONFLICTED,)
        eligible = self.candidates(spec, VIRTUAL, slots[0].day).complete()
        clinicians = sum(1 for f, _ in eligible if f.is_clinician)
        peers = len(eligible) - clinicians
        req = spec.requirement
        reasons = _shortage(req, clinicians, peers, clinicians + peers)
        if reasons:
            return reasons
        return _shortage(req, *free) or (NO_COMMON_SLOT,)

    # -- results -------------------------------------------------------------------------------
    def place(self, spec: _Spec, window: Interval, *, group_key: str | None, ref: str) -> PlannedSession | Problem:
        """Plan one session at its earliest feasible start and book it, or explain why not."""
        slots = self.slots(spec, window)
        if slots:
            found = self.search(spec, ((s, _PREFERRED_MODES) for s in slots), slots[0].day)
            if isinstance(found[0], _Slot):
                slot, mode, team = found  # type: ignore[misc]
                return self.book(spec, slot, mode, team, group_key=group_key, ref=ref)
            free = found
        else:
            free = (0, 0, 0)
        return Problem(group_key, spec.kind, self.diagnose(spec, slots, free))  # type: ignore[arg-type]

    def book(self, spec: _Spec, slot: _Slot, mode: Mode, team: list[Facilitator], *,
             group_key: str | None, ref: str) -> PlannedSession:
        session = PlannedSession(
            kind=spec.kind, group_key=group_key, starts_at=slot.start, ends_at=slot.end, mode=mode,
            region=spec.region, facilitator_ids=tuple(sorted(f.id for f in team)),
            agenda=build_agenda(spec.kind, slot.start, self.policy), ref=ref)
        for fid in session.facilitator_ids:
            self.schedule.add(Booking(fid, ref, slot.start, slot.end, spec.kind in GROUP_KINDS))
        return session


def _unique(ids: Iterable[int]) -> Iterator[int]:
    last = None
    for fid in ids:
        if fid != last:
            yield fid
            last = fid


def _shortage(req: TeamRequirement, clinicians: int, peers: int, people: int) -> tuple[str, ...]:
    reasons = []
    if clinicians < req.min_clinicians:
        reasons.append(NO_CLINICIAN_AVAILABLE)
    if peers < req.min_peers or people < req.size:
        reasons.append(NOT_ENOUGH_PEERS)
    return tuple(reasons)


def _group_kinds(incident: IncidentFacts, policy: PlanningPolicy) -> tuple[SessionKind, ...]:
    if incident.severity >= policy.defusing_min_severity:
        return ("defusing", "debriefing")
    return ("debriefing",)


def plan_incident(incident: IncidentFacts, pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy, *,
                  now: datetime, only: Collection[tuple[str, str]] | None = None) -> IncidentPlan:
    """Plan every group's sessions for one incident (or only the given (group key, kind) pairs) and book them."""
    return plan_surge((incident,), pool, schedule, policy, now=now, only=only)[incident.ref]


def plan_surge(incidents: Iterable[IncidentFacts], pool: FacilitatorPool, schedule: Schedule,
               policy: PlanningPolicy, *, now: datetime,
               only: Collection[tuple[str, str]] | None = None) -> dict[str, IncidentPlan]:
    """Plan several incidents competing for one pool: earliest window close first, then higher severity.

    The unit of competition is one group's session, so every incident's defusings (8-hour
    window) go before anyone's debriefing; within an incident groups keep their order.
    """
    run = _Run(pool, schedule, policy, now)
    incidents = list(incidents)
    refs = [i.ref for i in incidents]
    if len(set(refs)) != len(refs):
        raise ValueError("incidents: each ref may appear once")
    tasks = []
    for incident in incidents:
        for position, group in enumerate(split_into_groups(incident.participants, policy)):
            for kind in _group_kinds(incident, policy):
                if only is not None and (group.key, kind) not in only:
                    continue  # re-planning: this group's session stays as it is
                window = session_window(kind, incident.occurred_at, policy)
                tasks.append((window.end, -incident.severity, incident.ref, position, kind, incident, group, window))
    tasks.sort(key=lambda t: t[:5])
    sessions: dict[str, list[PlannedSession]] = {ref: [] for ref in refs}
    problems: dict[str, list[Problem]] = {ref: [] for ref in refs}
    for *_, kind, incident, group, window in tasks:
        spec = _Spec(incident, kind, group.language, incident.region,
                     team_requirements(kind, len(group.participants), policy), None)
        outcome = run.place(spec, window, group_key=group.key, ref=session_ref(incident.ref, group.key, kind))
        (sessions if isinstance(outcome, PlannedSession) else problems)[incident.ref].append(outcome)  # type: ignore[arg-type]
    return {ref: IncidentPlan(tuple(sessions[ref]), tuple(problems[ref])) for ref in refs}


def plan_individual(participant: Participant, *, facilitator_kind: FacilitatorKind, accepted_at: datetime,
                    incident: IncidentFacts, pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy,
                    now: datetime) -> PlannedSession | Problem:
    """Book a 60-minute session with one facilitator of the chosen kind within 7 days of acceptance."""
    if facilitator_kind not in ("peer", "clinician"):
        raise ValueError(f"facilitator_kind: expected peer or clinician, got {facilitator_kind!r}")
    run = _Run(pool, schedule, policy, now)
    clinician = facilitator_kind == "clinician"
    spec = _Spec(incident, "individual", participant.language, incident.region,
                 TeamRequirement(1, int(clinician), int(not clinician)), facilitator_kind)
    window = session_window("individual", accepted_at, policy)
    return run.place(spec, window, group_key=None, ref=individual_ref(incident.ref, participant.key))


def find_replacement(session: PlannedSession, *, leaving_facilitator_id: int, incident: IncidentFacts, group: Group,
                     pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy, now: datetime,
                     accepted_at: datetime | None = None) -> PlannedSession | None:
    """Replace a leaving facilitator: same time if possible, else the next feasible time in the window.

    At the same time the other members are kept and the same mode is tried first; at another
    time they are still preferred. On success the session's bookings in `schedule` are replaced.
    For an individual session the window runs from `accepted_at` (default: `now`).
    """
    if leaving_facilitator_id not in session.facilitator_ids:
        raise ValueError(f"leaving_facilitator_id: {leaving_facilitator_id} is not on the session")
    run = _Run(pool, schedule, policy, now)
    kind = session.kind
    if kind == "individual":
        leaving = pool.get(leaving_facilitator_id)
        if leaving is None:
            raise ValueError(f"leaving_facilitator_id: {leaving_facilitator_id} is not in the pool")
        clinician = leaving.kind == "clinician"
        requirement = TeamRequirement(1, int(clinician), int(not clinician))
        fkind: FacilitatorKind | None = leaving.kind
        window = session_window(kind, accepted_at or now, policy)
        ref = session.ref or individual_ref(incident.ref, group.participants[0].key)
    else:
        requirement = team_requirements(kind, len(group.participants), policy)
        fkind = None
        window = session_window(kind, incident.occurred_at, policy)
        ref = session.ref or session_ref(incident.ref, session.group_key, kind)
    spec = _Spec(incident, kind, group.language, session.region, requirement, fkind)
    tz = ZoneInfo(incident.timezone)
    start, end = session.starts_at.astimezone(UTC), session.ends_at.astimezone(UTC)
    same = _Slot(start, end, start.astimezone(tz).date())
    other_mode: Mode = VIRTUAL if session.mode == IN_PERSON else IN_PERSON
    attempts: list[tuple[_Slot, tuple[Mode, ...]]] = []
    if start >= run.now:
        attempts.append((same, (session.mode, other_mode)))
    slots = run.slots(spec, window)
    # "Next" first: participants already expect the session no earlier than announced.
    attempts += [(s, _PREFERRED_MODES) for s in slots if s.start > start]
    attempts += [(s, _PREFERRED_MODES) for s in slots if s.start < start]
    if not attempts:
        return None
    first_day = min(slot.day for slot, _ in attempts)
    seeds = [pool.entry(fid) for fid in session.facilitator_ids if fid != leaving_facilitator_id and fid in pool]
    found = run.search(spec, attempts, first_day, seeds=seeds, exclude=frozenset({leaving_facilitator_id}),
                       ignore_ref=ref)
    if not isinstance(found[0], _Slot):
        return None
    slot, mode, team = found  # type: ignore[misc]
    schedule.remove(ref)
    return run.book(spec, slot, mode, team, group_key=session.group_key, ref=ref)
