"""plan_incident, plan_surge, find_replacement and plan_individual on small hand-made pools."""

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from service.planning import (
    Booking, Certification, FacilitatorPool, IncidentFacts, Participant, PlannedSession, Problem, Schedule,
    WeeklyWindow, find_replacement, individual_starts, plan_incident, plan_individual, plan_surge, split_into_groups,
)
from service.planning.types import Interval
from tests.unit.planning.builders import POLICY, TORONTO, UTC, at, facilitator


def local(instant: datetime) -> datetime:
    return instant.astimezone(TORONTO).replace(tzinfo=None)


def people(n: int, exposure: str = "direct", language: str = "en", prefix: str = "p") -> tuple[Participant, ...]:
    return tuple(Participant(f"{prefix}{i}", f"{prefix}{i}@police.example", "officer", "patrol", exposure, language)
                 for i in range(n))


OCCURRED = at(2026, 6, 15, 10)   # a Monday
NOW = OCCURRED + timedelta(hours=1)


def incident(participants=None, *, ref="inc-1", severity=3, occurred_at=OCCURRED, region="r1",
             agency_id=7) -> IncidentFacts:
    return IncidentFacts(ref=ref, agency_id=agency_id, severity=severity, occurred_at=occurred_at, region=region,
                         timezone="America/Toronto",
                         participants=people(4) if participants is None else tuple(participants))


def plan(profiles, facts=None, *, schedule=None, now=NOW, policy=POLICY):
    schedule = Schedule() if schedule is None else schedule
    return plan_incident(facts or incident(), FacilitatorPool(profiles), schedule, policy, now=now), schedule


BASIC = [facilitator(1, "clinician"), facilitator(2), facilitator(3)]


# -- time -----------------------------------------------------------------------------------------

def test_debriefing_at_the_earliest_feasible_start_with_agenda_and_bookings():
    result, schedule = plan(BASIC)
    assert result.problems == ()
    (session,) = result.sessions
    assert (session.kind, session.group_key, session.mode, session.region) == ("debriefing", "direct-en", "in_person", "r1")
    assert local(session.starts_at) == datetime(2026, 6, 16, 10, 0)
    assert session.ends_at - session.starts_at == timedelta(minutes=150)
    assert session.facilitator_ids == (1, 2)
    assert [a.phase for a in session.agenda][0] == "introduction"
    assert session.agenda[-1].starts_at == session.starts_at + timedelta(minutes=130)
    assert session.ref == "inc-1/direct-en/debriefing"
    assert sorted((b.facilitator_id, b.session_ref, b.group) for b in schedule) == [
        (1, session.ref, True), (2, session.ref, True)]


def test_start_rounds_now_plus_notice_up_to_the_local_grid():
    result, _ = plan(BASIC, now=at(2026, 6, 16, 10, 10))
    assert local(result.sessions[0].starts_at) == datetime(2026, 6, 16, 11, 30)


def test_a_group_session_gives_the_policys_notice():
    result, _ = plan(BASIC, now=at(2026, 6, 16, 10, 0))
    assert local(result.sessions[0].starts_at) == datetime(2026, 6, 16, 11, 0)
    result, _ = plan(BASIC, now=at(2026, 6, 16, 10, 0), policy=POLICY.with_overrides({"notice_minutes": 0}))
    assert local(result.sessions[0].starts_at) == datetime(2026, 6, 16, 10, 0)


def test_latest_start_lets_the_session_end_by_21():
    result, _ = plan(BASIC, incident(occurred_at=at(2026, 6, 15, 18, 40)), now=at(2026, 6, 15, 20))
    assert local(result.sessions[0].starts_at) == datetime(2026, 6, 17, 8, 0)
    result, _ = plan(BASIC, incident(occurred_at=at(2026, 6, 15, 18, 20)), now=at(2026, 6, 15, 20))
    assert local(result.sessions[0].starts_at) == datetime(2026, 6, 16, 18, 30)


def test_availability_decides_the_start():
    profiles = [facilitator(1, "clinician"), facilitator(2, weekly=(WeeklyWindow(2, time(13), time(18)),))]
    result, _ = plan(profiles)
    assert local(result.sessions[0].starts_at) == datetime(2026, 6, 17, 14, 0)  # Wed, 13:00 + buffer


def test_dst_week_grid_and_availability():
    # Spring forward on Sunday March 8, 2026: the Friday-evening incident's window runs across it.
    occurred = at(2026, 3, 6, 20)
    profiles = [facilitator(1, "clinician", weekly=(WeeklyWindow(6, time(9), time(17)),)),
                facilitator(2, weekly=(WeeklyWindow(6, time(9), time(17)),))]
    result, _ = plan(profiles, incident(occurred_at=occurred), now=occurred + timedelta(hours=1))
    (session,) = result.sessions
    assert local(session.starts_at) == datetime(2026, 3, 8, 10, 0)
    assert session.starts_at == datetime(2026, 3, 8, 14, 0, tzinfo=UTC)  # EDT already


def test_fall_back_week():
    occurred = at(2026, 10, 30, 20)  # Friday; Sunday Nov 1 falls back
    profiles = [facilitator(1, "clinician", weekly=(WeeklyWindow(6, time(7), time(12)),)),
                facilitator(2, weekly=(WeeklyWindow(6, time(7), time(12)),))]
    result, _ = plan(profiles, incident(occurred_at=occurred), now=occurred + timedelta(hours=1))
    (session,) = result.sessions
    assert local(session.starts_at) == datetime(2026, 11, 1, 8, 0)
    assert session.starts_at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # EST


def test_late_report_with_one_slot_left():
    occurred = at(2026, 6, 15, 10, 30)   # closes Thursday 10:30
    result, _ = plan(BASIC, incident(occurred_at=occurred), now=at(2026, 6, 18, 7, 0))
    (session,) = result.sessions
    assert local(session.starts_at) == datetime(2026, 6, 18, 8, 0)
    assert session.ends_at == occurred + timedelta(hours=72)


def test_window_closed():
    result, schedule = plan(BASIC, now=at(2026, 6, 18, 8, 0))   # 08:00 + 150 > Thursday 10:00
    assert result.sessions == ()
    assert result.problems == (Problem("direct-en", "debriefing", ("window_closed",)),)
    assert result.needs_attention and len(schedule) == 0


# -- team ---------------------------------------------------------------------------------------

def test_team_size_follows_the_group_size():
    profiles = [facilitator(1, "clinician"), facilitator(2, "clinician")] + [facilitator(i) for i in range(3, 8)]
    result, _ = plan(profiles, incident(people(19)))
    (session,) = result.sessions
    assert session.facilitator_ids == (1, 3, 4, 5)  # one clinician is enough; peers fill the rest by id
    profiles = [facilitator(1, "clinician"), facilitator(2, "clinician"), facilitator(3)]
    result, _ = plan(profiles, incident(people(19)))
    assert result.problems[0].reasons == ("not_enough_peers",)
    result, _ = plan(profiles + [facilitator(4, "clinician")], incident(people(19)))
    assert result.sessions[0].facilitator_ids == (1, 2, 3, 4)  # extra clinicians stand in for missing peers


def test_clinician_and_peer_are_both_required():
    result, _ = plan([facilitator(2), facilitator(3)])
    assert result.problems == (Problem("direct-en", "debriefing", ("no_clinician_available",)),)
    result, _ = plan([facilitator(1, "clinician"), facilitator(2, "clinician")])
    assert result.problems[0].reasons == ("not_enough_peers",)


def test_least_loaded_first_then_id():
    profiles = [facilitator(1, "clinician"), facilitator(2), facilitator(3), facilitator(4)]
    past = Schedule([Booking(2, "old", NOW - timedelta(days=3), NOW - timedelta(days=3) + timedelta(hours=2), True),
                     Booking(4, "older", NOW - timedelta(days=40), NOW - timedelta(days=40) + timedelta(hours=2), True)])
    result, _ = plan(profiles, schedule=past)
    assert result.sessions[0].facilitator_ids == (1, 3)  # 2 has a session in the last 30 days; 4's is older


def test_peers_from_another_agency_are_preferred():
    profiles = [facilitator(1, "clinician"), facilitator(2, agency_id=7), facilitator(3, agency_id=8)]
    past = Schedule([Booking(3, "old", NOW - timedelta(days=3), NOW - timedelta(days=3) + timedelta(hours=2), True)])
    result, _ = plan(profiles, schedule=past)
    assert result.sessions[0].facilitator_ids == (1, 3)
    result, _ = plan(profiles[:2])
    assert result.sessions[0].facilitator_ids == (1, 2)  # still used when nobody else can


def test_in_person_preferred_at_the_same_start():
    profiles = [facilitator(1, "clinician", regions=frozenset({"r2"}), virtual_ok=True),
                facilitator(2, "clinician"), facilitator(3)]
    result, _ = plan(profiles)
    assert (result.sessions[0].mode, result.sessions[0].facilitator_ids) == ("in_person", (2, 3))


def test_virtual_when_it_is_earlier():
    profiles = [facilitator(1, "clinician", regions=frozenset({"r2"}), virtual_ok=True),
                facilitator(2, "clinician", weekly=(WeeklyWindow(3, time(8), time(20)),)), facilitator(3)]
    result, _ = plan(profiles)
    session = result.sessions[0]
    assert (session.mode, session.facilitator_ids, local(session.starts_at)) == (
        "virtual", (1, 3), datetime(2026, 6, 16, 10))


def test_buffer_and_caps_push_the_session():
    past = Schedule([Booking(2, "ind", at(2026, 6, 16, 9), at(2026, 6, 16, 10, 30), False)])
    result, _ = plan([facilitator(1, "clinician"), facilitator(2)], schedule=past)
    assert local(result.sessions[0].starts_at) == datetime(2026, 6, 16, 11, 30)
    capped = Schedule([Booking(2, "grp", at(2026, 6, 16, 9), at(2026, 6, 16, 10, 30), True)])
    result, _ = plan([facilitator(1, "clinician"), facilitator(2)], schedule=capped)
    assert local(result.sessions[0].starts_at) == datetime(2026, 6, 17, 8, 0)


def test_a_shared_pool_is_not_fooled_by_another_schedule():
    pool = FacilitatorPool([facilitator(1, "clinician"), facilitator(2)])
    tuesday = Schedule([Booking(2, "grp", at(2026, 6, 16, 7), at(2026, 6, 16, 8), True)])
    other_week = Schedule([Booking(2, "grp", at(2026, 5, 12, 7), at(2026, 5, 12, 8), True)])
    first = plan_incident(incident(), pool, tuesday, POLICY, now=NOW)
    second = plan_incident(incident(), pool, other_week, POLICY, now=NOW)
    assert local(first.sessions[0].starts_at) == datetime(2026, 6, 17, 8, 0)
    assert local(second.sessions[0].starts_at) == datetime(2026, 6, 16, 10, 0)


def test_conflicted_candidates_are_skipped_and_reported():
    facts = incident([Participant("E1", "one@police.example", "officer", "k9", "direct", "en")])
    profiles = [facilitator(1, "clinician", email="ONE@police.example"), facilitator(2, "clinician"),
                facilitator(3, agency_id=7, unit="k9"), facilitator(4)]
    result, _ = plan(profiles, facts)
    assert result.sessions[0].facilitator_ids == (2, 4)
    result, _ = plan([facilitator(1, "clinician", agency_id=7, personnel_id="E1"),
                      facilitator(3, agency_id=7, unit="k9")], facts)
    assert result.problems[0].reasons == ("all_candidates_conflicted",)


def test_language_and_region_not_covered():
    result, _ = plan(BASIC, incident(people(3, language="fr")))
    assert result.problems[0].reasons == ("language_not_covered",)
    result, _ = plan(BASIC, incident(region="r9"))
    assert result.problems[0].reasons == ("region_not_covered",)
    virtual = [replace(p, virtual_ok=True) for p in BASIC]
    result, _ = plan(virtual, incident(region="r9"))
    assert result.sessions[0].mode == "virtual"


def test_no_common_slot():
    profiles = [facilitator(1, "clinician", weekly=(WeeklyWindow(1, time(8), time(20)),)),
                facilitator(2, weekly=(WeeklyWindow(2, time(8), time(20)),))]
    result, _ = plan(profiles)
    assert result.problems[0].reasons == ("no_common_slot",)


def test_expired_certificate_mid_window():
    profiles = [facilitator(1, "clinician", certifications=(Certification("GCI", date(2026, 6, 16)),
                                                            Certification("LICENSE", date(2030, 1, 1))),
                            weekly=(WeeklyWindow(2, time(8), time(20)),)),
                facilitator(2)]
    result, _ = plan(profiles)  # available only Wednesday, certified until Tuesday
    assert result.problems[0].reasons == ("no_clinician_available",)


# -- groups and kinds -------------------------------------------------------------------------------

def test_defusing_only_from_severity_four():
    profiles = BASIC + [facilitator(4)]
    result, _ = plan(profiles, incident(severity=3))
    assert [s.kind for s in result.sessions] == ["debriefing"]
    result, _ = plan(profiles, incident(severity=4))
    defusing, debriefing = result.sessions
    assert defusing.kind == "defusing" and debriefing.kind == "debriefing"
    assert local(defusing.starts_at) == datetime(2026, 6, 15, 12, 0)  # an hour's notice after now (11:00)
    assert defusing.ends_at - defusing.starts_at == timedelta(minutes=45)
    assert defusing.facilitator_ids == (2, 3)   # two peers; the clinician is optional
    assert [a.phase for a in defusing.agenda] == ["introduction", "exploration", "information"]


def test_a_group_that_cannot_be_planned_does_not_stop_the_others():
    facts = incident(people(3) + people(2, language="fr", prefix="f") + people(2, exposure="witness", prefix="w"))
    tuesday_only = [facilitator(1, "clinician", weekly=(WeeklyWindow(1, time(8), time(20)),)), facilitator(2),
                    facilitator(3)]
    result, _ = plan(tuesday_only, facts)
    assert [s.group_key for s in result.sessions] == ["direct-en"]
    assert result.problems == (Problem("direct-fr", "debriefing", ("language_not_covered",)),
                               Problem("witness-en", "debriefing", ("no_clinician_available",)))


def test_groups_are_planned_most_exposed_first():
    facts = incident(people(3, exposure="support", prefix="s") + people(3, prefix="d"))
    profiles = [facilitator(1, "clinician"), facilitator(2), facilitator(3, "clinician"), facilitator(4)]
    result, _ = plan(profiles, facts)
    direct, support = result.sessions
    assert (direct.group_key, support.group_key) == ("direct-en", "support-en")
    assert direct.facilitator_ids == (1, 2) and support.facilitator_ids == (3, 4)


def test_same_input_same_plan():
    facts = incident(people(30) + people(5, exposure="witness", prefix="w"), severity=5)
    profiles = [facilitator(i, "clinician" if i % 3 == 0 else "peer") for i in range(1, 15)]
    assert plan(profiles, facts)[0] == plan(list(reversed(profiles)), facts)[0]


def test_only_replans_the_given_sessions():
    facts = incident(people(3) + people(3, exposure="witness", prefix="w"))
    profiles = BASIC + [facilitator(4, "clinician")]
    result = plan_incident(facts, FacilitatorPool(profiles), Schedule(), POLICY, now=NOW,
                           only=frozenset({("witness-en", "debriefing")}))
    assert [s.group_key for s in result.sessions] == ["witness-en"]


# -- surge -----------------------------------------------------------------------------------------

def test_surge_earliest_window_close_first_then_severity():
    one_clinician = [facilitator(1, "clinician", weekly=(WeeklyWindow(2, time(8), time(20)),)),
                     facilitator(2), facilitator(3)]
    early = incident(ref="early", occurred_at=at(2026, 6, 15, 9), severity=1)
    late = incident(ref="late", occurred_at=at(2026, 6, 15, 10), severity=5)
    plans = plan_surge([late, early], FacilitatorPool(one_clinician), Schedule(), POLICY, now=NOW)
    assert [s.kind for s in plans["early"].sessions] == ["debriefing"]
    assert plans["late"].sessions[0].kind == "defusing"
    assert plans["late"].problems == (Problem("direct-en", "debriefing", ("no_clinician_available",)),)
    a = incident(ref="a", severity=2)
    b = incident(ref="b", severity=3)
    plans = plan_surge([a, b], FacilitatorPool(one_clinician), Schedule(), POLICY, now=NOW)
    assert plans["b"].sessions and plans["a"].problems
    assert list(plans) == ["a", "b"]


def test_surge_sessions_of_one_pool_never_overlap():
    facts = [incident(people(8), ref=f"i{k}", occurred_at=OCCURRED + timedelta(minutes=7 * k)) for k in range(6)]
    profiles = [facilitator(i, "clinician" if i <= 3 else "peer") for i in range(1, 9)]
    schedule = Schedule()
    plans = plan_surge(facts, FacilitatorPool(profiles), schedule, POLICY, now=NOW)
    sessions = [s for p in plans.values() for s in p.sessions]
    assert len(sessions) + sum(len(p.problems) for p in plans.values()) == 6
    for fid in range(1, 9):
        mine = sorted((s.starts_at, s.ends_at) for s in sessions if fid in s.facilitator_ids)
        assert all(b[0] - a[1] >= timedelta(hours=1) for a, b in zip(mine, mine[1:]))
        assert len({local(s).date() for s, _ in mine}) == len(mine)


# -- replacement -------------------------------------------------------------------------------------

def _planned(profiles, facts=None):
    facts = facts or incident()
    pool, schedule = FacilitatorPool(profiles), Schedule()
    result = plan_incident(facts, pool, schedule, POLICY, now=NOW)
    group = split_into_groups(facts.participants, POLICY)[0]
    return result.sessions[0], facts, group, pool, schedule


def test_replacement_at_the_same_time_keeps_the_others():
    session, facts, group, pool, schedule = _planned(BASIC + [facilitator(4)])
    assert session.facilitator_ids == (1, 2)
    new = find_replacement(session, leaving_facilitator_id=2, incident=facts, group=group, pool=pool,
                           schedule=schedule, policy=POLICY, now=NOW)
    assert new == replace(session, facilitator_ids=(1, 3))
    assert sorted(b.facilitator_id for b in schedule.session(session.ref)) == [1, 3]


def test_replacement_moves_to_the_next_time_when_needed():
    late_peer = facilitator(3, weekly=(WeeklyWindow(2, time(8), time(20)),))
    session, facts, group, pool, schedule = _planned([facilitator(1, "clinician"), facilitator(2), late_peer])
    new = find_replacement(session, leaving_facilitator_id=2, incident=facts, group=group, pool=pool,
                           schedule=schedule, policy=POLICY, now=NOW)
    assert new is not None and new.facilitator_ids == (1, 3) and new.ref == session.ref
    assert local(new.starts_at) == datetime(2026, 6, 17, 9, 0)
    assert new.agenda[0].starts_at == new.starts_at
    assert [b.start for b in schedule.session(session.ref)] == [new.starts_at, new.starts_at]


def test_no_replacement_leaves_the_schedule_alone():
    session, facts, group, pool, schedule = _planned(BASIC[:2])
    assert find_replacement(session, leaving_facilitator_id=1, incident=facts, group=group, pool=pool,
                            schedule=schedule, policy=POLICY, now=NOW) is None
    assert sorted(b.facilitator_id for b in schedule.session(session.ref)) == [1, 2]


def test_replacement_checks_the_leaving_facilitator_is_on_the_session():
    session, facts, group, pool, schedule = _planned(BASIC)
    with pytest.raises(ValueError):
        find_replacement(session, leaving_facilitator_id=3, incident=facts, group=group, pool=pool,
                         schedule=schedule, policy=POLICY, now=NOW)


# -- individual sessions ------------------------------------------------------------------------------

def test_individual_session_with_the_chosen_kind_and_no_gci():
    licensed = facilitator(5, "clinician", certifications=(Certification("LICENSE", date(2030, 1, 1)),))
    capped = Schedule([Booking(5, "grp", at(2026, 6, 16, 8), at(2026, 6, 16, 9), True)])
    facts = incident()
    outcome = plan_individual(facts.participants[0], facilitator_kind="clinician", accepted_at=at(2026, 6, 16, 7),
                              incident=facts, pool=FacilitatorPool([facilitator(2), licensed]), schedule=capped,
                              policy=POLICY, now=at(2026, 6, 16, 7))
    assert isinstance(outcome, PlannedSession)
    assert (outcome.kind, outcome.group_key, outcome.facilitator_ids, outcome.agenda) == ("individual", None, (5,), ())
    assert local(outcome.starts_at) == datetime(2026, 6, 16, 10, 0)  # after the buffer, despite the daily cap
    assert outcome.ends_at - outcome.starts_at == timedelta(hours=1)
    assert [b.group for b in capped.session(outcome.ref)] == [False]


def test_individual_session_problem_and_window():
    facts = incident()
    outcome = plan_individual(facts.participants[0], facilitator_kind="clinician", accepted_at=NOW, incident=facts,
                              pool=FacilitatorPool([facilitator(2)]), schedule=Schedule(), policy=POLICY, now=NOW)
    assert outcome == Problem(None, "individual", ("no_clinician_available",))
    next_week = facilitator(2, weekly=(WeeklyWindow(0, time(8), time(20)),))  # Mondays only
    outcome = plan_individual(facts.participants[0], facilitator_kind="peer", accepted_at=NOW, incident=facts,
                              pool=FacilitatorPool([next_week]), schedule=Schedule(), policy=POLICY, now=NOW)
    assert isinstance(outcome, PlannedSession)
    assert local(outcome.starts_at) == datetime(2026, 6, 15, 11, 0)
    outcome = plan_individual(facts.participants[0], facilitator_kind="peer", accepted_at=NOW, incident=facts,
                              pool=FacilitatorPool([next_week]), schedule=Schedule(
                                  [Booking(2, "busy", at(2026, 6, 15, 8), at(2026, 6, 15, 20), False)]),
                              policy=POLICY, now=NOW)
    assert isinstance(outcome, PlannedSession)
    assert local(outcome.starts_at) == datetime(2026, 6, 22, 9, 0)   # a week later, within the 7 days


def test_earlier_loads_count_like_the_bookings_they_stand_for():
    since, until = NOW - timedelta(days=30), NOW - timedelta(days=8)
    bookings = [Booking(fid, f"s{fid}-{day}", NOW - timedelta(days=day), NOW - timedelta(days=day, hours=-2), True)
                for fid in (1, 2, 3) for day in range(1, 40, fid + 1)]
    whole = Schedule(bookings)
    recent = [b for b in bookings if b.start >= until]
    counts: dict[int, int] = {}
    for b in bookings:
        if since <= b.start < until:
            counts[b.facilitator_id] = counts.get(b.facilitator_id, 0) + 1
    split = Schedule(recent, earlier_loads=counts, earlier=(since, until))
    for fid in (1, 2, 3, 4):
        assert split.load(fid, NOW, POLICY) == whole.load(fid, NOW, POLICY)
    assert split.load(1, NOW, POLICY) > 0
    with pytest.raises(ValueError, match="another lookback"):
        split.load(1, NOW + timedelta(days=1), POLICY)
    with pytest.raises(ValueError, match="together"):
        Schedule(recent, earlier_loads=counts)


# -- the times an individual session can be offered at, and booking one of them ----------------------------


def _starts(profiles, *, schedule=None, kind="peer", now=NOW, **options):
    facts = incident()
    return individual_starts(facts.participants[0], facilitator_kind=kind, accepted_at=now, incident=facts,
                             pool=FacilitatorPool(profiles), schedule=schedule or Schedule(), policy=POLICY, now=now,
                             **options)


def _book_at(profiles, starts_at, *, schedule=None, kind="peer", now=NOW):
    facts = incident()
    return plan_individual(facts.participants[0], facilitator_kind=kind, accepted_at=now, incident=facts,
                           pool=FacilitatorPool(profiles), schedule=schedule if schedule is not None else Schedule(),
                           policy=POLICY, now=now, starts_at=starts_at)


def test_the_offered_times_are_the_earliest_start_of_each_day_and_the_first_is_what_booking_picks():
    weekdays = facilitator(2, weekly=tuple(WeeklyWindow(d, time(8), time(20)) for d in range(5)))
    starts = _starts([weekdays])
    # From Monday 11:00 (the first start after the buffer): Monday, then 09:00 on the next four weekdays.
    assert [local(s) for s in starts] == [datetime(2026, 6, 15, 11), *(datetime(2026, 6, d, 9) for d in (16, 17, 18, 19))]
    facts = incident()
    first = plan_individual(facts.participants[0], facilitator_kind="peer", accepted_at=NOW, incident=facts,
                            pool=FacilitatorPool([weekdays]), schedule=Schedule(), policy=POLICY, now=NOW)
    assert isinstance(first, PlannedSession) and first.starts_at == starts[0]
    assert len(_starts([weekdays], days=2, least=2)) == 2


def test_with_one_free_day_several_starts_of_that_day_are_offered():
    mondays = facilitator(2, weekly=(WeeklyWindow(0, time(8), time(20)),))
    busy_next_monday = Schedule([Booking(2, "busy", at(2026, 6, 22, 8), at(2026, 6, 22, 20), False)])
    starts = _starts([mondays], schedule=busy_next_monday)
    assert [local(s) for s in starts] == [datetime(2026, 6, 15, h, m) for h, m in ((11, 0), (11, 30), (12, 0))]


def test_offered_times_follow_the_same_rules_as_booking():
    assert _starts([facilitator(2)], kind="clinician") == []  # no clinician at all
    facts = incident()
    conflicted = facilitator(3, email=facts.participants[0].email)
    assert _starts([conflicted]) == []
    # A booking (with its buffer) removes the starts it overlaps.
    schedule = Schedule([Booking(2, "other", at(2026, 6, 15, 11), at(2026, 6, 15, 16), False)])
    starts = _starts([facilitator(2)], schedule=schedule)
    assert local(starts[0]) == datetime(2026, 6, 15, 17, 0)


def test_booking_a_chosen_start_books_that_start_or_nothing():
    pool = [facilitator(2), facilitator(3)]
    starts = _starts(pool)
    schedule = Schedule()
    booked = _book_at(pool, starts[1], schedule=schedule)
    assert isinstance(booked, PlannedSession) and booked.starts_at == starts[1]
    assert booked.ends_at - booked.starts_at == timedelta(hours=1)
    assert [b.start for b in schedule.session(booked.ref)] == [starts[1]]
    # Both facilitators are taken at that time: nothing is booked there, and no other time instead.
    both_busy = Schedule([Booking(fid, f"b{fid}", starts[1] - timedelta(hours=2), starts[1] + timedelta(hours=3), False)
                          for fid in (2, 3)])
    assert isinstance(_book_at(pool, starts[1], schedule=both_busy), Problem)
    # A start off the grid, or outside the 7 days, is never booked.
    assert _book_at(pool, starts[1] + timedelta(minutes=10)) == Problem(None, "individual", ("window_closed",))
    assert _book_at(pool, NOW + timedelta(days=8)) == Problem(None, "individual", ("window_closed",))


def test_an_individual_session_never_overlaps_the_participants_own_sessions():
    weekdays = facilitator(2, weekly=tuple(WeeklyWindow(d, time(8), time(20)) for d in range(5)))
    # Their group debriefing on Tuesday 09:00-11:30: no individual session from 08:00 to 12:30 that day.
    debriefing = Interval(at(2026, 6, 16, 9), at(2026, 6, 16, 11, 30))
    starts = _starts([weekdays], busy=[debriefing])
    tuesday = [local(s) for s in starts if local(s).date() == datetime(2026, 6, 16).date()]
    assert tuesday == [datetime(2026, 6, 16, 12, 30)]
    # Busy all Monday afternoon: the first available is then Tuesday's first clear start, not Monday 11:00.
    monday = Interval(at(2026, 6, 15, 11), at(2026, 6, 15, 23))
    facts = incident()
    first = plan_individual(facts.participants[0], facilitator_kind="peer", accepted_at=NOW, incident=facts,
                            pool=FacilitatorPool([weekdays]), schedule=Schedule(), policy=POLICY, now=NOW,
                            busy=[monday, debriefing])
    assert isinstance(first, PlannedSession) and local(first.starts_at) == datetime(2026, 6, 16, 12, 30)
    chosen = plan_individual(facts.participants[0], facilitator_kind="peer", accepted_at=NOW, incident=facts,
                             pool=FacilitatorPool([weekdays]), schedule=Schedule(), policy=POLICY, now=NOW,
                             starts_at=at(2026, 6, 16, 9), busy=[debriefing])
    assert isinstance(chosen, Problem)
