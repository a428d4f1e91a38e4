"""Planning quality and planning cost on seeded surges (DESIGN.md section 6).

Run from the repository root: `python -m bench.planner` (or `python -m bench planner`); `--quick`
for a short run, `--explain` to see where the planner falls short and why, `--in-order` for the
best count a planner bound by the surge order could reach (slow). OR-Tools is a main dependency.

Quality. Each seed is a small, tight surge (bench/surge.py `QUALITY`: 26 facilitators, 3 regions,
en/fr, 4 agencies in three time zones, 16 incidents occurring over ten hours, 30 days of load,
certificates lapsing inside the windows, involved personnel on the roster; even seeds start on a
Friday, so the debriefing windows cover a weekend and the end of daylight saving). The measure is
DESIGN's criterion (1): the people who get their group session inside its window, each counted 3
(direct), 2 (witness) or 1 (support) times the incident's severity (the bench's reading of "direct
weighs more than witness, witness more than support, and a higher severity more"); sessions
placed are printed beside it. Three ways of planning, each by `plan_batch` (the service's batch
planner: greedy, then CP-SAT when greedy leaves a session out) and, on the same batches, by
`plan_surge` (greedy):
- a surge as the service plans it (the closing quality line): POST /v1/incidents only stores a
  report, and the planner process (service/planner.py) plans every incident received so far as
  one batch. The surge's reports reach intake together, at `--rate` (100 a second, DESIGN's burst)
  from the scenario's `now`, in the order the incidents occurred. The simulated planner is woken
  by the first report, waits GATHER_SECONDS (read from service/planner.py; again while each wait
  brings SURGE_REPORTS or more, for up to SURGE_HOLD_SECONDS: it lets a surge pass) and plans what has
  arrived, with plan_batch limited to the planner's SOLVE_SECONDS and `now` = that moment; the next
  batch is what arrived while it planned (woken at once when the batch is done, then gathering
  what is left of GATHER_SECONDS counted from the batch's start), or the next report to arrive.
  A batch lasts its solver's deterministic seconds (so the batches are the same on any machine;
  the greedy pass and the database's reads and writes are not counted), or with `--durations
  wall` plan_batch's measured wall time. The oracle plans each
  incident at the same moment as its batch did;
- reports 10 minutes after their incident, one batch per arrival (planning takes seconds, so
  each batch is one incident), against a clairvoyant oracle that knows the whole surge and lets
  each incident's sessions start from its report: the price of planning reports that come apart;
- the whole surge at once at the scenario's `now` (a backlog), against the oracle planning
  everything at `now`.
bench/plan_checker.py then re-checks every plan, CP-SAT's included, against each hard rule,
re-derived from DESIGN.md and the raw data without the planner's code (the notice counted from
when each incident was planned); every violation is printed. Consistency is checked both ways
("agree"): the planners' plans are feasible points of the model, and the service's eligibility
rule accepts every member of CP-SAT's plan with the rest booked. The bench's model is its own
code, independent of the service's CP-SAT model (service/planning/batch.py).

The CP-SAT model, on the planner's own terms:
- sessions: the planner's groups (`split_into_groups`), a debriefing each and, at severity >= 4,
  a defusing each; teams of exactly `team_requirements` size, at least one clinician and one
  peer for a debriefing, two peers for a defusing;
- starts: the planner's grid (`timegrid.grid_starts`: 30-minute steps 08:00-20:00 in the agency's
  zone, ending by 21:00, inside the 24-72 h or 0-8 h window, at least the notice (60 minutes)
  after the incident is planned);
- who may take a session at a start, given the existing bookings, is decided by the service's one
  eligibility rule (`static_reasons`, `dynamic_reasons`): active; GCI, and a licence for a
  clinician, valid on the local date; the group's language; the region served, or virtual and
  `virtual_ok`; no conflict of interest (involved personnel of the same agency, an involved
  e-mail, an involved unit of the same agency); the session with its 60-minute buffers inside
  weekly availability, outside time off and clear of existing bookings; the caps as far as
  existing bookings fill them;
- what new sessions do to one another is the model's own: at most one group session per local
  day and three per rolling seven local days for each facilitator, existing ones counted; no
  two new sessions of a facilitator closer than the buffer (on one local day the daily cap
  already forbids the pair; across their midnight a clause per clashing pair).
Variables are y[session, start] and x[session, facilitator, local days]: a member must be
admissible at the chosen start, and the team is counted per day, which the caps count in.
Simplifications, none of which changes the optimum: the mode is not a variable (a virtual
session admits everyone an in-person one does, plus the `virtual_ok`, and no other rule depends
on it; a solution's session is in person when its whole team serves the region); a start whose
admissible people are a subset of another start's on the same day, and which clashes with
nothing across a midnight, is dropped for that other start. The planner's preferences (earliest
start, least loaded, peers of another agency, in person, the surge order) are not modelled: only
criterion (1), the weighted people, is maximised. Individual sessions are not part of a surge and not modelled. CP-SAT
runs on one worker with a limit in deterministic seconds (work, not wall time: the same answer
on a loaded machine); a solve stopped by it prints FEASIBLE and the ratio is then taken against
its proven bound, so it can only be understated.

Cost (the greedy path, which plans a batch the pool can serve in full). Milliseconds per incident for 200 incidents over ten regions, at 100, 1,000 and 10,000
facilitators (bench/surge.py `COST`, seed 7), best of three, wall and CPU time of this process:
`plan_surge` on the whole surge, and `plan_incident` incident by incident (the intake path). The
closing cost line is the intake path's CPU time: on a shared machine, the wall clock also counts
the turns of other processes.

Targets: weighted people >= 98% of the CP-SAT optimum (a surge as the service plans it) with zero violations; < 10 ms per
incident at 1,000 facilitators; 10x facilitators <= 3x time. The exit status is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import sys
import time as clock
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # also runnable as `python bench/planner.py`

from bench import surge  # noqa: E402
from bench._harness import load_average  # noqa: E402
from bench.plan_checker import Violation, check_plans  # noqa: E402
from service.planning import (  # noqa: E402
    Booking, FacilitatorPool, Group, IncidentFacts, PlannedSession, PlanningPolicy, Schedule, TeamRequirement,
    build_agenda, ineligibility_reasons, plan_batch, plan_incident, plan_surge, session_minutes, session_ref, session_window,
    split_into_groups, team_requirements,
)
from service.planning.eligibility import Involvement, dynamic_reasons, static_reasons  # noqa: E402
from service.planning import batch  # noqa: E402
from service.planning.batch import BatchStats  # noqa: E402
from service.planning.pool import Facilitator  # noqa: E402
from service.planning.timegrid import grid_starts  # noqa: E402
from service.planning.types import IN_PERSON, VIRTUAL, SessionKind  # noqa: E402

UTC = timezone.utc
QUALITY_SEEDS = tuple(range(1, 9))
QUICK_SEEDS = (3, 6)
# CP-SAT's limit in deterministic seconds: a count of work, so a loaded machine does not change the
# answer; each default seed is proven optimal within half of it. The wall limit is a safety net.
TIME_LIMIT = 20.0
WALL_LIMIT = 300.0
COST_SEED = 7
COST_SIZES = (100, 1_000, 10_000)
COST_REPEATS = 3


# -- the exact model -------------------------------------------------------------------------------

@dataclass(slots=True)
class Task:
    """One group session to place, with its possible starts."""

    incident: IncidentFacts
    group: Group
    kind: SessionKind
    requirement: TeamRequirement
    ref: str
    minutes: int
    starts: list[datetime]
    priority: tuple[object, ...]  # plan_surge's order: window close, severity (higher first), incident, group, kind


@dataclass(slots=True)
class Solved:
    """What CP-SAT found: status, sessions placed, proven bound, time, and the plans."""

    status: str
    placed: int
    bound: int
    seconds: float
    plans: dict[str, list[PlannedSession]]
    variables: int
    work: float = 0.0  # deterministic seconds spent
    agree: str = "n/a"
    disagreements: list[str] = field(default_factory=list)


def tasks_of(incidents: Sequence[IncidentFacts], policy: PlanningPolicy, planned_at: Mapping[str, datetime]
             ) -> list[Task]:
    """Every group session the surge calls for, with the planner's grid of starts from when its incident is planned."""
    tasks = []
    for incident in incidents:
        now = planned_at[incident.ref]
        defusing = incident.severity >= policy.defusing_min_severity
        kinds: tuple[SessionKind, ...] = ("defusing", "debriefing") if defusing else ("debriefing",)
        for position, group in enumerate(split_into_groups(incident.participants, policy)):
            for kind in kinds:
                window = session_window(kind, incident.occurred_at, policy)
                minutes = session_minutes(kind, policy)
                # DESIGN: at least the notice after the plan is made (people need notice).
                not_before = now + timedelta(minutes=policy.notice_minutes)
                starts = grid_starts(window, not_before=not_before, minutes=minutes, zone=incident.timezone,
                                     policy=policy)
                tasks.append(Task(incident, group, kind, team_requirements(kind, len(group.participants), policy),
                                  session_ref(incident.ref, group.key, kind), minutes, starts,
                                  (window.end, -incident.severity, incident.ref, position, kind)))
    return tasks


class SurgeModel:
    """The CP-SAT model of one scenario: who may take which session at which start, and the caps.

    Variables: y[task, start] (the session is held at that start) and x[task, facilitator, day,
    their day] (the facilitator is on the team, the session falling on that local day of the
    incident's and of theirs). A member needs a chosen start of that day at which they are
    admissible; with at most one start per session, the whole team is then admissible at one
    start. Indexing the team by day rather than by start keeps the model small where the caps,
    which count days, bind.

    Starts are reduced without changing the optimum: a start whose admissible facilitators
    (with their local days) are a subset of another start's of the same day, and which takes
    part in no clash across a facilitator's midnight, can be swapped for that other start in any
    solution; only the earliest of the undominated starts are kept.
    """

    def __init__(self, scenario: surge.Scenario, planned_at: Mapping[str, datetime] | None = None) -> None:
        from ortools.sat.python import cp_model  # imported where the model is built, as the service does

        self.cp = cp_model
        self.scenario = scenario
        policy = scenario.policy
        # When each incident can be planned at the earliest: the scenario's clock, or its report.
        planned_at = planned_at or {i.ref: scenario.now for i in scenario.incidents}
        self.tasks = tasks_of(scenario.incidents, policy, planned_at)
        self.weights = [people_weight(t) for t in self.tasks]
        self.task_by_ref = {t.ref: i for i, t in enumerate(self.tasks)}
        self.pool = FacilitatorPool(scenario.profiles)
        self.existing = Schedule(scenario.bookings)
        self.model = cp_model.CpModel()
        # (task, start) -> the facilitators admissible there, with their local day
        self.free = free = self._admissible_at_each_start()
        clashes = self._clash_pairs(free)
        involved = {side for pair in clashes for side in pair[1:]}
        # A dropped start -> the kept start of the same day that admits everyone it admits.
        self.stand_in: dict[tuple[int, int], int] = {}
        kept = self._undominated(free, involved)
        self.y: dict[tuple[int, int], object] = {key: self.model.NewBoolVar(f"y{key[0]}_{key[1]}") for key in kept}
        # x and admissible are keyed by (task, facilitator, incident's local day, facilitator's local day)
        self.x: dict[tuple[int, int, date, date], object] = {}
        self.admissible: dict[tuple[int, int, date, date], list[int]] = defaultdict(list)
        for ti, si in kept:
            day = self._incident_day(ti, si)
            for fid, own_day in sorted(free[(ti, si)]):  # sets of dates iterate in a salted order
                self.admissible[(ti, fid, day, own_day)].append(si)
        self._teams()
        self._caps()
        for fid, (ti, si), (tj, sj) in clashes:
            self.model.AddBoolOr([self.x[self._member(ti, si, fid)].Not(), self.y[(ti, si)].Not(),
                                  self.x[self._member(tj, sj, fid)].Not(), self.y[(tj, sj)].Not()])
        self.clash_clauses = len(clashes)
        self.model.Maximize(sum(y * self.weights[ti] for (ti, _), y in self.y.items()))

    def _incident_day(self, ti: int, si: int) -> date:
        task = self.tasks[ti]
        return task.starts[si].astimezone(ZoneInfo(task.incident.timezone)).date()

    def _admissible_at_each_start(self) -> dict[tuple[int, int], frozenset[tuple[int, date]]]:
        """Per (task, start) where a team could be formed at all: who the one eligibility rule admits there.

        Mode virtual (the widest reach, see the module's docstring); existing bookings only.
        """
        policy, pool = self.scenario.policy, self.pool
        involvements: dict[str, Involvement] = {}
        static: dict[tuple[object, ...], bool] = {}
        dynamic: dict[tuple[object, ...], bool] = {}
        out: dict[tuple[int, int], frozenset[tuple[int, date]]] = {}
        for ti, task in enumerate(self.tasks):
            inc, language, req = task.incident, task.group.language, task.requirement
            involvement = involvements.setdefault(inc.ref, Involvement.of(inc))
            speakers = [pool.entry(fid) for fid in pool.speakers(language)]
            for si, start in enumerate(task.starts):
                end = start + timedelta(minutes=task.minutes)
                day = self._incident_day(ti, si)
                free: list[Facilitator] = []
                for f in speakers:
                    key = (f.id, inc.ref, task.kind, language, day)
                    ok = static.get(key)
                    if ok is None:
                        ok = static[key] = not static_reasons(
                            f, kind=task.kind, mode=VIRTUAL, region=inc.region,
                            language=language, involvement=involvement, on_date=day)
                    if not ok:
                        continue
                    key = (f.id, start, end, task.kind)
                    ok = dynamic.get(key)
                    if ok is None:
                        ok = dynamic[key] = not dynamic_reasons(
                            f, kind=task.kind, starts_at=start, ends_at=end,
                            schedule=self.existing, policy=policy, stop_at_first=True)
                    if ok:
                        free.append(f)
                clinicians = sum(f.is_clinician for f in free)
                if clinicians < req.min_clinicians or len(free) - clinicians < req.min_peers or len(free) < req.size:
                    continue  # no team could ever be formed at this start
                out[(ti, si)] = frozenset((f.id, start.astimezone(f.calendar.tz).date()) for f in free)
        return out

    def _clash_pairs(self, free: Mapping[tuple[int, int], frozenset[tuple[int, date]]]
                     ) -> list[tuple[int, tuple[int, int], tuple[int, int]]]:
        """(facilitator, start of one task, start of another) that would be closer than the buffer.

        On one local day of the facilitator the daily cap already keeps two group sessions apart
        (when it is 1); what is left is a pair across their midnight.
        """
        policy = self.scenario.policy
        buffer = timedelta(minutes=policy.buffer_minutes)
        same_day_too = policy.max_group_sessions_per_day > 1
        entries: dict[int, list[tuple[datetime, datetime, int, int, date]]] = defaultdict(list)
        for (ti, si), members in free.items():
            task = self.tasks[ti]
            start = task.starts[si]
            for fid, own_day in sorted(members):
                entries[fid].append((start, start + timedelta(minutes=task.minutes), ti, si, own_day))
        pairs = []
        for fid, items in entries.items():
            items.sort(key=lambda e: (e[0], e[2], e[3]))
            for i, (start, end, ti, si, day) in enumerate(items):
                for other_start, _, tj, sj, other_day in items[i + 1:]:
                    if other_start >= end + buffer:
                        break  # sorted by start: nothing later comes closer
                    if tj != ti and (other_day != day or same_day_too):
                        pairs.append((fid, (ti, si), (tj, sj)))
        return pairs

    def _undominated(self, free: Mapping[tuple[int, int], frozenset[tuple[int, date]]],
                     involved: set[tuple[int, int]]) -> list[tuple[int, int]]:
        """The starts worth a variable: per task and day, the earliest of each maximal admissible set.

        Starts in a clash across a facilitator's midnight are all kept, and never stand in for another.
        """
        by_day: dict[tuple[int, date], list[int]] = defaultdict(list)
        for ti, si in sorted(free):
            by_day[(ti, self._incident_day(ti, si))].append(si)
        kept = []
        for (ti, _), starts in by_day.items():
            plain = [si for si in starts if (ti, si) not in involved]
            for si in starts:
                mine = free[(ti, si)]
                dominated = si in plain and any(
                    mine < free[(ti, sj)] or (mine == free[(ti, sj)] and sj < si) for sj in plain if sj != si)
                if not dominated:
                    kept.append((ti, si))
            kept_here = set(kept)
            for si in plain:
                if (ti, si) not in kept_here:
                    # A maximal superset among the plain starts always exists (a finite order), and is kept.
                    self.stand_in[(ti, si)] = next(sj for sj in plain if (ti, sj) in kept_here
                                                   and free[(ti, si)] <= free[(ti, sj)])
        return kept

    def _teams(self) -> None:
        """One start per session at most; per day of the session, exactly its team size of admissible people."""
        m, pool = self.model, self.pool
        held: dict[int, list[object]] = defaultdict(list)
        on_day: dict[tuple[int, date], list[object]] = defaultdict(list)
        for (ti, si), y in self.y.items():
            held[ti].append(y)
            on_day[(ti, self._incident_day(ti, si))].append(y)
        for ys in held.values():
            m.AddAtMostOne(ys)
        team: dict[tuple[int, date], list[tuple[bool, object]]] = defaultdict(list)
        at_start: dict[tuple[int, int], list[tuple[bool, object]]] = defaultdict(list)
        for key, starts in self.admissible.items():
            ti, fid, day, own_day = key
            x = self.x[key] = m.NewBoolVar(f"x{ti}_{fid}_{day:%m%d}_{own_day:%m%d}")
            m.Add(x <= sum(self.y[(ti, si)] for si in starts))
            clinician = pool.entry(fid).is_clinician
            team[(ti, day)].append((clinician, x))
            for si in starts:
                at_start[(ti, si)].append((clinician, x))
        for (ti, day), ys in on_day.items():
            req = self.tasks[ti].requirement
            n, members = sum(ys), team[(ti, day)]
            m.Add(sum(x for _, x in members) == req.size * n)
            if req.min_clinicians:
                m.Add(sum(x for clinician, x in members if clinician) >= req.min_clinicians * n)
            if req.min_peers:
                m.Add(sum(x for clinician, x in members if not clinician) >= req.min_peers * n)
        # Redundant but tightening: at a chosen start the whole team is admissible at that start.
        for (ti, si), members in at_start.items():
            req, y = self.tasks[ti].requirement, self.y[(ti, si)]
            m.Add(sum(x for _, x in members) >= req.size * y)
            if req.min_clinicians:
                m.Add(sum(x for clinician, x in members if clinician) >= req.min_clinicians * y)

    def _caps(self) -> None:
        """At most one group session per local day and three per rolling seven local days, existing ones counted."""
        policy, m = self.scenario.policy, self.model
        by_facilitator: dict[int, dict[date, list[object]]] = defaultdict(lambda: defaultdict(list))
        for (_, fid, _, own_day), x in self.x.items():
            by_facilitator[fid][own_day].append(x)
        for fid, by_day in by_facilitator.items():
            tz = self.pool.entry(fid).calendar.tz
            booked = [b.start.astimezone(tz).date() for b in self.existing.bookings_of(fid) if b.group]
            for day, xs in by_day.items():
                m.Add(sum(xs) <= max(0, policy.max_group_sessions_per_day - booked.count(day)))
            days = sorted(by_day)
            for first_ord in range(days[0].toordinal() - 6, days[-1].toordinal() + 1):
                first, last = date.fromordinal(first_ord), date.fromordinal(first_ord + 6)
                xs = [x for day, day_xs in by_day.items() if first <= day <= last for x in day_xs]
                if xs:
                    room = max(0, policy.max_group_sessions_per_7_days - sum(first <= d <= last for d in booked))
                    m.Add(sum(xs) <= room)

    def hint(self, plans: Mapping[str, Sequence[PlannedSession]]) -> list[str]:
        """Give a plan as the solver's hint; return where the plan falls outside the model's admissible set."""
        placed, outside = self._assignment(plans)
        ys = {y for _, y, _ in placed}
        xs = {x for _, _, members in placed for x in members}
        for key, y in self.y.items():
            self.model.AddHint(y, key in ys)
        for key, x in self.x.items():
            self.model.AddHint(x, key in xs)
        return outside

    def _assignment(self, plans: Mapping[str, Sequence[PlannedSession]]
                    ) -> tuple[list[tuple[str, tuple[int, int], list[tuple[int, int, date, date]]]], list[str]]:
        """A plan as the model's variables: (session ref, y key, x keys) each, and what the model cannot express."""
        placed, outside = [], []
        for sessions in plans.values():
            for s in sessions:
                ti = self.task_by_ref.get(s.ref)
                if ti is None:
                    outside.append(f"{s.ref}: not a session the model places")
                    continue
                task = self.tasks[ti]
                try:
                    si = task.starts.index(s.starts_at)
                except ValueError:
                    outside.append(f"{s.ref}: start {s.starts_at:%m-%d %H:%M} UTC not on the model's grid")
                    continue
                admitted = {fid for fid, _ in self.free.get((ti, si), ())}
                missing = [fid for fid in s.facilitator_ids if fid not in admitted]
                if missing:
                    outside.append(f"{s.ref} at {s.starts_at:%m-%d %H:%M} UTC: facilitator(s) {missing} not admissible")
                    continue
                # The kept start that stands for this one has the same people on the same days.
                kept = si if (ti, si) in self.y else self.stand_in[(ti, si)]
                placed.append((s.ref, (ti, kept), [self._member(ti, kept, fid) for fid in s.facilitator_ids]))
        return placed, outside

    def plan_is_feasible(self, plans: Mapping[str, Sequence[PlannedSession]], limit: float) -> tuple[str, list[str]]:
        """Whether the model accepts every session of a plan at once; on refusal, a minimal set of them to blame."""
        cp = self.cp
        placed, outside = self._assignment(plans)
        if outside:
            return "no", outside
        trial = self.model.Clone()
        literals = {}
        for ref, y, members in placed:
            lit = trial.NewBoolVar(f"keep_{ref}")
            trial.Add(self._var(trial, self.y[y]) == 1).OnlyEnforceIf(lit)
            for key in members:
                trial.Add(self._var(trial, self.x[key]) == 1).OnlyEnforceIf(lit)
            literals[lit.Index()] = ref
        trial.ClearObjective()
        trial.ClearHints()
        trial.AddAssumptions([trial.GetBoolVarFromProtoIndex(i) for i in literals])
        solver = cp.CpSolver()
        solver.parameters.max_deterministic_time = limit
        solver.parameters.max_time_in_seconds = WALL_LIMIT
        solver.parameters.num_workers = 1
        status = solver.Solve(trial)
        if status in (cp.OPTIMAL, cp.FEASIBLE):
            return "yes", []
        if status == cp.INFEASIBLE:
            core = [literals[i] for i in solver.SufficientAssumptionsForInfeasibility()]
            return "no", [f"these sessions cannot all hold together in the model: {sorted(core)}"]
        return "unknown", []

    def _member(self, ti: int, si: int, fid: int) -> tuple[int, int, date, date]:
        """The key of x for a facilitator on task ti held at start si."""
        start = self.tasks[ti].starts[si]
        return (ti, fid, start.astimezone(ZoneInfo(self.tasks[ti].incident.timezone)).date(),
                start.astimezone(self.pool.entry(fid).calendar.tz).date())

    @staticmethod
    def _var(trial: object, literal: object) -> object:
        return trial.GetBoolVarFromProtoIndex(literal.Index())  # type: ignore[attr-defined]

    def in_priority_order(self, limit: float) -> tuple[int, bool]:
        """The most sessions placed when none is given up for sessions after it in plan_surge's order.

        Each session, in that order, is kept when it fits together with every session kept
        before it (an exact feasibility question for CP-SAT, `limit` deterministic seconds each):
        the best any planner bound by the design's surge order could do. Returns the count and
        whether every question was settled.
        """
        cp = self.cp
        trial = self.model.Clone()
        trial.ClearObjective()
        trial.ClearHints()
        held: dict[int, list[object]] = defaultdict(list)
        for (ti, _), y in self.y.items():
            held[ti].append(self._var(trial, y))
        enforce = {}
        for ti, ys in held.items():
            enforce[ti] = trial.NewBoolVar(f"hold_{ti}")
            trial.Add(sum(ys) == 1).OnlyEnforceIf(enforce[ti])
        kept: list[int] = []
        in_last_solution: set[int] = set()
        settled = True
        for ti in sorted(held, key=lambda t: self.tasks[t].priority):
            if ti in in_last_solution:
                kept.append(ti)  # the last solution already holds it with everything kept before
                continue
            trial.ClearAssumptions()
            trial.AddAssumptions([enforce[t] for t in [*kept, ti]])
            solver = cp.CpSolver()
            solver.parameters.max_deterministic_time = limit
            solver.parameters.max_time_in_seconds = WALL_LIMIT
            solver.parameters.num_workers = 1
            solver.parameters.linearization_level = 2
            status = solver.Solve(trial)
            if status in (cp.OPTIMAL, cp.FEASIBLE):
                kept.append(ti)
                in_last_solution = {t for t, ys in held.items() if any(solver.BooleanValue(y) for y in ys)}
            elif status != cp.INFEASIBLE:
                settled = False
        return len(kept), settled

    def solve(self, limit: float, workers: int) -> Solved:
        """Maximise the sessions placed within `limit` deterministic seconds (the same work on any load)."""
        cp = self.cp
        solver = cp.CpSolver()
        solver.parameters.max_deterministic_time = limit
        solver.parameters.max_time_in_seconds = WALL_LIMIT
        solver.parameters.num_workers = workers
        # Full linearisation of the team and cap constraints: its LP bound closes these instances in
        # seconds on one worker, where the default portfolio on two workers stalls on the bound.
        solver.parameters.linearization_level = 2
        solver.parameters.random_seed = 1
        t0 = clock.perf_counter()
        status = solver.Solve(self.model)
        seconds_used = clock.perf_counter() - t0
        name = solver.StatusName(status)
        work = solver.ResponseProto().deterministic_time
        if status not in (cp.OPTIMAL, cp.FEASIBLE):
            return Solved(name, 0, int(solver.BestObjectiveBound()), seconds_used, self._plans(None),
                          len(self.x) + len(self.y), work)
        return Solved(name, round(solver.ObjectiveValue()), round(solver.BestObjectiveBound()), seconds_used,
                      self._plans(solver), len(self.x) + len(self.y), work)

    def _plans(self, solver: object | None) -> dict[str, list[PlannedSession]]:
        """The sessions of a solution (of this model or of a clone: variables keep their index)."""
        plans: dict[str, list[PlannedSession]] = {i.ref: [] for i in self.scenario.incidents}
        if solver is None:
            return plans
        value = solver.BooleanValue  # type: ignore[attr-defined]
        policy = self.scenario.policy
        for (ti, si), y in self.y.items():
            if not value(y):
                continue
            task = self.tasks[ti]
            team = sorted(fid for (t, fid, _, _), x in self.x.items() if t == ti and value(x))
            start = task.starts[si]
            region = task.incident.region
            local = all(region in self.pool.entry(fid).profile.regions for fid in team)
            plans[task.incident.ref].append(PlannedSession(
                kind=task.kind, group_key=task.group.key, starts_at=start,
                ends_at=start + timedelta(minutes=task.minutes), mode=IN_PERSON if local else VIRTUAL, region=region,
                facilitator_ids=tuple(team), agenda=build_agenda(task.kind, start, policy), ref=task.ref))
        return plans

    def closest_optimum(self, plans: Mapping[str, Sequence[PlannedSession]], optimum: int,
                        limit: float) -> dict[str, list[PlannedSession]] | None:
        """A plan with `optimum` sessions that keeps as much of `plans` as it can: same sessions, starts, members.

        What it changes is the least a planner would have had to do differently.
        """
        cp = self.cp
        placed, _ = self._assignment(plans)
        trial = self.model.Clone()
        trial.ClearObjective()
        trial.Add(sum(self._var(trial, y) * self.weights[ti] for (ti, _), y in self.y.items()) >= optimum)
        kept = [self._var(trial, self.y[y]) for _, y, _ in placed]
        kept += [self._var(trial, self.x[key]) for _, _, members in placed for key in members]
        trial.Maximize(sum(kept))
        solver = cp.CpSolver()
        solver.parameters.max_deterministic_time = limit
        solver.parameters.max_time_in_seconds = WALL_LIMIT
        solver.parameters.num_workers = 1
        solver.parameters.linearization_level = 2
        if solver.Solve(trial) not in (cp.OPTIMAL, cp.FEASIBLE):
            return None
        return self._plans(solver)


# -- quality ---------------------------------------------------------------------------------------

# DESIGN (1): "direct exposure weighs more than witness, witness more than support, and a higher
# severity more". The bench's reading: each person counts 3, 2 or 1 by exposure, times severity.
EXPOSURE_WEIGHT = {"direct": 3, "witness": 2, "support": 1}
# A report reaches Debrief this long after the incident occurred (the arrival-10-minutes-apart figure).
REPORT_DELAY = timedelta(minutes=10)
# A surge's reports reach Debrief together: DESIGN's burst rate (section 7).
SURGE_RATE = 100.0


def _service_planner_constants() -> dict[str, float]:
    """GATHER_SECONDS, the surge's hold, SOLVE_SECONDS and SOLVE_WALL_SECONDS of the planner process (service/planner.py),
    read without importing it.

    Importing it would pull SQLAlchemy in; this benchmark runs the pure planning code only.
    """
    import ast

    tree = ast.parse((ROOT / "service" / "planner.py").read_text())
    return {target.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)
            and target.id in ("GATHER_SECONDS", "SURGE_REPORTS", "SURGE_HOLD_SECONDS", "SOLVE_SECONDS", "SOLVE_WALL_SECONDS")}


_SERVICE = _service_planner_constants()
GATHER_SECONDS: float = _SERVICE["GATHER_SECONDS"]
SURGE_REPORTS: int = _SERVICE["SURGE_REPORTS"]
SURGE_HOLD_SECONDS: float = _SERVICE["SURGE_HOLD_SECONDS"]
SOLVE_SECONDS: float = _SERVICE["SOLVE_SECONDS"]
SOLVE_WALL_SECONDS: float = _SERVICE["SOLVE_WALL_SECONDS"]


def people_weight(task: Task) -> int:
    """DESIGN's criterion (1) for one group session: its people, weighed by exposure and severity."""
    return len(task.group.participants) * EXPOSURE_WEIGHT.get(task.group.exposure, 1) * task.incident.severity


def reported_at(scenario: surge.Scenario) -> dict[str, datetime]:
    """When each incident of the surge is reported (and the planner wakes up for it)."""
    return {i.ref: i.occurred_at.astimezone(UTC) + REPORT_DELAY for i in scenario.incidents}


Plans = dict[str, list[PlannedSession]]


@dataclass(slots=True)
class Run:
    """One planner's plans for a surge, with its cost and what plan_batch's solver did."""

    plans: Plans
    ms: float
    batches: int = 1
    stats: list[BatchStats] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)
    planned_at: dict[str, datetime] = field(default_factory=dict)  # incident ref -> its batch's `now`
    sizes: list[int] = field(default_factory=list)                 # incidents per batch, in order
    busy: float = 0.0                                              # seconds the simulated planner spent planning


@dataclass(slots=True)
class Quality:
    """One seed's figures, and the plans behind them."""

    scenario: surge.Scenario
    demand: int
    weight: dict[str, int]        # session ref -> its people weight
    arrivals: dict[str, datetime]
    greedy: Run                   # plan_surge on each batch, reports 10 minutes after their incident
    batch: Run                    # plan_batch on each batch, reports 10 minutes after their incident
    solved: Solved                # CP-SAT, each incident planned at the earliest when reported
    surge: Run                    # plan_surge on the whole surge at `now`
    burst: Run                    # plan_batch on the whole surge at `now`
    burst_solved: Solved          # CP-SAT, everything planned at `now`
    service: Run                  # plan_batch on the batches the planner process forms as a surge's reports arrive
    service_greedy: Run           # plan_surge on the same batches, at the same times
    service_solved: Solved        # CP-SAT, each incident planned at its batch's time
    violations: dict[str, list[Violation]]
    in_order: tuple[int, bool] | None = None
    closest: Plans | None = None  # the optimum nearest to plan_surge's plan of the whole surge

    @staticmethod
    def count(plans: Mapping[str, Sequence[PlannedSession]]) -> int:
        """Sessions placed in a plan."""
        return sum(map(len, plans.values()))

    def people(self, plans: Mapping[str, Sequence[PlannedSession]]) -> int:
        """DESIGN's criterion (1) of a plan: weighted people with their group session in its window."""
        return sum(self.weight[s.ref] for sessions in plans.values() for s in sessions)


Waves = dict[datetime, list[IncidentFacts]]


def _plan_waves(scenario: surge.Scenario, batched: bool, waves: Waves, time_limit: float) -> Run:
    """Plan each wave (the reports of one planner pass) at its time, on one roster and schedule."""
    pool, schedule = FacilitatorPool(scenario.profiles), Schedule(scenario.bookings)
    run = Run({}, 0.0, len(waves))
    reasons: dict[str, int] = defaultdict(int)
    t0 = clock.perf_counter()
    for at in sorted(waves):
        if batched:
            result = plan_batch(waves[at], pool, schedule, scenario.policy, now=at, time_limit=time_limit,
                                stats=run.stats)
        else:
            result = plan_surge(waves[at], pool, schedule, scenario.policy, now=at)
        run.sizes.append(len(waves[at]))
        for ref, plan in result.items():
            run.plans[ref] = list(plan.sessions)
            run.planned_at[ref] = at
            for problem in plan.problems:
                reasons[",".join(problem.reasons)] += 1
    run.ms = (clock.perf_counter() - t0) * 1000
    run.problems = dict(reasons)
    return run


def run_batches(scenario: surge.Scenario, batched: bool, arrivals: Mapping[str, datetime] | None,
                time_limit: float) -> Run:
    """Reports arriving minutes apart (`arrivals`), each arrival planned at its time; without, the whole surge at `now`.

    Planning a batch takes seconds and these reports come minutes apart, so each wake-up plans the
    reports of one arrival time. plan_batch when `batched`, else plan_surge.
    """
    times = arrivals or {i.ref: scenario.now for i in scenario.incidents}
    waves: Waves = defaultdict(list)
    for incident in scenario.incidents:
        waves[times[incident.ref]].append(incident)
    return _plan_waves(scenario, batched, waves, time_limit)


def surge_arrivals(scenario: surge.Scenario, rate: float) -> dict[str, datetime]:
    """A surge's reports reaching intake together at `rate` a second from `now`, in the order the incidents occurred."""
    ordered = sorted(scenario.incidents, key=lambda i: (i.occurred_at, i.ref))
    return {i.ref: scenario.now + timedelta(seconds=k / rate) for k, i in enumerate(ordered)}


def run_service(scenario: surge.Scenario, arrivals: Mapping[str, datetime], *, gather: float, time_limit: float,
                durations: str) -> Run:
    """The planner process (service/planner.py run_planner) as a surge's reports arrive: plan_batch on the batches it forms.

    Woken by the first report, the planner waits `gather` seconds, again while each wait brought
    SURGE_REPORTS or more (for up to SURGE_HOLD_SECONDS from its wake-up: it lets a surge pass), and
    plans everything arrived by then as one batch, with `now` = that moment. Reports that arrive
    while a batch is planned wake it again as soon as the batch is done (their NOTIFY is queued),
    and it waits what is left of `gather` counted from the batch's start (a surge: reports at
    SURGE_REPORTS a gather over the batch and that wait); otherwise the next report wakes it. How
    long a batch takes is, with `durations` "work", the deterministic seconds of plan_batch's
    solver (reproducible on any machine; the greedy pass and the database's reads and writes are
    not counted), or with "wall", plan_batch's measured wall time.
    """
    pool, schedule = FacilitatorPool(scenario.profiles), Schedule(scenario.bookings)
    by_ref = {i.ref: i for i in scenario.incidents}
    waiting = sorted(arrivals, key=lambda ref: (arrivals[ref], ref))
    run = Run({}, 0.0, 0)
    reasons: dict[str, int] = defaultdict(int)
    woken, passed = arrivals[waiting[0]], None
    step = timedelta(seconds=gather)
    t0 = clock.perf_counter()
    while waiting:
        # service.planner.let_surge_pass. Reports stored during the last pass (`passed` long): the first gather
        # lasts what is left of `gather` counted from the pass's start, and counts them with those it brings.
        # Woken by a report: a whole gather, counting those after the one that woke it.
        at = woken + (step if passed is None else max(step - passed, timedelta(0)))
        came = sum(1 for ref in waiting if arrivals[ref] <= at) - (1 if passed is None else 0)
        window = step if passed is None else max(step, passed)
        while came * step >= SURGE_REPORTS * window and at < woken + timedelta(seconds=SURGE_HOLD_SECONDS):
            since, at, window = at, at + step, step
            came = sum(1 for ref in waiting if since < arrivals[ref] <= at)
        members = [ref for ref in waiting if arrivals[ref] <= at]
        waiting = waiting[len(members):]
        solves = len(run.stats)
        wall = clock.perf_counter()
        # As the planner process does: its wall-clock cap too (it holds the pool's lock meanwhile).
        result = plan_batch([by_ref[ref] for ref in members], pool, schedule, scenario.policy, now=at,
                            time_limit=time_limit, wall_limit=SOLVE_WALL_SECONDS, stats=run.stats)
        wall = clock.perf_counter() - wall
        took = wall if durations == "wall" else sum(st.work for st in run.stats[solves:])
        run.busy += took
        run.batches += 1
        run.sizes.append(len(members))
        for ref, plan in result.items():
            run.plans[ref] = list(plan.sessions)
            run.planned_at[ref] = at
            for problem in plan.problems:
                reasons[",".join(problem.reasons)] += 1
        done = at + timedelta(seconds=took)
        if waiting:
            passed = done - at if arrivals[waiting[0]] <= done else None
            woken = max(done, arrivals[waiting[0]])
    run.ms = (clock.perf_counter() - t0) * 1000
    run.problems = dict(reasons)
    return run


def oracle(scenario: surge.Scenario, planned_at: Mapping[str, datetime] | None, hints: Sequence[Plans],
           time_limit: float, workers: int) -> tuple[SurgeModel, Solved]:
    """The exact model's optimum, with the consistency checks both ways against the given plans."""
    model = SurgeModel(scenario, planned_at)
    weight = dict(zip((t.ref for t in model.tasks), model.weights))
    # The best of the plans as the hint: a feasible start for the solver.
    outside = model.hint(max(hints, key=lambda p: sum(weight[s.ref] for ss in p.values() for s in ss)))
    verdicts = [model.plan_is_feasible(p, 10.0) for p in hints]
    solved = model.solve(time_limit, workers)
    refused = service_refusals(scenario, solved.plans)
    solved.agree = "/".join(v for v, _ in verdicts) + "/" + ("no" if refused else "yes")
    solved.disagreements = outside + [d for _, ds in verdicts for d in ds] + refused
    return model, solved


def measure_quality(seed: int, now: datetime, time_limit: float, workers: int, batch_limit: float,
                    in_order: bool = False, closest: bool = False, rate: float = SURGE_RATE,
                    gather: float = GATHER_SECONDS, durations: str = "work") -> Quality:
    """Plan one seeded surge as the service's planner does, as reports 10 minutes apart and at once; solve it exactly
    each way, and check every plan."""
    scenario = surge.build(surge.QUALITY, seed, now)
    service = run_service(scenario, surge_arrivals(scenario, rate), gather=gather, time_limit=batch_limit,
                          durations=durations)
    waves: Waves = defaultdict(list)
    for incident in scenario.incidents:
        waves[service.planned_at[incident.ref]].append(incident)
    service_greedy = _plan_waves(scenario, False, waves, batch_limit)
    _, service_solved = oracle(scenario, service.planned_at, [service_greedy.plans, service.plans], time_limit, workers)
    arrivals = reported_at(scenario)
    greedy = run_batches(scenario, False, arrivals, batch_limit)
    batch = run_batches(scenario, True, arrivals, batch_limit)
    whole = run_batches(scenario, False, None, batch_limit)
    burst = run_batches(scenario, True, None, batch_limit)
    model, solved = oracle(scenario, arrivals, [greedy.plans, batch.plans], time_limit, workers)
    burst_model, burst_solved = oracle(scenario, None, [whole.plans, burst.plans], time_limit, workers)
    raw = dict(profiles=scenario.profiles, bookings=scenario.bookings, incidents=scenario.incidents,
               policy=scenario.policy, now=scenario.now)
    violations = {
        "greedy": check_plans(plans=greedy.plans, planned_at=arrivals, **raw),
        "batch": check_plans(plans=batch.plans, planned_at=arrivals, **raw),
        "cp-sat": check_plans(plans=solved.plans, planned_at=arrivals, **raw),
        "surge": check_plans(plans=whole.plans, **raw), "burst": check_plans(plans=burst.plans, **raw),
        "cp-sat at once": check_plans(plans=burst_solved.plans, **raw),
        "service": check_plans(plans=service.plans, planned_at=service.planned_at, **raw),
        "service greedy": check_plans(plans=service_greedy.plans, planned_at=service.planned_at, **raw),
        "cp-sat service": check_plans(plans=service_solved.plans, planned_at=service.planned_at, **raw)}
    q = Quality(scenario, len(model.tasks), dict(zip((t.ref for t in model.tasks), model.weights)), arrivals,
                greedy, batch, solved, whole, burst, burst_solved, service, service_greedy, service_solved, violations)
    if closest and burst_solved.status == "OPTIMAL" and q.people(whole.plans) < burst_solved.placed:
        q.closest = burst_model.closest_optimum(whole.plans, burst_solved.placed, time_limit)
    if in_order:
        q.in_order = burst_model.in_priority_order(2.0)
    return q


def service_refusals(scenario: surge.Scenario, plans: Mapping[str, Sequence[PlannedSession]]) -> list[str]:
    """Where the service's one eligibility rule refuses a member of a plan, every other session of it booked."""
    incidents = {i.ref: i for i in scenario.incidents}
    profiles = {p.id: p for p in scenario.profiles}
    schedule = Schedule(scenario.bookings)
    for sessions in plans.values():
        for s in sessions:
            for fid in s.facilitator_ids:
                schedule.add(Booking(fid, s.ref, s.starts_at, s.ends_at, True))
    refused = []
    for ref, sessions in plans.items():
        incident = incidents[ref]
        languages = {g.key: g.language for g in split_into_groups(incident.participants, scenario.policy)}
        for s in sessions:
            for fid in s.facilitator_ids:
                reasons = ineligibility_reasons(
                    profiles[fid], kind=s.kind, starts_at=s.starts_at, ends_at=s.ends_at, mode=s.mode,
                    region=s.region, language=languages[s.group_key or ""], incident=incident, schedule=schedule,
                    policy=scenario.policy, ignore_session_ref=s.ref)
                if reasons:
                    refused.append(f"the service's eligibility refuses facilitator {fid} on CP-SAT's {s.ref} "
                                   f"at {s.starts_at:%m-%d %H:%M} UTC: {', '.join(reasons)}")
    return refused


def explain(q: Quality) -> None:
    """Where plan_surge falls short: what the nearest optimum does differently, and why the planner could not.

    The reasons are the service's own (ineligibility_reasons) against the schedule plan_surge left.
    """
    if q.closest is None:
        return
    sc = q.scenario
    profiles = {p.id: p for p in sc.profiles}
    incidents = {i.ref: i for i in sc.incidents}
    mine = {s.ref: s for sessions in q.surge.plans.values() for s in sessions}
    exact = {s.ref: s for sessions in q.closest.values() for s in sessions}
    schedule = Schedule(sc.bookings)
    for s in mine.values():
        for fid in s.facilitator_ids:
            schedule.add(Booking(fid, s.ref, s.starts_at, s.ends_at, True))
    uses: dict[int, list[str]] = defaultdict(list)
    for s in sorted(mine.values(), key=lambda s: s.starts_at):
        for fid in s.facilitator_ids:
            uses[fid].append(f"{s.ref} {s.starts_at:%a %H:%M}Z")

    def team(s: PlannedSession) -> str:
        return " ".join(f"f{fid}{profiles[fid].kind[0]}" for fid in s.facilitator_ids)

    print(f"  seed {sc.seed}: plan_surge placed {len(mine)}, the nearest optimum {len(exact)}; it moves or restaffs: "
          + ("; ".join(f"{ref} {mine[ref].starts_at:%a %H:%M}Z {team(mine[ref])} -> {exact[ref].starts_at:%a %H:%M}Z "
                       f"{team(exact[ref])}" for ref in sorted(set(mine) & set(exact))
                       if (mine[ref].starts_at, mine[ref].facilitator_ids)
                       != (exact[ref].starts_at, exact[ref].facilitator_ids)) or "-"))
    print(f"  seed {sc.seed}: drops: " + ("; ".join(
        f"{ref} {mine[ref].starts_at:%a %H:%M}Z {team(mine[ref])}" for ref in sorted(set(mine) - set(exact))) or "-"))
    for ref in sorted(set(exact) - set(mine)):
        s = exact[ref]
        incident = incidents[ref.split("/")[0]]
        group = next(g for g in split_into_groups(incident.participants, sc.policy) if g.key == s.group_key)
        print(f"  seed {sc.seed}: adds: {ref} {s.starts_at:%a %H:%M}Z {s.mode} {team(s)} "
              f"(severity {incident.severity}, {incident.region}, {group.language}, {len(group.participants)} people)")
        for fid in s.facilitator_ids:
            p = profiles[fid]
            reasons = ineligibility_reasons(p, kind=s.kind, starts_at=s.starts_at, ends_at=s.ends_at,
                                            mode=s.mode, region=incident.region, language=group.language,
                                            incident=incident, schedule=schedule, policy=sc.policy)
            print(f"      f{fid} {p.kind} {'/'.join(sorted(p.languages))} {'/'.join(sorted(p.regions))}"
                  f"{' virtual_ok' if p.virtual_ok else ''}: {', '.join(reasons) or 'free'}"
                  f"; plan_surge gave them: {', '.join(uses[fid]) or 'nothing'}")


# -- cost ------------------------------------------------------------------------------------------

def measure_cost(n: int, repeats: int, seed: int = COST_SEED) -> dict[str, float]:
    """Best of `repeats`, wall and CPU ms per incident: one plan_surge call, and plan_incident incident by incident."""
    scenario = surge.build(replace(surge.COST, facilitators=n), seed)
    incidents, policy, now = scenario.incidents, scenario.policy, scenario.now
    times: dict[str, list[float]] = defaultdict(list)
    placed = problems = 0
    for _ in range(repeats):
        pool, schedule = FacilitatorPool(scenario.profiles), Schedule(scenario.bookings)
        wall, cpu = clock.perf_counter(), clock.process_time()
        plans = plan_surge(incidents, pool, schedule, policy, now=now)
        times["surge"].append((clock.perf_counter() - wall) * 1000 / len(incidents))
        times["surge_cpu"].append((clock.process_time() - cpu) * 1000 / len(incidents))
        placed = sum(len(p.sessions) for p in plans.values())
        problems = sum(len(p.problems) for p in plans.values())
        pool, schedule = FacilitatorPool(scenario.profiles), Schedule(scenario.bookings)
        wall, cpu = clock.perf_counter(), clock.process_time()
        for incident in incidents:
            plan_incident(incident, pool, schedule, policy, now=now)
        times["single"].append((clock.perf_counter() - wall) * 1000 / len(incidents))
        times["single_cpu"].append((clock.process_time() - cpu) * 1000 / len(incidents))
    return {**{key: min(values) for key, values in times.items()}, "placed": placed, "problems": problems}


# -- report ----------------------------------------------------------------------------------------

def _ratio(got: int, of: int) -> str:
    return f"{got} of {of} = {got / of:.3f}" if of else f"{got} of 0"


def _optimum(solved: Solved) -> int:
    # Against the bound where a solve timed out: a ratio can then only be understated.
    return solved.placed if solved.status == "OPTIMAL" else solved.bound


def print_quality(results: list[Quality]) -> tuple[int, int, bool, int]:
    """The per-seed tables and their details; returns (plan_batch's weighted people as reports arrive, the optimum
    or bound, all optimal, violations)."""
    in_order = any(q.in_order is not None for q in results)
    for title, runs, solved_of in (
            ("a surge as the service plans it (its reports together, batches as the planner process forms them)",
             lambda q: (q.service_greedy, q.service), lambda q: q.service_solved),
            ("reports 10 minutes after their incident (one batch per arrival)", lambda q: (q.greedy, q.batch),
             lambda q: q.solved),
            ("the whole surge at once, at now (a backlog)", lambda q: (q.surge, q.burst), lambda q: q.burst_solved)):
        print(f"{title}: weighted people (sessions)")
        print(f"{'seed':>4} {'now (UTC)':>16} {'due':>4} {'batches':>7} {'plan_surge':>11} {'plan_batch':>11} "
              f"{'CP-SAT':>10} {'bound':>6} {'status':>9} {'vars':>6} {'solve s':>8} {'det s':>6} {'agree':>11}"
              + (f" {'in order':>9}" if in_order and solved_of(results[0]) is results[0].burst_solved else ""))
        for q in results:
            greedy, batch = runs(q)
            s = solved_of(q)
            order = ""
            if q.in_order is not None and s is q.burst_solved:
                order = f" {q.in_order[0]:>8}{'' if q.in_order[1] else '?'}"
            cells = [f"{q.people(r.plans)} ({Quality.count(r.plans)})" for r in (greedy, batch)]
            print(f"{q.scenario.seed:>4} {q.scenario.now:%Y-%m-%d %H:%M} {q.demand:>4} {batch.batches:>7} "
                  f"{cells[0]:>11} {cells[1]:>11} {f'{s.placed} ({Quality.count(s.plans)})':>10} {s.bound:>6} "
                  f"{s.status:>9} {s.variables:>6} {s.seconds:>8.1f} {s.work:>6.1f} {s.agree:>11}{order}")
    print("  due: group sessions the surge calls for; plan_surge / plan_batch: each batch planned by the greedy\n"
          "  planner / by the service's batch planner (greedy, then CP-SAT when a session is left out); CP-SAT: the\n"
          "  bench's exact model, maximising weighted people, every incident planned at the earliest at its batch's\n"
          "  time (first table), when reported (second) or at now (third); agree: plan_surge's / plan_batch's plans\n"
          "  are feasible points of the model / the service's eligibility rule accepts CP-SAT's plan"
          + ("; in order: the most sessions\n  placed without giving one up for sessions later in plan_surge's order "
             "(? = a step timed out)" if in_order else ""))
    for q in results:
        seed = q.scenario.seed
        print(f"  seed {seed}: the service's batches (incidents each): {' '.join(map(str, q.service.sizes))}; "
              f"planner busy {q.service.busy:.2f} s; last batch planned at now + "
              f"{(max(q.service.planned_at.values()) - q.scenario.now).total_seconds():.2f} s")
        for label, run in (("as the service plans a surge", q.service), ("10 minutes apart", q.batch),
                           ("at once", q.burst)):
            # Batches the greedy plan served, or where nothing left out fits even alone, are not solved.
            solves = [st for st in run.stats if st.solver not in ("skipped", "hopeless")]
            hopeless = sum(st.solver == "hopeless" for st in run.stats)
            print(f"  seed {seed}: plan_batch {label}: {run.batches} batch(es), {run.ms:.0f} ms in all; solver on "
                  f"{len(solves)} (kept {sum(st.kept == 'solver' for st in solves)}), longest "
                  f"{max((st.seconds for st in solves), default=0):.2f} s / "
                  f"{max((st.work for st in solves), default=0):.2f} det s; {hopeless} with nothing left out that fits"
                  + "".join(f", {st.solver}" for st in solves if st.solver not in ("OPTIMAL", "FEASIBLE")))
        print(f"  seed {seed}: plan_batch problems as the service plans a surge: "
              + ", ".join(f"{k} x{v}" for k, v in sorted(q.service.problems.items())))
        for solved in (q.service_solved, q.solved, q.burst_solved):
            for d in solved.disagreements:
                print(f"  seed {seed}: model and planner disagree: {d}")
        for who, found in q.violations.items():
            for v in found:
                print(f"  seed {seed} {who} VIOLATION {v}")
    optimal = all(q.service_solved.status == "OPTIMAL" for q in results)
    optimum = sum(_optimum(q.service_solved) for q in results)
    apart_optimum = sum(_optimum(q.solved) for q in results)
    burst_optimum = sum(_optimum(q.burst_solved) for q in results)
    print(f"a surge as the service plans it, plan_surge on the same batches: "
          f"{_ratio(sum(q.people(q.service_greedy.plans) for q in results), optimum)}")
    print(f"reports 10 minutes apart: plan_surge {_ratio(sum(q.people(q.greedy.plans) for q in results), apart_optimum)}"
          f", plan_batch {_ratio(sum(q.people(q.batch.plans) for q in results), apart_optimum)}")
    print(f"the whole surge at once: plan_surge {_ratio(sum(q.people(q.surge.plans) for q in results), burst_optimum)}, "
          f"plan_batch {_ratio(sum(q.people(q.burst.plans) for q in results), burst_optimum)}")
    print("sessions (plan_surge / plan_batch / CP-SAT): as the service plans a surge "
          + " / ".join(str(sum(Quality.count(plans(q)) for q in results)) for plans in (
              lambda q: q.service_greedy.plans, lambda q: q.service.plans, lambda q: q.service_solved.plans))
          + "; 10 minutes apart " + " / ".join(str(sum(Quality.count(plans(q)) for q in results)) for plans in (
              lambda q: q.greedy.plans, lambda q: q.batch.plans, lambda q: q.solved.plans))
          + "; at once " + " / ".join(str(sum(Quality.count(plans(q)) for q in results)) for plans in (
              lambda q: q.surge.plans, lambda q: q.burst.plans, lambda q: q.burst_solved.plans)))
    violations = sum(len(v) for q in results for v in q.violations.values())
    return sum(q.people(q.service.plans) for q in results), optimum, optimal, violations


def print_cost(repeats: int) -> dict[int, dict[str, float]]:
    """The cost table at each pool size, with the 10k/1k ratios."""
    results = {}
    print(f"cost: {surge.COST.incidents} incidents, regions r1..r{surge.COST.regions}, languages en/fr, "
          f"seed {COST_SEED}; ms per incident, best of {repeats}, wall / CPU of this process")
    print(f"{'facilitators':>12} {'plan_surge wall':>16} {'CPU':>7} {'plan_incident wall':>19} {'CPU':>7} "
          f"{'sessions':>9} {'problems':>9}")
    for n in COST_SIZES:
        r = results[n] = measure_cost(n, repeats)
        print(f"{n:>12,} {r['surge']:>16.2f} {r['surge_cpu']:>7.2f} {r['single']:>19.2f} {r['single_cpu']:>7.2f} "
              f"{r['placed']:>9} {r['problems']:>9}", flush=True)
    for key, label in (("surge", "plan_surge"), ("single", "plan_incident")):
        wall = results[10_000][key] / results[1_000][key]
        cpu = results[10_000][f"{key}_cpu"] / results[1_000][f"{key}_cpu"]
        print(f"ratio 10k/1k ({label}): wall {wall:.2f}, CPU {cpu:.2f}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the quality and cost measurements and print the table and the closing lines; 1 when a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.planner", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two seeds, a short solver limit, one cost repeat")
    parser.add_argument("--only", choices=("quality", "cost"), help="run one half only")
    parser.add_argument("--seeds", type=int, nargs="+", help="quality seeds (even seeds: the DST week)")
    parser.add_argument("--time-limit", type=float,
                        help=f"CP-SAT deterministic seconds per seed (default {TIME_LIMIT:.0f}; --quick 5)")
    parser.add_argument("--workers", type=int, default=1, help="CP-SAT search workers (default 1)")
    parser.add_argument("--batch-limit", type=float, default=SOLVE_SECONDS,
                        help=f"plan_batch's deterministic seconds per batch (default {SOLVE_SECONDS:g}, the planner "
                             f"process's SOLVE_SECONDS)")
    parser.add_argument("--rate", type=float, default=SURGE_RATE,
                        help=f"reports a second reaching intake in a surge (default {SURGE_RATE:g}, DESIGN's burst)")
    parser.add_argument("--durations", choices=("work", "wall"), default="work",
                        help="how long a simulated batch takes: plan_batch's deterministic solver seconds "
                             "(default: reproducible batches) or its measured wall time")
    parser.add_argument("--explain", action="store_true",
                        help="per seed short of the optimum: the nearest optimal plan's changes, and why")
    parser.add_argument("--in-order", action="store_true",
                        help="also the best count that keeps plan_surge's priority order (slow: one solve a session)")
    args = parser.parse_args(argv)
    seeds = args.seeds or (QUICK_SEEDS if args.quick else QUALITY_SEEDS)
    # Even seeds plan a surge whose windows run across the end of daylight saving (and a weekend).
    runs = [(seed, surge.FALL_BACK if seed % 2 == 0 else surge.JUNE) for seed in seeds]
    time_limit = args.time_limit or (5.0 if args.quick else TIME_LIMIT)
    repeats = 1 if args.quick else COST_REPEATS
    started = clock.perf_counter()
    print(f"load average before: {load_average()}", flush=True)
    missed = False
    lines = []
    if args.only != "cost":
        print(f"quality: surge shape {surge.QUALITY.facilitators} facilitators, {surge.QUALITY.incidents} incidents, "
              f"{surge.QUALITY.regions} regions; CP-SAT limit {time_limit:.0f} deterministic s, {args.workers} "
              f"worker(s)", flush=True)
        print(f"a surge as the service plans it: reports at {args.rate:g}/s from now, the planner gathering "
              f"{GATHER_SECONDS:g} s after a wake-up or from the start of a batch during which reports came (again "
              f"while they come at {SURGE_REPORTS} or more a gather, up to "
              f"{SURGE_HOLD_SECONDS:g} s), plan_batch limited to {args.batch_limit:g} deterministic s, "
              f"a batch lasting its solver's {'deterministic seconds' if args.durations == 'work' else 'wall time'}",
              flush=True)
        results = [measure_quality(seed, now, time_limit, args.workers, args.batch_limit, args.in_order,
                                   args.explain, rate=args.rate, durations=args.durations) for seed, now in runs]
        placed, optimum, optimal, violations = print_quality(results)
        if args.explain:
            for q in results:
                explain(q)
        quality = placed / optimum if optimum else 1.0
        of = "optimum" if optimal else "bound (not proven optimal)"
        missed |= quality < 0.98 or violations > 0
    if args.only != "quality":
        cost = print_cost(repeats)
        # CPU time of the intake path: on a shared machine the wall clock also counts other processes' turns.
        at_1k = cost[1_000]["single_cpu"]
        ratio = cost[10_000]["single_cpu"] / at_1k
        lines.append(f"cost: ms/incident at 1,000 = {at_1k:.2f} (target < 10), 10k/1k = {ratio:.2f} (target <= 3)")
        missed |= at_1k >= 10 or ratio > 3
    if args.only != "cost":
        lines.append(f"quality: planner (plan_batch on a surge's batches as the service forms them) debriefed weighted "
                     f"people {placed} of CP-SAT "
                     f"{of} {optimum} = {quality:.3f} (target >= 0.98)")
        lines.append(f"violations: {violations} (target 0)")
    print(f"elapsed {clock.perf_counter() - started:.0f} s; load average after: {load_average()}")
    for line in lines:
        print(line)
    # The planner is pure code: the benchmark must not have pulled the web stack in.
    assert "flask" not in sys.modules and "sqlalchemy" not in sys.modules
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
