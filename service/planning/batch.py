"""Planning a batch of incidents together: the greedy plan, bettered by an optimizing solver when it leaves sessions out.

DESIGN.md section 3, "When incidents compete for a small pool": the plan maximizes, in this
order, (1) the people who get their group session inside its window, weighted by exposure and
severity; (2) sessions of the incidents whose window closes first; (3) the preferences (earliest
start, least loaded, peers of another agency, in person). plan_surge's greedy order is a
heuristic for (1)-(2); here OR-Tools CP-SAT searches for a better plan, starting from the greedy
one, and the greedy plan stays whenever the solver finds nothing better in time.

OR-Tools is imported inside `_solve` only: importing this module (the web workers and RQ's work
horses do, through service.planning) never loads it, and neither does a batch the greedy plan
settles. Only the long-lived planner process should call plan_batch with a batch the pool cannot
fully serve.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable, Mapping, Sequence

from service.planning.eligibility import facilitator_reasons
from service.planning.planner import (
    Exclusions, GroupTask, _Run, _Slot, collect, group_tasks, place_task,
)
from service.planning.policy import PlanningPolicy
from service.planning.pool import Facilitator, FacilitatorPool
from service.planning.schedule import Schedule
from service.planning.types import (
    IN_PERSON, VIRTUAL, Booking, IncidentFacts, IncidentPlan, PlannedSession, Problem,
)

# The solver's limit in deterministic seconds: a count of work, so the same input gets the same
# plan on an idle or a loaded machine. The wall-clock limit is only a safety net: when it stops
# a solve first, that solve's answer may differ from run to run.
TIME_LIMIT = 5.0
WALL_LIMIT = 30.0
SEED = 1
# Bounds on the model: the most preferred candidates of each kind per session, and the number of
# (session, facilitator, start) facts. A batch beyond them keeps the greedy plan: on the bench's
# largest surge (1,000 facilitators) 20 incidents already make 150,000 facts, which CP-SAT does
# not settle in seconds; its tight QUALITY surges make 5,000 to 15,000.
CANDIDATES_PER_KIND = 40
MAX_FACTS = 50_000
# (1): people weighed by exposure (direct > witness > support) and by the incident's severity.
EXPOSURE_WEIGHTS = {"direct": 3, "witness": 2, "support": 1}
# (3): one grid step earlier outweighs every per-member preference of a team.
_START_STEP = 1_000
_AWAY = 200        # a member who does not serve the region makes the session virtual
_OWN_AGENCY = 50   # a peer of the incident's own agency may know the participants


def people_weight(task: GroupTask) -> int:
    """Criterion (1) for one group session: its people, weighed by exposure and severity."""
    return len(task.group.participants) * EXPOSURE_WEIGHTS.get(task.group.exposure, 1) * task.incident.severity


@dataclass(frozen=True, slots=True)
class BatchStats:
    """How a batch was planned: what the solver did, and the two plans' scores."""

    # "skipped" (greedy placed all), "hopeless" (nothing left out fits alone), "too_big", or the solver's status
    solver: str
    greedy_score: tuple[int, int]    # criteria (1) and (2) of the greedy plan
    score: tuple[int, int]           # the same of the plan kept
    kept: str                        # "greedy" or "solver"
    seconds: float = 0.0             # the solve's wall time
    work: float = 0.0                # the solve's deterministic time
    facts: int = 0                   # (session, facilitator, start) facts in the model


def plan_batch(incidents: Iterable[IncidentFacts], pool: FacilitatorPool, schedule: Schedule,
               policy: PlanningPolicy, *, now: datetime, time_limit: float = TIME_LIMIT,
               wall_limit: float = WALL_LIMIT, exclude: Exclusions | None = None,
               stats: list[BatchStats] | None = None) -> dict[str, IncidentPlan]:
    """Plan a batch of incidents together and book the chosen sessions, like plan_surge.

    The greedy plan (plan_surge) first; when it leaves a group session out, a CP-SAT model of
    the batch, hinted with it, is solved on one worker with a fixed seed within `time_limit`
    deterministic seconds (and `wall_limit` seconds of wall time), and its plan is kept only
    when it scores better on DESIGN's criteria (1) then (2). `exclude` maps a session ref to the
    facilitators never to put on it. A BatchStats is appended to `stats` when given.
    """
    incidents = list(incidents)
    tasks = group_tasks(incidents, policy)
    run = _Run(pool, schedule, policy, now)
    greedy = [(task, place_task(run, task, exclude)) for task in tasks]
    greedy_score = score(greedy)
    if all(isinstance(outcome, PlannedSession) for _, outcome in greedy):
        _note(stats, BatchStats("skipped", greedy_score, greedy_score, "greedy"))
        return collect(incidents, greedy)
    greedy_sessions = [outcome for _, outcome in greedy if isinstance(outcome, PlannedSession)]
    for session in greedy_sessions:
        schedule.remove(session.ref)  # the solver starts from the schedule as it was
    if not _any_placeable_alone([task for task, outcome in greedy if isinstance(outcome, Problem)],
                                pool, schedule, policy, now, exclude):
        # No session left out fits even with the rest of the batch unbooked: no plan can debrief more
        # people than the greedy one, so the solver could not win (a full pool, a language nobody speaks).
        _book(schedule, greedy_sessions)
        _note(stats, BatchStats("hopeless", greedy_score, greedy_score, "greedy"))
        return collect(incidents, greedy)
    model = _Model(_Run(pool, schedule, policy, now), tasks, exclude)
    if model.facts > MAX_FACTS:
        _book(schedule, greedy_sessions)
        _note(stats, BatchStats("too_big", greedy_score, greedy_score, "greedy", facts=model.facts))
        return collect(incidents, greedy)
    solved = model.solve(greedy, time_limit, wall_limit)
    outcomes: list[tuple[GroupTask, PlannedSession | Problem]] = []
    if solved.chosen:
        outcomes = _realize(pool, schedule, policy, now, tasks, solved.chosen, exclude)
    if outcomes and score(outcomes) > greedy_score:
        _note(stats, BatchStats(solved.status, greedy_score, score(outcomes), "solver", solved.seconds, solved.work,
                                model.facts))
        return collect(incidents, outcomes)
    for _, outcome in outcomes:
        if isinstance(outcome, PlannedSession):
            schedule.remove(outcome.ref)
    _book(schedule, greedy_sessions)
    _note(stats, BatchStats(solved.status, greedy_score, greedy_score, "greedy", solved.seconds, solved.work,
                            model.facts))
    return collect(incidents, greedy)


def _any_placeable_alone(left_out: Sequence[GroupTask], pool: FacilitatorPool, schedule: Schedule,
                         policy: PlanningPolicy, now: datetime, exclude: Exclusions | None) -> bool:
    """Whether one of the sessions the greedy plan left out has a time and team against `schedule` alone.

    Bookings only take candidates away, so a session that does not fit here fits in no plan of
    the batch. Each trial booking is taken back.
    """
    for task in left_out:
        outcome = place_task(_Run(pool, schedule, policy, now), task, exclude)
        if isinstance(outcome, PlannedSession):
            schedule.remove(outcome.ref)
            return True
    return False


def score(outcomes: Sequence[tuple[GroupTask, PlannedSession | Problem]]) -> tuple[int, int]:
    """Criteria (1) and (2) of a plan: weighted people placed, then the window-close bonus of what is placed."""
    bonus = _close_bonus([task for task, _ in outcomes])
    placed = [task for task, outcome in outcomes if isinstance(outcome, PlannedSession)]
    return sum(map(people_weight, placed)), sum(bonus[task.ref] for task in placed)


def _close_bonus(tasks: Sequence[GroupTask]) -> dict[str, int]:
    """Criterion (2): the earlier a session's window closes, the higher its bonus (1 for the latest)."""
    ends = sorted({task.window.end for task in tasks}, reverse=True)
    rank = {end: i + 1 for i, end in enumerate(ends)}
    return {task.ref: rank[task.window.end] for task in tasks}


def _note(stats: list[BatchStats] | None, entry: BatchStats) -> None:
    if stats is not None:
        stats.append(entry)


def _book(schedule: Schedule, sessions: Iterable[PlannedSession]) -> None:
    """Book planned sessions again (as _Run.book does)."""
    for s in sessions:
        for fid in s.facilitator_ids:
            schedule.add(Booking(fid, s.ref, s.starts_at, s.ends_at, True))


def _realize(pool: FacilitatorPool, schedule: Schedule, policy: PlanningPolicy, now: datetime,
             tasks: Sequence[GroupTask], chosen: Mapping[int, tuple[_Slot, list[int]]],
             exclude: Exclusions | None) -> list[tuple[GroupTask, PlannedSession | Problem]]:
    """Book the solver's sessions, each member re-checked by the one eligibility rule; then place or diagnose the rest.

    The sessions the solver left out get the greedy placement against the final schedule: one
    it can still place is a gain, and the others get their reasons the way plan_surge gives them.
    """
    run = _Run(pool, schedule, policy, now)
    outcomes: dict[int, PlannedSession | Problem] = {}
    for i, (slot, team) in sorted(chosen.items()):
        task = tasks[i]
        spec = task.spec(policy)
        members = [pool.entry(fid) for fid in team]
        local = all(task.incident.region in f.profile.regions for f in members)
        mode = IN_PERSON if local else VIRTUAL
        involvement = run.involvement(task.incident)
        if any(facilitator_reasons(f, kind=task.kind, starts_at=slot.start, ends_at=slot.end, mode=mode,
                                   region=task.incident.region, language=task.group.language,
                                   incident=task.incident, involvement=involvement, schedule=schedule,
                                   policy=policy) for f in members):
            continue  # not expected (the model has the same rules); the greedy placement below tries again
        outcomes[i] = run.book(spec, slot, mode, members, group_key=task.group.key, ref=task.ref)
    run = _Run(pool, schedule, policy, now)
    for i, task in enumerate(tasks):
        if i not in outcomes:
            outcomes[i] = place_task(run, task, exclude)
    return [(task, outcomes[i]) for i, task in enumerate(tasks)]


@dataclass(slots=True)
class _Solved:
    status: str
    chosen: dict[int, tuple[_Slot, list[int]]] = field(default_factory=dict)  # task index -> (start, team)
    seconds: float = 0.0
    work: float = 0.0


class _Model:
    """Who may take which group session at which start (the planner's own rules), as plain data.

    Per session and start, the admissible facilitators are the planner's static candidates for a
    virtual session (the widest reach: an in-person session admits a subset, and a team all from
    the region is held in person) free at that start by the planner's slot-by-slot reading of
    dynamic_reasons against the schedule as it stands. What new sessions do to one another (the
    daily and weekly caps, the buffer across a facilitator's midnight) is the solver's part.
    A later start whose admissible set is a subset of an earlier start's of the same day, and
    which clashes with nothing across a midnight, is dropped: it can only be worse.
    """

    def __init__(self, run: _Run, tasks: Sequence[GroupTask], exclude: Exclusions | None) -> None:
        self.run, self.tasks = run, tasks
        policy = run.policy
        self.slots: list[list[_Slot]] = []
        # (task, start index) -> admissible (facilitator, their local day)
        free: dict[tuple[int, int], frozenset[tuple[int, date]]] = {}
        self.facts = 0
        for i, task in enumerate(tasks):
            if self.facts > MAX_FACTS:
                break  # too big to solve in time: plan_batch keeps the greedy plan
            spec = task.spec(policy)
            slots = run.slots(spec, task.window)
            self.slots.append(slots)
            if not slots:
                continue
            key = run.slots_key(spec, task.window)
            declined = frozenset(exclude.get(task.ref, ())) if exclude else frozenset()
            masks: list[tuple[Facilitator, int]] = []
            for clinicians in (True, False):
                taken = 0
                for f, until in run.candidates(spec, VIRTUAL, slots[0].day, clinicians):
                    if taken >= CANDIDATES_PER_KIND:
                        break
                    if f.id in declined:
                        continue
                    taken += 1
                    mask = run._free_slots(f, until, key, slots, task.kind, None)
                    if mask:
                        masks.append((f, mask))
                        self.facts += mask.bit_count()
            req = spec.requirement
            for j, slot in enumerate(slots):
                here = [f for f, mask in masks if mask >> j & 1]
                clinicians_here = sum(f.is_clinician for f in here)
                if (len(here) < req.size or clinicians_here < req.min_clinicians
                        or len(here) - clinicians_here < req.min_peers):
                    continue
                free[(i, j)] = frozenset((f.id, run._local_day(f.calendar.zone, slot.start)) for f in here)
        self.free = free

    def solve(self, hint: Sequence[tuple[GroupTask, PlannedSession | Problem]], time_limit: float,
              wall_limit: float) -> _Solved:
        """Maximize (1) then (2), then with those held the preferences (3); the greedy plan as the hint."""
        import time as clock

        from ortools.sat.python import cp_model  # here only: see the module's docstring

        run, tasks, free = self.run, self.tasks, self.free
        policy, pool = run.policy, run.pool
        clashes = self._clashes()
        involved = {side for pair in clashes for side in pair[1:]}
        kept, stand_in = self._undominated(involved)
        m = cp_model.CpModel()
        y = {key: m.NewBoolVar(f"y{key[0]}_{key[1]}") for key in kept}
        starts_of: dict[tuple[int, int, date], list[int]] = defaultdict(list)
        for i, j in kept:
            for fid, day in sorted(free[(i, j)]):
                starts_of[(i, fid, day)].append(j)
        x = {key: m.NewBoolVar(f"x{key[0]}_{key[1]}_{key[2]:%m%d}") for key in starts_of}
        held: dict[int, list] = defaultdict(list)
        for (i, j), var in y.items():
            held[i].append(var)
        for ys in held.values():
            m.AddAtMostOne(ys)
        members: dict[int, list[tuple[bool, object]]] = defaultdict(list)
        at_start: dict[tuple[int, int], list[tuple[bool, object]]] = defaultdict(list)
        for key, starts in starts_of.items():
            i, fid, _ = key
            m.Add(x[key] <= sum(y[(i, j)] for j in starts))
            clinician = pool.entry(fid).is_clinician
            members[i].append((clinician, x[key]))
            for j in starts:
                at_start[(i, j)].append((clinician, x[key]))
        for i, ys in held.items():
            req = tasks[i].spec(policy).requirement
            n = sum(ys)
            m.Add(sum(v for _, v in members[i]) == req.size * n)
            m.Add(sum(v for c, v in members[i] if c) >= req.min_clinicians * n)
            m.Add(sum(v for c, v in members[i] if not c) >= req.min_peers * n)
        for (i, j), team in at_start.items():
            # Redundant, but it tightens the relaxation: at the chosen start the whole team is admissible.
            req = tasks[i].spec(policy).requirement
            m.Add(sum(v for _, v in team) >= req.size * y[(i, j)])
            m.Add(sum(v for c, v in team if c) >= req.min_clinicians * y[(i, j)])
        self._caps(m, x)
        for fid, (i, j), (k, l) in clashes:
            if (i, j) in y and (k, l) in y:
                m.AddBoolOr([x[(i, fid, self._day(fid, i, j))].Not(), y[(i, j)].Not(),
                             x[(k, fid, self._day(fid, k, l))].Not(), y[(k, l)].Not()])
        weight = {i: people_weight(task) for i, task in enumerate(tasks)}
        bonus = _close_bonus(tasks)
        scale = sum(bonus.values()) + 1  # (2) never outweighs one point of (1)
        first = sum(var * (scale * weight[i] + bonus[tasks[i].ref]) for (i, _), var in y.items())
        m.Maximize(first)
        self._hint(m, y, x, hint, stand_in)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = SEED
        solver.parameters.linearization_level = 2
        solver.parameters.max_deterministic_time = time_limit * 0.7
        solver.parameters.max_time_in_seconds = wall_limit
        t0 = clock.perf_counter()
        status = solver.Solve(m)
        work = solver.ResponseProto().deterministic_time
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return _Solved(solver.StatusName(status), seconds=clock.perf_counter() - t0, work=work)
        best = round(solver.ObjectiveValue())
        name = solver.StatusName(status)
        values = ({k: solver.BooleanValue(v) for k, v in y.items()}, {k: solver.BooleanValue(v) for k, v in x.items()})
        # (3) with (1) and (2) held: the earliest starts, then in person, other agencies' peers, the least loaded.
        m.Add(first >= best)
        m.ClearHints()
        for k, v in y.items():
            m.AddHint(v, values[0][k])
        for k, v in x.items():
            m.AddHint(v, values[1][k])
        m.Minimize(sum(var * j * _START_STEP for (i, j), var in y.items())
                   + sum(var * self._member_cost(i, fid) for (i, fid, _), var in x.items()))
        solver.parameters.max_deterministic_time = max(time_limit - work, time_limit * 0.3)
        solver.parameters.max_time_in_seconds = max(wall_limit - (clock.perf_counter() - t0), 1.0)
        status = solver.Solve(m)
        work += solver.ResponseProto().deterministic_time
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            values = ({k: solver.BooleanValue(v) for k, v in y.items()},
                      {k: solver.BooleanValue(v) for k, v in x.items()})
        chosen: dict[int, tuple[_Slot, list[int]]] = {}
        for (i, j), on in values[0].items():
            if on:
                team = sorted(fid for (t, fid, _), v in values[1].items() if t == i and v)
                chosen[i] = (self.slots[i][j], team)
        return _Solved(name, chosen, clock.perf_counter() - t0, work)

    def _member_cost(self, i: int, fid: int) -> int:
        task, f = self.tasks[i], self.run.pool.entry(fid)
        cost = self.run._rank(fid)[0]  # load: sessions in the lookback period
        if task.incident.region not in f.profile.regions:
            cost += _AWAY
        if not f.is_clinician and f.profile.agency_id == task.incident.agency_id:
            cost += _OWN_AGENCY
        return cost

    def _day(self, fid: int, i: int, j: int) -> date:
        return self.run._local_day(self.run.pool.entry(fid).calendar.zone, self.slots[i][j].start)

    def _clashes(self) -> list[tuple[int, tuple[int, int], tuple[int, int]]]:
        """(facilitator, a start of one session, a start of another) closer than the buffer.

        On one local day of the facilitator the daily cap keeps two group sessions apart when it
        is 1; what is left then is a pair across their midnight.
        """
        policy = self.run.policy
        buffer = timedelta(minutes=policy.buffer_minutes)
        same_day_too = policy.max_group_sessions_per_day > 1
        entries: dict[int, list[tuple[datetime, datetime, int, int, date]]] = defaultdict(list)
        for (i, j), admitted in self.free.items():
            slot = self.slots[i][j]
            for fid, day in admitted:
                entries[fid].append((slot.start, slot.end, i, j, day))
        pairs = []
        for fid in sorted(entries):
            items = sorted(entries[fid], key=lambda e: (e[0], e[2], e[3]))
            for n, (start, end, i, j, day) in enumerate(items):
                for other_start, _, k, l, other_day in items[n + 1:]:
                    if other_start >= end + buffer:
                        break
                    if k != i and (other_day != day or same_day_too):
                        pairs.append((fid, (i, j), (k, l)))
        return pairs

    def _undominated(self, involved: set[tuple[int, int]]) -> tuple[list[tuple[int, int]], dict[tuple[int, int], int]]:
        """The starts worth a variable, and for each dropped one the earlier kept start standing in for it."""
        kept: list[tuple[int, int]] = []
        stand_in: dict[tuple[int, int], int] = {}
        by_day: dict[tuple[int, date], list[int]] = defaultdict(list)
        for i, j in sorted(self.free):
            by_day[(i, self.slots[i][j].day)].append(j)
        for (i, _), starts in by_day.items():
            plain: list[int] = []  # kept starts of the day that clash with nothing
            for j in starts:
                mine = self.free[(i, j)]
                if (i, j) not in involved:
                    earlier = next((k for k in plain if mine <= self.free[(i, k)]), None)
                    if earlier is not None:
                        stand_in[(i, j)] = earlier
                        continue
                    plain.append(j)
                kept.append((i, j))
        return kept, stand_in

    def _caps(self, m: object, x: Mapping[tuple[int, int, date], object]) -> None:
        """At most the daily and the rolling 7-day number of group sessions per facilitator, booked ones counted."""
        run = self.run
        policy = run.policy
        by_facilitator: dict[int, dict[date, list[object]]] = defaultdict(lambda: defaultdict(list))
        for (_, fid, day), var in x.items():
            by_facilitator[fid][day].append(var)
        for fid, by_day in by_facilitator.items():
            zone = run.pool.entry(fid).calendar.zone
            booked = [run._local_day(zone, start) for start in run.schedule.group_starts(fid)]
            for day, xs in by_day.items():
                m.Add(sum(xs) <= max(0, policy.max_group_sessions_per_day - booked.count(day)))  # type: ignore[attr-defined]
            days = sorted(by_day)
            for first in range(days[0].toordinal() - 6, days[-1].toordinal() + 1):
                lo, hi = date.fromordinal(first), date.fromordinal(first + 6)
                xs = [v for day, day_xs in by_day.items() if lo <= day <= hi for v in day_xs]
                if len(xs) > 1 or booked:
                    room = max(0, policy.max_group_sessions_per_7_days - sum(lo <= d <= hi for d in booked))
                    m.Add(sum(xs) <= room)  # type: ignore[attr-defined]

    def _hint(self, m: object, y: Mapping[tuple[int, int], object], x: Mapping[tuple[int, int, date], object],
              plan: Sequence[tuple[GroupTask, PlannedSession | Problem]], stand_in: Mapping[tuple[int, int], int]) -> None:
        """The greedy plan as the solver's starting point (where the model can express it)."""
        on: set[object] = set()
        for i, (_, outcome) in enumerate(plan):
            if not isinstance(outcome, PlannedSession):
                continue
            j = next((n for n, slot in enumerate(self.slots[i]) if slot.start == outcome.starts_at), None)
            if j is None:
                continue
            j = stand_in.get((i, j), j)
            if (i, j) not in y:
                continue
            on.add((i, j))
            on.update((i, fid, self._day(fid, i, j)) for fid in outcome.facilitator_ids)
        for key, var in y.items():
            m.AddHint(var, key in on)  # type: ignore[attr-defined]
        for key, var in x.items():
            m.AddHint(var, key in on)  # type: ignore[attr-defined]
