"""Policy, groups, windows, agendas, teams and the local-time grid."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.planning import (
    Interval, Participant, PlanningPolicy, WeeklyWindow, build_agenda, session_minutes, session_window, split_into_groups,
    team_requirements,
)
from service.planning.availability import FacilitatorCalendar
from service.planning.timegrid import grid_starts

from tests.unit.planning.builders import POLICY, TORONTO, UTC, at


def person(key: str, exposure: str = "direct", role: str = "officer", language: str = "en",
           unit: str | None = "u1") -> Participant:
    return Participant(key, f"{key}@agency.example", role, unit, exposure, language)


# -- policy -----------------------------------------------------------------------------------

def test_policy_defaults_are_the_design_numbers():
    assert session_minutes("debriefing", POLICY) == 150
    assert session_minutes("defusing", POLICY) == 45
    assert session_minutes("individual", POLICY) == 60
    assert [p for p, _ in POLICY.debriefing_phases] == [
        "introduction", "fact", "thought", "reaction", "symptom", "teaching", "re-entry"]
    assert (POLICY.debriefing_opens_after, POLICY.debriefing_closes_after) == (timedelta(hours=24), timedelta(hours=72))
    assert (POLICY.defusing_min_severity, POLICY.defusing_closes_after) == (4, timedelta(hours=8))
    assert (POLICY.buffer_minutes, POLICY.max_group_sessions_per_day, POLICY.max_group_sessions_per_7_days) == (60, 1, 3)
    assert (POLICY.earliest_start, POLICY.latest_start, POLICY.latest_end) == (time(8), time(20), time(21))


def test_with_overrides_returns_a_changed_copy():
    changed = POLICY.with_overrides({"buffer_minutes": 30, "debriefing_phases": [["a", 60], ["b", 30]]})
    assert changed.buffer_minutes == 30
    assert changed.debriefing_phases == (("a", 60), ("b", 30))
    assert POLICY.buffer_minutes == 60


@pytest.mark.parametrize("overrides, key", [
    ({"buffer_minute": 30}, "buffer_minute"),
    ({"buffer_minutes": "30"}, "buffer_minutes"),
    ({"buffer_minutes": True}, "buffer_minutes"),
    ({"buffer_minutes": -1}, "buffer_minutes"),
    ({"max_team": 0}, "max_team"),
    ({"debriefing_closes_after": 72}, "debriefing_closes_after"),
    ({"earliest_start": "08:00"}, "earliest_start"),
    ({"defusing_phases": ()}, "defusing_phases"),
    ({"defusing_phases": (("introduction", 0),)}, "defusing_phases"),
    ({"min_team": 5}, "max_team"),
    ({"debriefing_closes_after": timedelta(hours=12)}, "debriefing_closes_after"),
    ({"grid_minutes": 7}, "grid_minutes"),
])
def test_with_overrides_rejects_bad_values_naming_the_key(overrides, key):
    with pytest.raises(ValueError, match=key):
        POLICY.with_overrides(overrides)


# -- groups -----------------------------------------------------------------------------------

def test_groups_are_homogeneous_and_most_exposed_first():
    people = [
        person("s1", "support"), person("w1", "witness"), person("d1", "direct"),
        person("d2", "direct", role="supervisor"), person("d3", "direct", language="fr"),
        person("w2", "witness", role="command"), person("d4", "direct", role="dispatcher"),
    ]
    groups = split_into_groups(people, POLICY)
    assert [g.key for g in groups] == [
        "direct-en", "direct-fr", "direct-command-en", "witness-en", "witness-command-en", "support-en"]
    for g in groups:
        assert {p.exposure for p in g.participants} == {g.exposure}
        assert {p.language for p in g.participants} == {g.language}
        assert {p.role in ("supervisor", "command") for p in g.participants} == {g.command}
    assert [p.key for p in groups[0].participants] == ["d1", "d4"]


@pytest.mark.parametrize("count, sizes", [(20, [20]), (21, [11, 10]), (45, [15, 15, 15]), (41, [14, 14, 13])])
def test_large_sets_are_split_evenly(count, sizes):
    groups = split_into_groups([person(f"p{i:02}", "witness") for i in range(count)], POLICY)
    assert [len(g.participants) for g in groups] == sizes
    if len(sizes) > 1:
        assert [g.key for g in groups] == [f"witness-en-{i}" for i in range(1, len(sizes) + 1)]
    assert sorted(p.key for g in groups for p in g.participants) == [f"p{i:02}" for i in range(count)]


def test_split_keeps_units_together():
    people = [person(f"p{i:02}", unit=f"u{i % 2}") for i in range(40)]
    first, second = split_into_groups(people, POLICY)
    assert {p.unit for p in first.participants} == {"u0"} and {p.unit for p in second.participants} == {"u1"}


# -- windows, agendas, teams ------------------------------------------------------------------

def test_session_windows():
    occurred = at(2026, 6, 15, 10)
    assert session_window("debriefing", occurred, POLICY) == Interval(occurred + timedelta(hours=24),
                                                                      occurred + timedelta(hours=72))
    assert session_window("defusing", occurred, POLICY) == Interval(occurred, occurred + timedelta(hours=8))
    assert session_window("individual", occurred, POLICY) == Interval(occurred, occurred + timedelta(days=7))


def test_agenda_lists_every_phase_with_its_start():
    start = at(2026, 6, 16, 10)
    agenda = build_agenda("debriefing", start, POLICY)
    assert [(a.phase, a.minutes) for a in agenda] == list(POLICY.debriefing_phases)
    assert agenda[0].starts_at == start
    assert agenda[3].starts_at == start + timedelta(minutes=50)
    assert agenda[-1].starts_at + timedelta(minutes=agenda[-1].minutes) == start + timedelta(minutes=150)
    assert [a.phase for a in build_agenda("defusing", start, POLICY)] == ["introduction", "exploration", "information"]
    assert build_agenda("individual", start, POLICY) == ()


@pytest.mark.parametrize("n, size", [(1, 2), (6, 2), (12, 2), (13, 3), (18, 3), (19, 4), (20, 4), (60, 4)])
def test_team_size_is_clamped(n, size):
    debriefing = team_requirements("debriefing", n, POLICY)
    defusing = team_requirements("defusing", n, POLICY)
    assert (debriefing.size, debriefing.min_clinicians, debriefing.min_peers) == (size, 1, 1)
    assert (defusing.size, defusing.min_clinicians, defusing.min_peers) == (size, 0, 2)


# -- the local grid, DST included ---------------------------------------------------------------

def _local(starts):
    return [s.astimezone(TORONTO) for s in starts]


@pytest.mark.parametrize("day", [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9),
                                 date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)])
def test_grid_is_local_wall_clock_across_dst(day):
    window = Interval(datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=6),
                      datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=30))
    starts = [s for s in grid_starts(window, not_before=window.start, minutes=150, zone="America/Toronto",
                                     policy=POLICY) if s.astimezone(TORONTO).date() == day]
    local = _local(starts)
    assert [t.time() for t in local] == [time(h, m) for h in range(8, 19) for m in (0, 30)]  # 18:30 ends 21:00
    assert all((s + timedelta(minutes=150)).astimezone(TORONTO).time() <= time(21) for s in starts)


def test_grid_utc_instants_shift_with_dst():
    def first_start(day):
        window = Interval(datetime.combine(day, time(6), tzinfo=UTC), datetime.combine(day, time(23), tzinfo=UTC))
        return grid_starts(window, not_before=window.start, minutes=45, zone="America/Toronto", policy=POLICY)[0]
    assert first_start(date(2026, 3, 7)) == datetime(2026, 3, 7, 13, tzinfo=UTC)   # 08:00 EST
    assert first_start(date(2026, 3, 8)) == datetime(2026, 3, 8, 12, tzinfo=UTC)   # 08:00 EDT
    assert first_start(date(2026, 10, 31)) == datetime(2026, 10, 31, 12, tzinfo=UTC)
    assert first_start(date(2026, 11, 1)) == datetime(2026, 11, 1, 13, tzinfo=UTC)


def test_grid_skips_nonexistent_and_keeps_both_repeated_times():
    night = POLICY.with_overrides({"earliest_start": time(0), "latest_start": time(4), "latest_end": time(6)})

    def starts(day):
        window = Interval(at(day.year, day.month, day.day, 0), at(day.year, day.month, day.day, 6))
        return grid_starts(window, not_before=window.start, minutes=30, zone="America/Toronto", policy=night)

    spring = _local(starts(date(2026, 3, 8)))
    assert [t.strftime("%H:%M") for t in spring] == ["00:00", "00:30", "01:00", "01:30", "03:00", "03:30", "04:00"]
    fall = starts(date(2026, 11, 1))
    local = [t.strftime("%H:%M") for t in _local(fall)]
    assert local == ["00:00", "00:30", "01:00", "01:30", "01:00", "01:30", "02:00", "02:30", "03:00", "03:30",
                     "04:00"]
    assert fall == sorted(set(fall))  # distinct instants, in order
    assert fall[4] - fall[2] == timedelta(hours=1)


def test_grid_respects_now_window_and_hours():
    window = Interval(at(2026, 6, 16, 10, 10), at(2026, 6, 16, 14, 0))
    starts = grid_starts(window, not_before=at(2026, 6, 16, 10, 40), minutes=150, zone="America/Toronto",
                         policy=POLICY)
    assert _local(starts) == [datetime(2026, 6, 16, 11, 0, tzinfo=TORONTO), datetime(2026, 6, 16, 11, 30, tzinfo=TORONTO)]
    assert grid_starts(window, not_before=at(2026, 6, 16, 11, 31), minutes=150, zone="America/Toronto",
                       policy=POLICY) == []


# -- availability windows -------------------------------------------------------------------------

def test_weekly_window_follows_local_time_across_spring_forward():
    sundays = FacilitatorCalendar([WeeklyWindow(6, time(9), time(17))], [], "America/Toronto")
    assert sundays.covers(datetime(2026, 3, 1, 14, tzinfo=UTC), datetime(2026, 3, 1, 22, tzinfo=UTC))  # EST
    assert sundays.covers(datetime(2026, 3, 8, 13, tzinfo=UTC), datetime(2026, 3, 8, 21, tzinfo=UTC))  # EDT
    assert not sundays.covers(datetime(2026, 3, 8, 14, tzinfo=UTC), datetime(2026, 3, 8, 22, tzinfo=UTC))


def test_overnight_window_across_fall_back_lasts_its_real_length():
    saturday_night = FacilitatorCalendar([WeeklyWindow(5, time(22), time(6))], [], "America/Toronto")
    start, end = at(2026, 10, 31, 22), at(2026, 11, 1, 6)
    assert end - start == timedelta(hours=9)
    assert saturday_night.covers(start, end)
    assert not saturday_night.covers(start, end + timedelta(minutes=1))


def test_window_past_local_midnight_and_across_utc_midnight():
    evenings = FacilitatorCalendar([WeeklyWindow(4, time(20), time(2))], [], "America/Toronto")  # Fri 20:00-02:00
    assert evenings.covers(at(2026, 6, 19, 23), at(2026, 6, 20, 2))          # 03:00-06:00 UTC Saturday
    assert not evenings.covers(at(2026, 6, 20, 1), at(2026, 6, 20, 2, 30))
    late = FacilitatorCalendar([WeeklyWindow(0, time(18), time(23))], [], "America/Toronto")
    assert late.covers(datetime(2026, 6, 15, 23, tzinfo=UTC), datetime(2026, 6, 16, 2, tzinfo=UTC))


def test_adjacent_windows_merge_across_midnight():
    split = FacilitatorCalendar([WeeklyWindow(0, time(20), time(0)), WeeklyWindow(1, time(0), time(4))], [],
                                "America/Vancouver")
    vancouver = ZoneInfo("America/Vancouver")
    assert split.covers(at(2026, 6, 15, 22, zone=vancouver), at(2026, 6, 16, 2, zone=vancouver))
    assert not split.covers(at(2026, 6, 15, 22, zone=vancouver), at(2026, 6, 16, 5, zone=vancouver))


def test_time_off_is_half_open():
    calendar = FacilitatorCalendar([], [Interval(at(2026, 6, 16, 9), at(2026, 6, 16, 12))], "America/Toronto")
    assert calendar.time_off(at(2026, 6, 16, 11), at(2026, 6, 16, 13))
    assert not calendar.time_off(at(2026, 6, 16, 12), at(2026, 6, 16, 13))
    assert not calendar.time_off(at(2026, 6, 16, 8), at(2026, 6, 16, 9))


@pytest.mark.parametrize("overrides", [
    {"debriefing_phases": (("introduction", 10**18),)},
    {"defusing_phases": (("introduction", 1000), ("exploration", 441))},
    {"debriefing_phases": tuple((f"phase-{n}", 5) for n in range(21))},
    {"individual_minutes": 24 * 60 + 1},
])
def test_a_session_lasts_at_most_a_day_in_at_most_twenty_phases(overrides):
    with pytest.raises(ValueError):
        PlanningPolicy().with_overrides(overrides)
