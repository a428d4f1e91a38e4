"""plan_batch: the greedy plan, bettered by CP-SAT where greedy leaves sessions out; notice and declines."""

import subprocess
import sys
from datetime import timedelta

from bench import surge
from bench.plan_checker import check_plans
from service.planning import (
    Booking, FacilitatorPool, IncidentFacts, Participant, PlannedSession, Schedule, find_replacement, plan_batch,
    plan_incident, plan_surge, split_into_groups,
)
from service.planning.batch import BatchStats
from tests.unit.planning.builders import POLICY, at, facilitator

OCCURRED = at(2026, 6, 15, 10)   # a Monday
NOW = OCCURRED + timedelta(hours=1)
LIMIT = 2.0  # deterministic seconds: every test batch here is solved to optimality well within it


def people(prefix: str, n: int = 4, email: str | None = None) -> tuple[Participant, ...]:
    found = tuple(Participant(f"{prefix}{i}", f"{prefix}{i}@police.example", "officer", "patrol", "direct", "en")
                  for i in range(n))
    if email is not None:
        found += (Participant(f"{prefix}x", email, "officer", "patrol", "direct", "en"),)
    return found


def incident(ref: str, occurred_at=OCCURRED, participants=None, severity: int = 3) -> IncidentFacts:
    return IncidentFacts(ref=ref, agency_id=7, severity=severity, occurred_at=occurred_at, region="r1",
                         timezone="America/Toronto", participants=participants or people(ref))


def group_booking(fid: int, ref: str, start) -> Booking:
    return Booking(fid, ref, start, start + timedelta(minutes=150), True)


# A surge where earliest window close first loses a session. Incident "a" closes first and goes
# first; its least-loaded clinician is 1, whose rolling week has room for one more group session.
# Clinician 2 is more loaded, so greedy gives "a" clinician 1, and "b" (whose people include
# clinician 2's e-mail: a conflict of interest) is left with no clinician. Clinician 2 on "a" and
# clinician 1 on "b" debriefs both.
ROSTER = [facilitator(1, "clinician"), facilitator(2, "clinician"), facilitator(3), facilitator(4)]
EXISTING = ([group_booking(1, f"week-{d}", at(2026, 6, d, 9)) for d in (13, 14)]
            + [group_booking(2, f"old-{d}", at(2026, 5, d, 9)) for d in (25, 26, 27)])
SURGE = (incident("a"), incident("b", OCCURRED + timedelta(hours=2), people("b", email="f2@cism.example")))


def planned(plans) -> dict[str, list[PlannedSession]]:
    return {ref: list(plan.sessions) for ref, plan in plans.items()}


def violations(plans, incidents=SURGE, bookings=EXISTING, roster=ROSTER, now=NOW, declined=None):
    return check_plans(profiles=roster, bookings=bookings, incidents=incidents, plans=planned(plans), policy=POLICY,
                       now=now, declined=declined)


def count(plans) -> int:
    return sum(len(plan.sessions) for plan in plans.values())


def test_greedy_order_leaves_a_session_out_that_the_batch_places():
    greedy = plan_surge(SURGE, FacilitatorPool(ROSTER), Schedule(EXISTING), POLICY, now=NOW)
    assert count(greedy) == 1
    assert greedy["a"].sessions[0].facilitator_ids[0] == 1
    assert greedy["b"].problems[0].reasons == ("no_clinician_available",)
    stats: list[BatchStats] = []
    schedule = Schedule(EXISTING)
    plans = plan_batch(SURGE, FacilitatorPool(ROSTER), schedule, POLICY, now=NOW, time_limit=LIMIT, stats=stats)
    assert count(plans) == 2 and not any(plan.problems for plan in plans.values())
    assert plans["a"].sessions[0].facilitator_ids[0] == 2
    assert plans["b"].sessions[0].facilitator_ids[0] == 1
    assert (stats[0].kept, stats[0].solver) == ("solver", "OPTIMAL")
    assert stats[0].score > stats[0].greedy_score
    assert violations(plans) == []
    # The chosen sessions, and only they, are booked, as plan_surge books them.
    booked = sorted((b.facilitator_id, b.session_ref, b.start, b.group) for b in schedule
                    if b.session_ref.startswith(("a/", "b/")))
    assert booked == sorted((fid, s.ref, s.starts_at, True) for plan in plans.values() for s in plan.sessions
                            for fid in s.facilitator_ids)


def test_sessions_from_the_solver_are_what_plan_surge_would_make():
    plans = plan_batch(SURGE, FacilitatorPool(ROSTER), Schedule(EXISTING), POLICY, now=NOW, time_limit=LIMIT)
    session = plans["b"].sessions[0]
    alone = plan_incident(SURGE[1], FacilitatorPool(ROSTER), Schedule(EXISTING), POLICY, now=NOW).sessions[0]
    assert (session.kind, session.group_key, session.mode, session.region, session.ref) == (
        alone.kind, alone.group_key, alone.mode, alone.region, alone.ref)
    assert [a.phase for a in session.agenda] == [a.phase for a in alone.agenda]
    assert session.agenda[0].starts_at == session.starts_at
    assert session.ends_at - session.starts_at == timedelta(minutes=150)


def test_same_input_same_plan():
    first = plan_batch(SURGE, FacilitatorPool(ROSTER), Schedule(EXISTING), POLICY, now=NOW, time_limit=LIMIT)
    again = plan_batch(SURGE, FacilitatorPool(ROSTER), Schedule(EXISTING), POLICY, now=NOW, time_limit=LIMIT)
    assert first == again


def test_a_batch_the_greedy_plan_serves_skips_the_solver():
    roster = [facilitator(1, "clinician"), facilitator(2)]
    stats: list[BatchStats] = []
    facts = (incident("a"),)
    schedule = Schedule()
    plans = plan_batch(facts, FacilitatorPool(roster), schedule, POLICY, now=NOW, stats=stats)
    assert plans == plan_surge(facts, FacilitatorPool(roster), Schedule(), POLICY, now=NOW)
    assert stats[0].solver == "skipped" and len(schedule) == 2


def test_nothing_better_keeps_the_greedy_plan_and_its_reasons():
    roster = [facilitator(1, "clinician"), facilitator(2), facilitator(3)]
    facts = (incident("a"), incident("b", participants=people("b", email="f1@cism.example")))
    stats: list[BatchStats] = []
    schedule = Schedule()
    plans = plan_batch(facts, FacilitatorPool(roster), schedule, POLICY, now=NOW, time_limit=LIMIT, stats=stats)
    greedy = plan_surge(facts, FacilitatorPool(roster), Schedule(), POLICY, now=NOW)
    assert plans == greedy and stats[0].kept == "greedy"
    assert plans["b"].problems[0].reasons == ("no_clinician_available",)
    assert len(schedule) == 2


def test_a_session_that_fits_in_no_plan_keeps_the_greedy_plan_without_a_solve():
    roster = [facilitator(1, "clinician"), facilitator(2)]
    french = tuple(Participant(f"fr{i}", f"fr{i}@police.example", "officer", "patrol", "direct", "fr") for i in range(3))
    facts = (incident("a"), incident("b", participants=french))
    stats: list[BatchStats] = []
    schedule = Schedule()
    plans = plan_batch(facts, FacilitatorPool(roster), schedule, POLICY, now=NOW, time_limit=LIMIT, stats=stats)
    # Nobody speaks French: no arrangement of the batch can place "b", so the solver is not asked.
    assert plans == plan_surge(facts, FacilitatorPool(roster), Schedule(), POLICY, now=NOW)
    assert (stats[0].solver, stats[0].kept) == ("hopeless", "greedy")
    assert plans["b"].problems[0].reasons == ("language_not_covered",) and len(schedule) == 2


def test_never_worse_than_greedy_and_no_violation_on_a_seeded_surge():
    scenario = surge.build(surge.QUALITY, 6, surge.FALL_BACK)
    raw = dict(profiles=scenario.profiles, bookings=scenario.bookings, incidents=scenario.incidents,
               policy=scenario.policy, now=scenario.now)
    greedy = plan_surge(scenario.incidents, FacilitatorPool(scenario.profiles), Schedule(scenario.bookings),
                        scenario.policy, now=scenario.now)
    plans = plan_batch(scenario.incidents, FacilitatorPool(scenario.profiles), Schedule(scenario.bookings),
                       scenario.policy, now=scenario.now, time_limit=0.5)
    assert count(plans) >= count(greedy)
    assert check_plans(plans=planned(plans), **raw) == []
    for facts in scenario.incidents:
        plan = plans[facts.ref]
        kinds = 2 if facts.severity >= scenario.policy.defusing_min_severity else 1
        # Every group session is either planned or explained.
        assert len(plan.sessions) + len(plan.problems) == kinds * len(split_into_groups(facts.participants,
                                                                                       scenario.policy))
        assert all(p.reasons for p in plan.problems)


def test_the_solver_is_imported_only_when_a_batch_needs_it():
    code = ("import sys, service.planning, service.planning.batch; "
            "assert 'ortools' not in sys.modules, 'ortools imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- declines and notice --------------------------------------------------------------------------

def test_a_facilitator_who_declined_is_never_put_back_on_the_session():
    declined = {"b/direct-en/debriefing": {1}}
    plans = plan_batch(SURGE, FacilitatorPool(ROSTER), Schedule(EXISTING), POLICY, now=NOW, time_limit=LIMIT,
                       exclude=declined)
    assert plans["b"].sessions == ()
    assert plans["b"].problems[0].reasons == ("no_clinician_available",)
    assert violations(plans, declined=declined) == []
    surge_plans = plan_surge(SURGE, FacilitatorPool(ROSTER), Schedule(EXISTING), POLICY, now=NOW,
                             exclude={"a/direct-en/debriefing": {1, 3}})
    assert surge_plans["a"].sessions[0].facilitator_ids == (2, 4)


def test_plan_incident_honours_declines():
    roster = [facilitator(1, "clinician"), facilitator(2, "clinician"), facilitator(3)]
    plan = plan_incident(incident("a"), FacilitatorPool(roster), Schedule(), POLICY, now=NOW,
                         exclude={"a/direct-en/debriefing": [1]})
    assert plan.sessions[0].facilitator_ids == (2, 3)


def test_a_replacement_skips_who_declined():
    roster = [facilitator(i, "clinician") for i in (1, 2, 3)] + [facilitator(4)]
    facts = incident("a")
    pool, schedule = FacilitatorPool(roster), Schedule()
    session = plan_incident(facts, pool, schedule, POLICY, now=NOW).sessions[0]
    assert session.facilitator_ids == (1, 4)
    group = split_into_groups(facts.participants, POLICY)[0]
    new = find_replacement(session, leaving_facilitator_id=1, incident=facts, group=group, pool=pool,
                           schedule=schedule, policy=POLICY, now=NOW, exclude={session.ref: {2}})
    assert new is not None and new.facilitator_ids == (3, 4) and new.starts_at == session.starts_at


def test_the_batch_gives_the_notice():
    now = at(2026, 6, 16, 10, 10)   # inside both debriefing windows
    plans = plan_batch(SURGE, FacilitatorPool(ROSTER), Schedule(EXISTING), POLICY, now=now, time_limit=LIMIT)
    starts = [s.starts_at for plan in plans.values() for s in plan.sessions]
    assert starts and min(starts) >= now + timedelta(minutes=60)
    assert violations(plans, now=now) == []
