"""Planning: choose time, mode and team for each group's sessions, and explain what cannot be planned."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import chain
from typing import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from service.planning.agenda import build_agenda, session_minutes, session_window, team_requirements
from service.planning.eligibility import (
    Involvement, caps_on, certified_until, conflict_reasons, dynamic_reasons, static_reasons,
)
from service.planning.groups import split_into_groups
from service.planning.policy import PlanningPolicy
from service.planning.pool import Facilitator, FacilitatorPool
from service.planning.schedule import Schedule
from service.planning.timegrid import day_starts, grid_days
from service.planning.types import (
    ALL_CANDIDATES_CONFLICTED, GROUP_KINDS, IN_PERSON, LANGUAGE_NOT_COVERED, NO_CLINICIAN_AVAILABLE,
    NO_COMMON_SLOT, NOT_ENOUGH_PEERS, REGION_NOT_COVERED, VIRTUAL, WINDOW_CLOSED, Booking, FacilitatorKind,
    Group, IncidentFacts, IncidentPlan, Interval, Mode, Participant, PlannedSession, Problem, SessionKind,
    TeamRequirement, require_aware,
)

UTC = timezone.utc
_PREFERRED_MODES: tuple[Mode, ...] = (IN_PERSON, VIRTUAL)
_Candidate = tuple[Facilitator, date]  # a statically eligible facilitator and the last date their certificates hold
# How many of the first slot's most preferred candidates to try before working out everyone's free slots.
_QUICK_LOOK = 64


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


@dataclass(frozen=True, slots=True)
class _Found:
    slot: _Slot
    mode: Mode
    team: list[Facilitator]


@dataclass(frozen=True, slots=True)
class _Shortfall:
    """What the best tried slots had; None where it was not worked out."""

    clinicians: int | None        # the most clinicians free at one slot
    peers: int | None             # the most peers free at one slot
    together: bool | None         # some slot had the minimum of each kind at once
    full: bool | None             # some slot had a full team by head count
    eligible_clinicians: int | None = None  # statically eligible, whatever the time
    eligible_peers: int | None = None


class _Candidates:
    """Candidates in preference order, filtered lazily and remembered.

    Most plans are decided by the first few candidates, so the pool is filtered only as far
    as the walk over slots actually reaches.
    """

    __slots__ = ("items", "_source", "_keep", "_defer", "_deferred")

    def __init__(self, source: Iterator[_Candidate], keep: Callable[[_Candidate], bool],
                 defer: Callable[[_Candidate], bool] | None = None) -> None:
        self.items: list[_Candidate] = []
        self._source: Iterator[_Candidate] | None = source
        self._keep = keep
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
        """Every candidate that passes the filter."""
        while self._pull():
            pass
        return self.items

    def _pull(self) -> bool:
        while self._source is not None:
            candidate = next(self._source, None)
            if candidate is None:
                self._source = None
                # Deferred candidates (peers of the incident's own agency) come after all others.
                self.items.extend(self._deferred)
                found = bool(self._deferred)
                self._deferred = []
                return found
            if not self._keep(candidate):
                continue
            if self._defer is not None and self._defer(candidate):
                self._deferred.append(candidate)
                continue
            self.items.append(candidate)
            return True
        return False


class _Run:
    """One planning call. Loads are fixed for its length: everything it books starts after `now`."""

    def __init__(self, pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy, now: datetime) -> None:
        require_aware("now", now)
        self.pool, self.schedule, self.policy = pool, schedule, policy
        self.now = now.astimezone(UTC)
        self._loads: dict[int, int] = {}
        self._ordered: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._streams: dict[tuple[object, ...], _Candidates] = {}
        self._qualified_streams: dict[tuple[object, ...], _Candidates] = {}
        self._slots: dict[tuple[object, ...], list[_Slot]] = {}
        self._involvements: dict[str, Involvement] = {}
        self._calendar_masks: dict[object, dict[int, int]] = {}
        self._cert_masks: dict[tuple[object, date], int] = {}
        self._day_masks: dict[tuple[object, str], list[tuple[date, int]]] = {}
        self._segments: dict[object, tuple[str, int, list[tuple[date, int, int, int]]]] = {}
        p = policy
        self._grid_key = (p.grid_minutes, p.earliest_start, p.latest_start, p.latest_end, p.buffer_minutes)
        self._local_days: dict[tuple[str, datetime], date] = {}
        self._spans: dict[object, tuple[datetime, datetime]] = {}
        self._slot_index: dict[object, tuple[list[datetime], list[datetime]] | None] = {}

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

    # -- inputs derived once ------------------------------------------------------------------
    def involvement(self, incident: IncidentFacts) -> Involvement:
        """The incident's people, emails and units, gathered once per run."""
        found = self._involvements.get(incident.ref)
        if found is None:
            found = self._involvements[incident.ref] = Involvement.of(incident)
        return found

    def not_before(self, kind: SessionKind) -> datetime:
        """The earliest start a new session may get: a group session gives people notice."""
        if kind in GROUP_KINDS:
            return self.now + timedelta(minutes=self.policy.notice_minutes)
        return self.now

    def slots_key(self, spec: _Spec, window: Interval) -> tuple[object, ...]:
        """What the list of allowed starts depends on (now being fixed for the run)."""
        return (spec.incident.timezone, window.start, window.end, session_minutes(spec.kind, self.policy),
                self.not_before(spec.kind))

    def slots(self, spec: _Spec, window: Interval) -> list[_Slot]:
        """The allowed starts of the session in its window, from now (plus notice for a group session) on."""
        key = self.slots_key(spec, window)
        found = self._slots.get(key)
        if found is None:
            zone, minutes = spec.incident.timezone, session_minutes(spec.kind, self.policy)
            length = timedelta(minutes=minutes)
            found, segments = [], []
            for day, starts in grid_days(window, not_before=self.not_before(spec.kind), minutes=minutes, zone=zone,
                                         policy=self.policy):
                # Each day's starts are a run of that day's full grid: remember where, to reuse per-day facts.
                first = day_starts(day, minutes=minutes, zone=zone, policy=self.policy).index(starts[0])
                segments.append((day, first, len(starts), len(found)))
                found.extend(_Slot(s, s + length, day) for s in starts)
            self._slots[key] = found
            self._segments[key] = (zone, minutes, segments)
        return found

    def candidates(self, spec: _Spec, mode: Mode, first_day: date, clinicians: bool | None = None) -> _Candidates:
        """Statically eligible facilitators for the spec in `mode` (of one kind if given), most preferred first."""
        key = (spec.incident.ref, spec.kind, spec.language, spec.region, mode, spec.facilitator_kind, first_day,
               clinicians)
        stream = self._streams.get(key)
        if stream is None:
            involvement = self.involvement(spec.incident)
            agency = spec.incident.agency_id

            def keep(candidate: _Candidate) -> bool:
                return not conflict_reasons(candidate[0], involvement)

            def defer(candidate: _Candidate) -> bool:
                # Peers from the incident's own agency are a last resort: they may know the participants.
                f = candidate[0]
                return not f.is_clinician and f.profile.agency_id == agency

            stream = self._streams[key] = _Candidates(
                iter(self._qualified(spec, mode, first_day, clinicians)), keep, defer)
        return stream

    def _qualified(self, spec: _Spec, mode: Mode, first_day: date, clinicians: bool | None = None) -> _Candidates:
        """Facilitators passing the incident-independent static rules; shared by every incident of a run.

        `clinicians` keeps one kind only (None: both).
        """
        key = (spec.kind, spec.language, spec.region, mode, spec.facilitator_kind, first_day, clinicians)
        stream = self._qualified_streams.get(key)
        if stream is None:
            kind, fkind, language, region = spec.kind, spec.facilitator_kind, spec.language, spec.region
            memo_key = (kind, language, region, first_day)

            def keep(candidate: _Candidate) -> bool:
                f = candidate[0]
                if fkind is not None and f.profile.kind != fkind:
                    return False
                # Checked as for a virtual session: an in-person candidate serves the region, so
                # the verdict is the same for both modes. It depends on the profile alone.
                verdict = f.static_verdicts.get(memo_key)
                if verdict is None:
                    verdict = f.static_verdicts[memo_key] = not static_reasons(
                        f, kind=kind, mode=VIRTUAL, region=region, language=language, involvement=None,
                        on_date=first_day)
                return verdict

            source = ((f, certified_until(f, kind) or date.min) for f in self._source(language, region, mode)
                      if clinicians is None or f.is_clinician is clinicians)
            stream = self._qualified_streams[key] = _Candidates(source, keep)
        return stream

    def _seeded(self, spec: _Spec, mode: Mode, first_day: date, seeds: Sequence[Facilitator]) -> list[_Candidate]:
        """The given facilitators that pass every static rule, in their order."""
        involvement = self.involvement(spec.incident)
        return [(f, certified_until(f, spec.kind) or date.min) for f in seeds
                if (spec.facilitator_kind is None or f.profile.kind == spec.facilitator_kind)
                and not static_reasons(f, kind=spec.kind, mode=mode, region=spec.region, language=spec.language,
                                       involvement=involvement, on_date=first_day)]

    # -- the walk ------------------------------------------------------------------------------
    def team_at(self, spec: _Spec, slot: _Slot, candidates: Iterable[_Candidate], *, exclude: frozenset[int],
                ignore_ref: str | None, budget: int | None = None,
                checked: bool = False) -> list[Facilitator] | None:
        """The most preferred full team free at `slot`, else None.

        Clinicians beyond the required number are taken only when too few peers are free:
        clinicians are the scarce kind. Gives up (None) after checking `budget` candidates;
        `checked` candidates are already known to be free at the slot.
        """
        req = spec.requirement
        size = req.size
        quota = {True: req.min_clinicians, False: size - req.min_clinicians}
        taken = {True: 0, False: 0}
        team: list[Facilitator] = []
        spare: list[Facilitator] = []  # free clinicians beyond the quota, in preference order
        seen = set(exclude)
        group_session = spec.kind in GROUP_KINDS
        looked = 0
        for f, until in candidates:
            if f.id in seen or until < slot.day:
                continue
            seen.add(f.id)
            clinician = f.is_clinician
            over_quota = taken[clinician] >= quota[clinician]
            if over_quota and (not clinician or len(spare) >= size):
                continue  # could never be taken: nobody of this kind needs checking any more
            if not checked:
                # The capped are the bulk of a busy pool's most preferred: ask the memo first.
                if group_session and self.schedule.has_group_sessions(f.id) and self._capped(
                        f, self._local_day(f.calendar.zone, slot.start), ignore_ref):
                    continue
                looked += 1
                if budget is not None and looked > budget:
                    return None
                if dynamic_reasons(f, kind=spec.kind, starts_at=slot.start, ends_at=slot.end,
                                   schedule=self.schedule, policy=self.policy, ignore_session_ref=ignore_ref,
                                   stop_at_first=True, check_caps=False):
                    continue
            if over_quota:
                spare.append(f)
                continue
            team.append(f)
            taken[clinician] += 1
            if len(team) == size:
                return team
        if taken[False] >= req.min_peers and len(team) + len(spare) >= size:
            return team + spare[:size - len(team)]
        return None

    def search(self, spec: _Spec, attempts: Sequence[tuple[_Slot, tuple[Mode, ...]]], first_day: date, *,
               key: object, seeds: Sequence[Facilitator] = (), exclude: frozenset[int] = frozenset(),
               ignore_ref: str | None = None) -> _Found | _Shortfall:
        """The first (slot, mode) in `attempts` with a full team, or what was missing at best.

        A quick look at the first slot's most preferred candidates settles most plans. When it
        does not, every candidate's free slots are worked out once (cheap per-day and per-window
        facts are remembered for the run) and the slots are walked over those who are free.
        """
        if not attempts:
            return _Shortfall(0, 0, False, False)
        slot, modes = attempts[0]
        # Worth up to a quarter of the region's pool: working out everyone's free slots costs more.
        budget = max(_QUICK_LOOK, len(self.pool.serving(spec.language, spec.region)) // 4)
        # Only the preferred mode: when it has no team here, working out everyone's free slots
        # answers the other mode too.
        mode = modes[0]
        team = self.team_at(
            spec, slot, chain(self._seeded(spec, mode, first_day, seeds), self.candidates(spec, mode, first_day)),
            exclude=exclude, ignore_ref=ignore_ref, budget=budget)
        if team is not None:
            return _Found(slot, mode, team)
        return self._exhaustive(spec, attempts, first_day, key=key, seeds=seeds, exclude=exclude,
                                ignore_ref=ignore_ref)

    def _exhaustive(self, spec: _Spec, attempts: Sequence[tuple[_Slot, tuple[Mode, ...]]], first_day: date, *,
                    key: object, seeds: Sequence[Facilitator], exclude: frozenset[int],
                    ignore_ref: str | None) -> _Found | _Shortfall:
        slots = [slot for slot, _ in attempts]
        seen = set(exclude)
        universe: list[_Candidate] = []

        def read(clinicians: bool) -> Iterator[_Candidate]:
            """One kind in its preference order, added to `universe` as it is read.

            A team takes each kind in that kind's own order, so the order across kinds does not
            matter, and a kind that is never needed is never filtered.
            """
            # Virtual reach includes everyone an in-person session reaches, in the same relative order.
            for f, until in chain(self._seeded(spec, VIRTUAL, first_day, seeds),
                                  self.candidates(spec, VIRTUAL, first_day, clinicians)):
                if f.is_clinician is clinicians and f.id not in seen:
                    seen.add(f.id)
                    universe.append((f, until))
                    yield f, until

        req = spec.requirement
        need = {True: req.min_clinicians, False: req.min_peers}
        tally = _Tally(req, (1 << len(slots)) - 1)
        free_slots: dict[int, int] = {}

        def take(f: Facilitator, until: date) -> int:
            free = self._free_slots(f, until, key, slots, spec.kind, ignore_ref)
            if free:
                free_slots[f.id] = free
                tally.add(f.is_clinician, spec.region in f.profile.regions, free)
            return free

        # A required kind first (clinicians before peers): the slots where it suffices bound the
        # answer, and when it never suffices nobody needs to look at the other kind. That is the
        # usual case in a saturated pool.
        first, other = sorted((True, False), key=lambda clinicians: need[clinicians] == 0)
        for f, until in read(first):
            take(f, until)
        eligible = {first: len(universe)}
        if tally.most(first) < need[first]:
            return _Shortfall(tally.most(True) if first else None, None if first else tally.most(False), None, None,
                              eligible.get(True), eligible.get(False))
        # The other kind is read in preference order only until the earliest slot where the first
        # kind suffices is settled: the greedy team there comes from that prefix anyway.
        possible = tally.kind_at_least(first, need[first], VIRTUAL)
        earliest = (possible & -possible).bit_length() - 1
        for f, until in read(other):
            if take(f, until) >> earliest & 1:
                found = self._settle(spec, attempts[earliest], earliest, tally, first, universe, free_slots,
                                     exclude, ignore_ref)
                if found is not None:
                    return found
        eligible[other] = len(universe) - eligible[first]
        for i, (slot, modes) in enumerate(attempts):
            for mode in modes:
                if tally.enough(mode) >> i & 1:
                    found = self._team_from(spec, slot, i, mode, universe, free_slots, exclude, ignore_ref)
                    if found is not None:
                        return found
        together = tally.kind_at_least(True, req.min_clinicians, VIRTUAL) & tally.kind_at_least(
            False, req.min_peers, VIRTUAL)
        return _Shortfall(tally.most(True), tally.most(False), bool(together), bool(tally.enough(VIRTUAL)),
                          eligible[True], eligible[False])

    def _settle(self, spec: _Spec, attempt: tuple[_Slot, tuple[Mode, ...]], index: int, tally: _Tally, first: bool,
                universe: list[_Candidate], free_slots: dict[int, int], exclude: frozenset[int],
                ignore_ref: str | None) -> _Found | None:
        """The team at attempt `index` if its preferred possible mode already has one, else None."""
        slot, modes = attempt
        req = spec.requirement
        need = req.min_clinicians if first else req.min_peers
        for mode in modes:
            # With clinicians read in full, the peers read so far must fill the peers' places:
            # otherwise a peer not read yet would be preferred to an extra clinician.
            if tally.enough(mode) >> index & 1 and (
                    not first or tally.kind_at_least(False, req.size - req.min_clinicians, mode) >> index & 1):
                return self._team_from(spec, slot, index, mode, universe, free_slots, exclude, ignore_ref)
            if tally.kind_at_least(first, need, mode) >> index & 1:
                return None  # this mode may still fill up with people not read yet
        return None

    def _team_from(self, spec: _Spec, slot: _Slot, index: int, mode: Mode, universe: list[_Candidate],
                   free_slots: dict[int, int], exclude: frozenset[int], ignore_ref: str | None) -> _Found | None:
        here = [(f, until) for f, until in universe
                if free_slots.get(f.id, 0) >> index & 1 and (mode == VIRTUAL or spec.region in f.profile.regions)]
        # The free slots were worked out with the same rules: nobody needs checking again.
        team = self.team_at(spec, slot, here, exclude=exclude, ignore_ref=ignore_ref, checked=True)
        return _Found(slot, mode, team) if team is not None else None

    def _free_slots(self, f: Facilitator, until: date, key: object, slots: Sequence[_Slot], kind: SessionKind,
                    ignore_ref: str | None) -> int:
        """Bit i set when the facilitator may take slots[i]: dynamic_reasons' rules, slot by slot."""
        everyone = (1 << len(slots)) - 1
        free = self._certified_mask(key, slots, until)
        days = None
        if free and kind in GROUP_KINDS and self.schedule.has_group_sessions(f.id):
            days = self._days(key, slots, f.calendar.zone)
            # Caps first: in a saturated pool they rule out most people, and they are remembered.
            for day, day_mask in days:
                if free & day_mask and self._capped(f, day, ignore_ref):
                    free &= everyone ^ day_mask
        if not free:
            return 0
        free &= self._calendar_mask(f, key, slots)
        if free and self.schedule.has_bookings(f.id):
            buffer = timedelta(minutes=self.policy.buffer_minutes)
            span_start, span_end = self._span(key, slots)
            for busy_start, busy_end in self.schedule.busy(f.id, span_start - buffer, span_end + buffer,
                                                           ignore_session_ref=ignore_ref):
                free &= everyone ^ self._clash_mask(key, slots, busy_start, busy_end)
        return free

    def _span(self, key: object, slots: Sequence[_Slot]) -> tuple[datetime, datetime]:
        span = self._spans.get(key)
        if span is None:
            span = self._spans[key] = (min(s.start for s in slots), max(s.end for s in slots))
        return span

    def _calendar_mask(self, f: Facilitator, key: object, slots: Sequence[_Slot]) -> int:
        """Slots whose buffered range lies in the facilitator's weekly availability and not in time off."""
        masks = self._calendar_masks.setdefault(key, {})
        mask = masks.get(f.id)
        if mask is None:
            segments = self._segments.get(key)
            if segments is None:
                buffer = timedelta(minutes=self.policy.buffer_minutes)
                mask = f.calendar.free_mask([(slot.start - buffer, slot.end + buffer) for slot in slots])
            else:
                # Windows of different incidents share grid days, so the answer is kept per day.
                zone, minutes, runs = segments
                mask = 0
                for day, first, count, offset in runs:
                    mask |= ((self._day_cover(f, zone, day, minutes) >> first) & ((1 << count) - 1)) << offset
            masks[f.id] = mask
        return mask

    def _day_cover(self, f: Facilitator, zone: str, day: date, minutes: int) -> int:
        """day_starts positions whose buffered session fits the facilitator's availability."""
        # Kept on the pool's entry: it depends only on the profile and these settings.
        memo_key = (zone, day, minutes, self._grid_key)
        mask = f.day_covers.get(memo_key)
        if mask is None:
            buffer = timedelta(minutes=self.policy.buffer_minutes)
            length = timedelta(minutes=minutes)
            mask = f.day_covers[memo_key] = f.calendar.free_mask(
                [(s - buffer, s + length + buffer) for s in day_starts(day, minutes=minutes, zone=zone,
                                                                       policy=self.policy)])
        return mask

    def _clash_mask(self, key: object, slots: Sequence[_Slot], busy_start: datetime, busy_end: datetime) -> int:
        """Slots whose buffered range meets a booking [busy_start, busy_end) (same rule as Schedule.overlaps)."""
        buffer = timedelta(minutes=self.policy.buffer_minutes)
        index = self._slot_index.get(key)
        if index is None:
            ordered = all(a.start < b.start and a.end <= b.end for a, b in zip(slots, slots[1:]))
            index = self._slot_index[key] = (
                ([s.start for s in slots], [s.end for s in slots]) if ordered else None)
        if index is None:
            return sum(1 << i for i, s in enumerate(slots)
                       if s.start - buffer < busy_end and s.end + buffer > busy_start)
        starts, ends = index
        # Starts and ends both rise with the index, so the clashing slots are one contiguous run.
        lo = bisect_right(ends, busy_start - buffer)
        hi = bisect_left(starts, busy_end + buffer)
        return (1 << hi) - (1 << lo) if hi > lo else 0

    def _certified_mask(self, key: object, slots: Sequence[_Slot], until: date) -> int:
        """Slots held on or before `until` (the incident's local date)."""
        memo_key = (key, until)
        mask = self._cert_masks.get(memo_key)
        if mask is None:
            mask = sum(1 << i for i, slot in enumerate(slots) if slot.day <= until)
            self._cert_masks[memo_key] = mask
        return mask

    def _days(self, key: object, slots: Sequence[_Slot], zone: str) -> list[tuple[date, int]]:
        """The slots grouped by local date in `zone`: (date, mask of its slots)."""
        memo_key = (key, zone)
        days = self._day_masks.get(memo_key)
        if days is None:
            masks: dict[date, int] = {}
            for i, slot in enumerate(slots):
                day = self._local_day(zone, slot.start)
                masks[day] = masks.get(day, 0) | 1 << i
            days = self._day_masks[memo_key] = list(masks.items())
        return days

    def _local_day(self, zone: str, instant: datetime) -> date:
        memo_key = (zone, instant)
        day = self._local_days.get(memo_key)
        if day is None:
            day = self._local_days[memo_key] = instant.astimezone(ZoneInfo(zone)).date()
        return day

    def _capped(self, f: Facilitator, day: date, ignore_ref: str | None) -> bool:
        """Whether the daily or weekly cap forbids another group session on the facilitator's `day`."""
        memo = f.cap_memo
        state = (self.schedule.token, self.schedule.revision(f.id), ignore_ref,
                 self.policy.max_group_sessions_per_day, self.policy.max_group_sessions_per_7_days)
        if memo.state != state:
            # Same rule as cap_reasons, with the facilitator's group-session dates worked out once
            # per state of their bookings.
            tz = f.calendar.tz
            memo.state, memo.capped = state, {}
            memo.days = sorted(s.astimezone(tz).date().toordinal()
                               for s in self.schedule.group_starts(f.id, ignore_session_ref=ignore_ref))
        capped = memo.capped.get(day)
        if capped is None:
            capped = memo.capped[day] = bool(caps_on(day.toordinal(), memo.days, self.policy))
        return capped

    def diagnose(self, spec: _Spec, slots: list[_Slot], free: _Shortfall) -> tuple[str, ...]:
        """The most informative group-level reasons a session could not be placed."""
        if not slots:
            return (WINDOW_CLOSED,)
        pool, fkind = self.pool, spec.facilitator_kind
        req = spec.requirement

        def of_kind(ids: Iterable[int]) -> Iterator[int]:
            return (fid for fid in ids if fkind is None or pool.entry(fid).profile.kind == fkind)

        if fkind is not None and not pool.active_count(fkind):
            return _shortage(req, 0, 0)
        if next(of_kind(pool.speakers(spec.language)), None) is None:
            return (LANGUAGE_NOT_COVERED,)
        reachable = set(pool.serving(spec.language, spec.region)) | set(pool.virtual(spec.language))
        involvement = self.involvement(spec.incident)
        anyone = False
        for fid in of_kind(reachable):
            anyone = True
            if not conflict_reasons(pool.entry(fid), involvement):
                break
        else:
            return (ALL_CANDIDATES_CONFLICTED,) if anyone else (REGION_NOT_COVERED,)
        # Not enough people even before looking at time (certificates, for instance).
        clinicians, peers = free.eligible_clinicians, free.eligible_peers
        reasons = _shortage(req, clinicians, peers)
        if reasons or (clinicians is not None and peers is not None and clinicians + peers < req.size):
            return reasons or (NOT_ENOUGH_PEERS,)
        reasons = _shortage(req, free.clinicians, free.peers)
        if reasons:
            return reasons
        if free.together is not False and free.full is False:
            return (NOT_ENOUGH_PEERS,)  # the minimum of each kind met, but never a whole team
        return (NO_COMMON_SLOT,)

    # -- results -------------------------------------------------------------------------------
    def place(self, spec: _Spec, window: Interval, *, group_key: str | None, ref: str,
              exclude: frozenset[int] = frozenset()) -> PlannedSession | Problem:
        """Plan one session at its earliest feasible start and book it, or explain why not.

        Nobody in `exclude` (those who declined the session) is put on it.
        """
        key = self.slots_key(spec, window)
        slots = self.slots(spec, window)
        found = self.search(spec, [(s, _PREFERRED_MODES) for s in slots], slots[0].day if slots else date.min,
                            key=key, exclude=exclude)
        if isinstance(found, _Found):
            return self.book(spec, found.slot, found.mode, found.team, group_key=group_key, ref=ref)
        return Problem(group_key, spec.kind, self.diagnose(spec, slots, found))

    def book(self, spec: _Spec, slot: _Slot, mode: Mode, team: list[Facilitator], *,
             group_key: str | None, ref: str) -> PlannedSession:
        """The planned session, with each member's booking added to the schedule."""
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


def _shortage(req: TeamRequirement, clinicians: int | None, peers: int | None) -> tuple[str, ...]:
    """The kinds whose minimum is never met (None: not worked out)."""
    reasons = []
    if clinicians is not None and clinicians < req.min_clinicians:
        reasons.append(NO_CLINICIAN_AVAILABLE)
    if peers is not None and peers < req.min_peers:
        reasons.append(NOT_ENOUGH_PEERS)
    return tuple(reasons)


class _Tally:
    """Per-slot head counts (up to the team size) kept as bit masks, by kind and mode.

    at_least[k] is the mask of slots where k or more people are free; adding a person is a
    handful of integer operations whatever the number of slots.
    """

    __slots__ = ("req", "_kinds", "_people")

    def __init__(self, req: TeamRequirement, everyone: int) -> None:
        self.req = req
        top = max(req.size, req.min_clinicians, req.min_peers)

        def counter() -> list[int]:
            return [everyone] + [0] * top

        # (is_clinician, in_person) -> counter; people by in_person
        self._kinds = {(c, local): counter() for c in (True, False) for local in (True, False)}
        self._people = {True: counter(), False: counter()}

    @staticmethod
    def _bump(masks: list[int], free: int) -> None:
        for k in range(len(masks) - 1, 1, -1):
            masks[k] |= masks[k - 1] & free
        if len(masks) > 1:
            masks[1] |= free

    def add(self, clinician: bool, in_region: bool, free: int) -> None:
        """Count one more person of a kind, free at the slots set in `free`."""
        self._bump(self._kinds[(clinician, False)], free)
        self._bump(self._people[False], free)
        if in_region:
            self._bump(self._kinds[(clinician, True)], free)
            self._bump(self._people[True], free)

    def kind_at_least(self, clinician: bool, k: int, mode: Mode) -> int:
        """Slots where at least k of the kind are free for a session in `mode`."""
        return self._kinds[(clinician, mode == IN_PERSON)][k]

    def enough(self, mode: Mode) -> int:
        """Slots where the counts allow a full team in `mode`."""
        local = mode == IN_PERSON
        req = self.req
        return (self._kinds[(True, local)][req.min_clinicians] & self._kinds[(False, local)][req.min_peers]
                & self._people[local][req.size])

    def most(self, clinician: bool) -> int:
        """The most people of the kind free at any one slot (capped at the team size)."""
        return max((k for k, mask in enumerate(self._kinds[(clinician, False)]) if mask), default=0)



def _group_kinds(incident: IncidentFacts, policy: PlanningPolicy) -> tuple[SessionKind, ...]:
    if incident.severity >= policy.defusing_min_severity:
        return ("defusing", "debriefing")
    return ("debriefing",)


Exclusions = Mapping[str, Collection[int]]  # session ref -> facilitators who declined it


def plan_incident(incident: IncidentFacts, pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy, *,
                  now: datetime, only: Collection[tuple[str, str]] | None = None,
                  exclude: Exclusions | None = None) -> IncidentPlan:
    """Plan every group's sessions for one incident (or only the given (group key, kind) pairs) and book them.

    `exclude` maps a session ref to the facilitators never to put on it (they declined it).
    """
    return plan_surge((incident,), pool, schedule, policy, now=now, only=only, exclude=exclude)[incident.ref]


@dataclass(frozen=True, slots=True)
class GroupTask:
    """One group session a surge calls for, with its window and its place in plan_surge's order."""

    incident: IncidentFacts
    group: Group
    kind: SessionKind
    window: Interval
    ref: str
    order: tuple[object, ...]  # window close, severity (higher first), incident, group position, kind

    def spec(self, policy: PlanningPolicy) -> _Spec:
        """What the planner's search needs to place it."""
        return _Spec(self.incident, self.kind, self.group.language, self.incident.region,
                     team_requirements(self.kind, len(self.group.participants), policy), None)


def group_tasks(incidents: Sequence[IncidentFacts], policy: PlanningPolicy,
                only: Collection[tuple[str, str]] | None = None) -> list[GroupTask]:
    """Every group session of the incidents, in plan_surge's order: earliest window close, then severity."""
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
                tasks.append(GroupTask(incident, group, kind, window, session_ref(incident.ref, group.key, kind),
                                       (window.end, -incident.severity, incident.ref, position, kind)))
    tasks.sort(key=lambda t: t.order)
    return tasks


def plan_surge(incidents: Iterable[IncidentFacts], pool: FacilitatorPool, schedule: Schedule,
               policy: PlanningPolicy, *, now: datetime,
               only: Collection[tuple[str, str]] | None = None,
               exclude: Exclusions | None = None) -> dict[str, IncidentPlan]:
    """Plan several incidents competing for one pool: earliest window close first, then higher severity.

    The unit of competition is one group's session, so every incident's defusings (8-hour
    window) go before anyone's debriefing; within an incident groups keep their order.
    `exclude` maps a session ref to the facilitators never to put on it (they declined it).
    """
    run = _Run(pool, schedule, policy, now)
    incidents = list(incidents)
    return collect(incidents, [(task, place_task(run, task, exclude)) for task in group_tasks(incidents, policy, only)])


def place_task(run: _Run, task: GroupTask, exclude: Exclusions | None) -> PlannedSession | Problem:
    """Place one group session at its earliest feasible start and book it, or the reasons it cannot be."""
    declined = frozenset(exclude.get(task.ref, ())) if exclude else frozenset()
    return run.place(task.spec(run.policy), task.window, group_key=task.group.key, ref=task.ref, exclude=declined)


def collect(incidents: Sequence[IncidentFacts],
            outcomes: Iterable[tuple[GroupTask, PlannedSession | Problem]]) -> dict[str, IncidentPlan]:
    """Each incident's sessions and problems, in the order of `outcomes`."""
    refs = [i.ref for i in incidents]
    sessions: dict[str, list[PlannedSession]] = {ref: [] for ref in refs}
    problems: dict[str, list[Problem]] = {ref: [] for ref in refs}
    for task, outcome in outcomes:
        ref = task.incident.ref
        (sessions if isinstance(outcome, PlannedSession) else problems)[ref].append(outcome)  # type: ignore[arg-type]
    return {ref: IncidentPlan(tuple(sessions[ref]), tuple(problems[ref])) for ref in refs}


def _clear_of(slots: list[_Slot], busy: Sequence[Interval], policy: PlanningPolicy) -> list[_Slot]:
    """The slots that keep the buffer clear around each of the participant's own sessions."""
    if not busy:
        return slots
    pad = timedelta(minutes=policy.buffer_minutes)
    return [s for s in slots if all(s.end + pad <= b.start or s.start >= b.end + pad for b in busy)]


def plan_individual(participant: Participant, *, facilitator_kind: FacilitatorKind, accepted_at: datetime,
                    incident: IncidentFacts, pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy,
                    now: datetime, starts_at: datetime | None = None,
                    busy: Sequence[Interval] = ()) -> PlannedSession | Problem:
    """Book a 60-minute session with one facilitator of the chosen kind within 7 days of acceptance.

    At its earliest feasible start, or at `starts_at` only (one of `individual_starts`) when given;
    never over the participant's own sessions (`busy`, each with the policy's buffer).
    """
    run, spec, window = _individual(participant, facilitator_kind, accepted_at, incident, pool, schedule, policy, now)
    ref = individual_ref(incident.ref, participant.key)
    if starts_at is None and not busy:
        return run.place(spec, window, group_key=None, ref=ref)
    slots = _clear_of(run.slots(spec, window), busy, policy)
    if starts_at is None:
        found = run.search(spec, [(s, _PREFERRED_MODES) for s in slots], slots[0].day if slots else date.min,
                           key=("clear", tuple(busy)))
        if isinstance(found, _Found):
            return run.book(spec, found.slot, found.mode, found.team, group_key=None, ref=ref)
        return Problem(None, spec.kind, run.diagnose(spec, slots, found))
    require_aware("starts_at", starts_at)
    chosen = [slot for slot in slots if slot.start == starts_at.astimezone(UTC)]
    if not chosen:
        return Problem(None, spec.kind, (WINDOW_CLOSED,))
    found = run.search(spec, [(chosen[0], _PREFERRED_MODES)], slots[0].day, key=("at", chosen[0].start))
    if isinstance(found, _Found):
        return run.book(spec, found.slot, found.mode, found.team, group_key=None, ref=ref)
    return Problem(None, spec.kind, run.diagnose(spec, chosen, found))


def individual_starts(participant: Participant, *, facilitator_kind: FacilitatorKind, accepted_at: datetime,
                      incident: IncidentFacts, pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy,
                      now: datetime, days: int = 5, least: int = 3, busy: Sequence[Interval] = ()) -> list[datetime]:
    """The starts `plan_individual` could book now, earliest first, without booking any.

    The earliest feasible start of each of the first `days` days that have one; when fewer
    than `least` days do, the next feasible starts of those days too, up to `least` in all.
    Each is found by the same search that books, so booking one of them (`starts_at`) only
    fails when someone else took it meanwhile.
    """
    run, spec, window = _individual(participant, facilitator_kind, accepted_at, incident, pool, schedule, policy, now)
    slots = _clear_of(run.slots(spec, window), busy, policy)
    if not slots:
        return []
    first_day = slots[0].day

    def earliest(candidates: list[_Slot], key: object) -> _Slot | None:
        if not candidates:
            return None
        found = run.search(spec, [(slot, _PREFERRED_MODES) for slot in candidates], first_day, key=key)
        return found.slot if isinstance(found, _Found) else None

    chosen: list[_Slot] = []
    after = 0
    while len(chosen) < days:
        slot = earliest(slots[after:], ("starts", after))
        if slot is None:
            break
        chosen.append(slot)
        after = next((i for i, s in enumerate(slots) if s.day > slot.day), len(slots))
    while chosen and len(chosen) < least:
        taken = {slot.start for slot in chosen}
        slot = earliest([s for s in slots if s.start not in taken], ("more", frozenset(taken)))
        if slot is None:
            break
        chosen.append(slot)
    return sorted(slot.start for slot in chosen)


def _individual(participant: Participant, facilitator_kind: FacilitatorKind, accepted_at: datetime,
                incident: IncidentFacts, pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy,
                now: datetime) -> tuple[_Run, _Spec, Interval]:
    """The planning run, session spec and window of a participant's individual session."""
    if facilitator_kind not in ("peer", "clinician"):
        raise ValueError(f"facilitator_kind: expected peer or clinician, got {facilitator_kind!r}")
    require_aware("accepted_at", accepted_at)
    run = _Run(pool, schedule, policy, now)
    clinician = facilitator_kind == "clinician"
    spec = _Spec(incident, "individual", participant.language, incident.region,
                 TeamRequirement(1, int(clinician), int(not clinician)), facilitator_kind)
    return run, spec, session_window("individual", accepted_at, policy)


def find_replacement(session: PlannedSession, *, leaving_facilitator_id: int, incident: IncidentFacts, group: Group,
                     pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy, now: datetime,
                     accepted_at: datetime | None = None, exclude: Exclusions | None = None) -> PlannedSession | None:
    """Replace a leaving facilitator: same time if possible, else the next feasible time in the window.

    At the same time the other members are kept and the same mode is tried first; at another
    time they are still preferred. On success the session's bookings in `schedule` are replaced.
    For an individual session the window runs from `accepted_at` (default: `now`). Neither the
    leaving facilitator nor anyone `exclude` lists for the session (who declined it) is put on it.
    A move to another time gives a group session the policy's notice; the same time is kept
    however close it is, as people already expect it then.
    """
    if leaving_facilitator_id not in session.facilitator_ids:
        raise ValueError(f"leaving_facilitator_id: {leaving_facilitator_id} is not on the session")
    require_aware("session.starts_at", session.starts_at)
    require_aware("session.ends_at", session.ends_at)
    if accepted_at is not None:
        require_aware("accepted_at", accepted_at)
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
    declined = frozenset(exclude.get(ref, ())) if exclude else frozenset()
    found = run.search(spec, attempts, first_day, key=("replacement", ref), seeds=seeds,
                       exclude=declined | {leaving_facilitator_id}, ignore_ref=ref)
    if not isinstance(found, _Found):
        return None
    schedule.remove(ref)
    return run.book(spec, found.slot, found.mode, found.team, group_key=session.group_key, ref=ref)
