"""ineligibility_reasons: one reason code per rule of DESIGN.md section 3."""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from service.planning import (
    Booking, Certification, FacilitatorProfile, IncidentFacts, Interval, Participant, Schedule, WeeklyWindow,
    ineligibility_reasons,
)
from tests.unit.planning.builders import POLICY, UTC, at, facilitator


INCIDENT = IncidentFacts(
    ref="inc-1", agency_id=7, severity=3, occurred_at=at(2026, 6, 15, 10), region="r1", timezone="America/Toronto",
    participants=(Participant("E100", "Alex.Doe@police.example", "officer", "patrol-3", "direct", "en"),
                  Participant("E101", "sam@police.example", "supervisor", "k9", "witness", "en")),
)
START, END = at(2026, 6, 16, 10), at(2026, 6, 16, 12, 30)


def reasons(profile: FacilitatorProfile, *, kind: str = "debriefing", start: datetime = START,
            end: datetime = END, mode: str = "in_person", region: str = "r1", language: str = "en",
            schedule: Schedule | None = None, incident: IncidentFacts | None = INCIDENT, ignore: str | None = None):
    return ineligibility_reasons(profile, kind=kind, starts_at=start, ends_at=end, mode=mode, region=region,
                                 language=language, incident=incident, schedule=schedule or Schedule(),
                                 policy=POLICY, ignore_session_ref=ignore)


def test_an_available_certified_facilitator_is_eligible():
    assert reasons(facilitator()) == ()
    assert reasons(facilitator(kind="clinician")) == ()


def test_inactive():
    assert reasons(facilitator(active=False)) == ("inactive",)


@pytest.mark.parametrize("expires_on, expected", [
    (date(2026, 6, 15), ("certification_expired",)),   # the day before the session
    (date(2026, 6, 16), ()),                             # the day of the session
])
def test_certification_must_hold_on_the_session_date(expires_on, expected):
    assert reasons(facilitator(certifications=(Certification("GCI", expires_on),))) == expected


def test_session_date_is_the_incident_local_date():
    # 20:00 in Toronto on June 16 is already June 17 in UTC: a GCI expiring June 16 still holds.
    profile = facilitator(certifications=(Certification("GCI", date(2026, 6, 16)),))
    assert reasons(profile, kind="defusing", start=at(2026, 6, 16, 20), end=at(2026, 6, 16, 20, 45)) == ()


def test_latest_of_several_certificates_counts():
    profile = facilitator(certifications=(Certification("GCI", date(2020, 1, 1)), Certification("GCI", date(2027, 1, 1))))
    assert reasons(profile) == ()


def test_gci_is_required_for_group_sessions_only():
    profile = facilitator(certifications=())
    assert reasons(profile) == ("certification_missing",)
    assert reasons(profile, kind="defusing", end=START + timedelta(minutes=45)) == ("certification_missing",)
    assert reasons(profile, kind="individual", end=START + timedelta(hours=1)) == ()


def test_license_is_required_for_clinicians_always():
    no_license = facilitator(kind="clinician", certifications=(Certification("GCI", date(2030, 1, 1)),))
    assert reasons(no_license) == ("certification_missing",)
    assert reasons(no_license, kind="individual", end=START + timedelta(hours=1)) == ("certification_missing",)
    expired = facilitator(kind="clinician", certifications=(Certification("GCI", date(2030, 1, 1)),
                                                            Certification("LICENSE", date(2026, 1, 1))))
    assert reasons(expired) == ("certification_expired",)


def test_language():
    assert reasons(facilitator(), language="fr") == ("language_mismatch",)
    assert reasons(facilitator(languages=frozenset({"en", "fr"})), language="fr") == ()


def test_region_or_virtual():
    elsewhere = facilitator(regions=frozenset({"r2"}))
    assert reasons(elsewhere) == ("region_not_served",)
    assert reasons(elsewhere, mode="virtual") == ("region_not_served",)
    assert reasons(facilitator(regions=frozenset({"r2"}), virtual_ok=True), mode="virtual") == ()
    assert reasons(facilitator(regions=frozenset({"r2"}), virtual_ok=True)) == ("region_not_served",)


def test_weekly_availability_must_hold_the_buffers():
    office = (WeeklyWindow(1, time(9), time(17)),)  # Tuesdays
    assert reasons(facilitator(weekly=office)) == ()                                        # 09:00 .. 13:30
    assert reasons(facilitator(weekly=office), start=at(2026, 6, 16, 9, 30),
                   end=at(2026, 6, 16, 12)) == ("unavailable",)
    assert reasons(facilitator(weekly=office), start=at(2026, 6, 16, 14), end=at(2026, 6, 16, 16, 30)) == (
        "unavailable",)
    assert reasons(facilitator(weekly=(WeeklyWindow(2, time(9), time(17)),))) == ("unavailable",)


def test_time_off():
    off = (Interval(at(2026, 6, 16, 13), at(2026, 6, 16, 18)),)
    assert reasons(facilitator(exceptions=off)) == ("time_off",)       # buffered end 13:30 meets it
    assert reasons(facilitator(exceptions=off), end=at(2026, 6, 16, 12)) == ()


@pytest.mark.parametrize("other_end, expected", [
    (at(2026, 6, 16, 9), ()),                    # 60 minutes apart
    (at(2026, 6, 16, 9, 1), ("double_booked",)),  # 59 minutes apart
])
def test_buffer_between_sessions(other_end, expected):
    schedule = Schedule([Booking(1, "other", other_end - timedelta(hours=1), other_end, False)])
    assert reasons(facilitator(), schedule=schedule) == expected


def test_buffer_after_the_session():
    schedule = Schedule([Booking(1, "other", at(2026, 6, 16, 13, 29), at(2026, 6, 16, 14), False)])
    assert reasons(facilitator(), schedule=schedule) == ("double_booked",)
    assert reasons(facilitator(), schedule=schedule, ignore="other") == ()


def test_daily_cap_counts_group_sessions_on_the_facilitators_local_day():
    evening = Schedule([Booking(1, "g", at(2026, 6, 16, 19), at(2026, 6, 16, 20), True)])
    assert reasons(facilitator(), schedule=evening) == ("daily_cap",)
    individual = Schedule([Booking(1, "i", at(2026, 6, 16, 19), at(2026, 6, 16, 20), False)])
    assert reasons(facilitator(), schedule=individual) == ()
    assert reasons(facilitator(), kind="individual", end=START + timedelta(hours=1), schedule=evening) == ()
    # 21:30 in Vancouver on June 15 is June 16 in Toronto, but not the Vancouver facilitator's June 16.
    vancouver = ZoneInfo("America/Vancouver")
    west = Schedule([Booking(1, "g", datetime(2026, 6, 15, 21, 30, tzinfo=vancouver),
                             datetime(2026, 6, 15, 22, 30, tzinfo=vancouver), True)])
    assert reasons(facilitator(timezone="America/Vancouver"), schedule=west) == ()
    assert reasons(facilitator(), schedule=west) == ("daily_cap",)


def test_rolling_seven_day_cap():
    def booked(*days):
        return Schedule([Booking(1, f"g{d}", at(2026, 6, d, 9), at(2026, 6, d, 10), True) for d in days])

    def new_on(day, schedule):
        return reasons(facilitator(), start=at(2026, 6, day, 14), end=at(2026, 6, day, 16, 30), schedule=schedule)

    assert new_on(21, booked(15, 17, 19)) == ("weekly_cap",)   # June 15..21 would hold four
    assert new_on(22, booked(15, 17, 19)) == ()                # June 16..22 holds three
    assert new_on(16, booked(12, 14, 20)) == ()                # every week around the 16th holds three
    assert new_on(16, booked(12, 14, 18)) == ("weekly_cap",)   # June 12..18 would hold four
    assert new_on(16, booked(12, 14, 16)) == ("daily_cap", "weekly_cap")


def test_conflict_of_interest_by_personnel_id_within_the_same_agency():
    assert reasons(facilitator(agency_id=7, personnel_id="E100")) == ("conflict_of_interest",)
    assert reasons(facilitator(agency_id=8, personnel_id="E100")) == ()
    assert reasons(facilitator(agency_id=None, personnel_id="E100")) == ()


def test_conflict_of_interest_by_email_ignores_case():
    assert reasons(facilitator(email="alex.DOE@police.example")) == ("conflict_of_interest",)


def test_member_of_an_involved_unit():
    assert reasons(facilitator(agency_id=7, unit="k9")) == ("unit_conflict",)
    assert reasons(facilitator(agency_id=8, unit="k9")) == ()
    assert reasons(facilitator(agency_id=7, unit="traffic")) == ()
    assert reasons(facilitator(agency_id=7, unit="k9"), incident=None) == ()


def test_every_reason_is_listed():
    profile = facilitator(kind="clinician", active=False, certifications=(), languages=frozenset({"fr"}),
                          regions=frozenset({"r2"}), agency_id=7, unit="k9", personnel_id="E100",
                          weekly=(), exceptions=(Interval(START, END),))
    schedule = Schedule([Booking(1, "g", START, END, True)])
    assert reasons(profile, schedule=schedule) == (
        "inactive", "certification_missing", "language_mismatch", "region_not_served", "conflict_of_interest",
        "unit_conflict", "unavailable", "time_off", "double_booked", "daily_cap")
