"""Random pools and incidents: every plan keeps every hard rule, checked by an independent checker.

The checker below re-states the rules of DESIGN.md section 3 from scratch (it does not call the
planner's eligibility code): availability is probed point by point on the half-hour grid that all
generated times lie on, caps are counted per local date, and the grid is enumerated in UTC.
"""

import math
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.planning import (
    Booking, Certification, FacilitatorPool, FacilitatorProfile, IncidentFacts, Interval, Participant, Schedule,
    WeeklyWindow, plan_incident, plan_surge,
)

from tests.unit.planning.builders import ALWAYS, POLICY, UTC

HALF_HOUR = timedelta(minutes=30)
ZONES = ["America/Toronto", "America/Vancouver", "America/Halifax", "UTC", "Europe/Paris"]
AGENCY_ZONES = ["America/Toronto", "America/St_Johns"]
# Around both 2026 DST changes in North America, Europe's spring change, and an ordinary week.
BASES = [datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 6, 15, tzinfo=UTC),
         datetime(2026, 10, 30, tzinfo=UTC)]
LENGTH = {"debriefing": 150, "defusing": 45}
PHASES = {"debriefing": POLICY.debriefing_phases, "defusing": POLICY.defusing_phases}
PROPERTY_SETTINGS = settings(max_examples=120, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- generators ---------------------------------------------------------------------------------

def sometimes(draw, one_in: int) -> bool:
    # Hypothesis leans towards the first option; here that is the harmless one.
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


@st.composite
def weekly_windows(draw):
    if not sometimes(draw, 3):
        return ALWAYS
    windows = []
    for _ in range(draw(st.integers(1, 7))):
        start = draw(st.integers(0, 47)) * 30
        length = draw(st.integers(2, 40)) * 30
        end = (start + length) % 1440
        windows.append(WeeklyWindow(draw(st.integers(0, 6)), time(start // 60, start % 60), time(end // 60, end % 60)))
    return tuple(windows)


@st.composite
def facilitators(draw, base, count):
    """A roster mostly able to serve (so that plans get made), with every kind of flaw now and then."""
    profiles = []
    for fid in range(1, count + 1):
        kind = "clinician" if (fid % 3 == 1) != sometimes(draw, 4) else "peer"
        certs = []
        for name in ["GCI"] + (["LICENSE"] if kind == "clinician" else []):
            if not sometimes(draw, 15):
                near = sometimes(draw, 3)
                certs.append(Certification(name, base.date() + timedelta(days=draw(st.integers(0, 4))) if near
                                           else date(2031, 1, 1)))
        exceptions = []
        for _ in range(draw(st.integers(0, 2))):
            start = base + HALF_HOUR * draw(st.integers(0, 300))
            exceptions.append(Interval(start, start + HALF_HOUR * draw(st.integers(1, 96))))
        agency = draw(st.sampled_from([None, 1, 2]))
        profiles.append(FacilitatorProfile(
            id=fid, kind=kind, agency_id=agency, unit=draw(st.sampled_from([None, "u1", "u2", "u2"])),
            email="P0@AGENCY.EXAMPLE" if sometimes(draw, 10) else f"f{fid}@cism.example",
            personnel_id=draw(st.sampled_from([None, None, "P1", f"X{fid}", None, None])),
            active=not sometimes(draw, 15),
            languages=frozenset(draw(st.sampled_from([["en", "fr"], ["en"], ["en", "fr"], ["en"], ["en"], ["fr"]]))),
            regions=frozenset(draw(st.sampled_from([["r1", "r2"], ["r1"], ["r2"], ["r1", "r2"]]))),
            virtual_ok=draw(st.booleans()), timezone=draw(st.sampled_from(ZONES)), certifications=tuple(certs),
            weekly=draw(weekly_windows()), exceptions=tuple(exceptions)))
    return profiles


@st.composite
def participants(draw, prefix, *, single_group=False):
    people = []
    for i in range(draw(st.integers(1, 20 if single_group else 26))):
        exposure, role, language = "direct", "officer", "en"
        if not single_group:
            exposure = draw(st.sampled_from(["direct", "witness", "support"]))
            role = draw(st.sampled_from(["officer", "officer", "dispatcher", "supervisor", "command"]))
            language = draw(st.sampled_from(["en", "en", "fr"]))
        people.append(Participant(f"{prefix}{i}", f"{prefix}{i}@agency.example", role,
                                  draw(st.sampled_from(["u1", "u3", None])), exposure, language))
    return tuple(people)


@st.composite
def bookings(draw, base, count):
    """Earlier sessions (the load of the last 30 days) and commitments in the coming days."""
    out = []
    for k in range(draw(st.integers(0, 4))):
        # Mostly on the lowest ids, which the id tie-break would otherwise pick first.
        start = base - HALF_HOUR * draw(st.integers(1, 1400))
        out.append(Booking(draw(st.integers(1, min(count, 3))), f"past-{k}", start, start + HALF_HOUR * 4, True))
    for k in range(draw(st.integers(0, 8))):
        start = base + HALF_HOUR * draw(st.integers(20, 180))
        out.append(Booking(draw(st.integers(1, count)), f"existing-{k}", start,
                           start + HALF_HOUR * draw(st.integers(1, 6)), draw(st.booleans())))
    return out


@st.composite
def surges(draw):
    base = draw(st.sampled_from(BASES)) + HALF_HOUR * draw(st.integers(0, 96))
    count = draw(st.integers(4, 14))
    pool = draw(facilitators(base, count))
    incidents = []
    for k in range(draw(st.integers(1, 3))):
        incidents.append(IncidentFacts(
            ref=f"inc-{k}", agency_id=1, severity=draw(st.integers(1, 5)),
            occurred_at=base + HALF_HOUR * draw(st.integers(0, 16)) + timedelta(minutes=draw(st.sampled_from([0, 7]))),
            region=draw(st.sampled_from(["r1", "r2"])), timezone=draw(st.sampled_from(AGENCY_ZONES)),
            participants=draw(participants(["P", "Q", "R"][k]))))
    now = base + HALF_HOUR * draw(st.integers(0, 60)) + timedelta(minutes=draw(st.sampled_from([0, 10])))
    return pool, incidents, draw(bookings(base, count)), now


# -- the independent checker ------------------------------------------------------------------------

def to_utc(day: date, at: time, zone: str) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def covered(profile: FacilitatorProfile, instant: datetime) -> bool:
    """Is this instant inside one of the weekly windows (read in the facilitator's zone)?"""
    today = instant.astimezone(ZoneInfo(profile.timezone)).date()
    for day in (today - timedelta(days=1), today):
        for w in profile.weekly:
            if w.day != day.weekday():
                continue
            start = to_utc(day, w.start, profile.timezone)
            end = to_utc(day + timedelta(days=1) if w.end <= w.start else day, w.end, profile.timezone)
            if start <= instant < end:
                return True
    return False


def free_between(profile: FacilitatorProfile, start: datetime, end: datetime) -> bool:
    """Every half hour of [start, end) is available and none is time off (all generated times are on the grid)."""
    probe = start + timedelta(minutes=15)
    while probe < end:
        if not covered(profile, probe):
            return False
        probe += HALF_HOUR
    return not any(off.start < end and start < off.end for off in profile.exceptions)


def certified(profile: FacilitatorProfile, name: str, day: date) -> bool:
    return any(c.name == name and c.expires_on >= day for c in profile.certifications)


def statically_eligible(profile, *, kind, mode, incident, language, day) -> bool:
    if not profile.active or language not in profile.languages:
        return False
    if kind in LENGTH and not certified(profile, "GCI", day):
        return False
    if profile.kind == "clinician" and not certified(profile, "LICENSE", day):
        return False
    if incident.region not in profile.regions and not (mode == "virtual" and profile.virtual_ok):
        return False
    same_agency = profile.agency_id == incident.agency_id
    keys = {p.key for p in incident.participants}
    emails = {p.email.lower() for p in incident.participants}
    units = {p.unit for p in incident.participants if p.unit}
    if same_agency and profile.personnel_id in keys:
        return False
    if profile.email.lower() in emails:
        return False
    return not (same_agency and profile.unit in units)


def caps_allow(profile, start, group_starts) -> bool:
    """One more group session at `start` keeps 1 per local day and 3 per any 7 local days."""
    tz = ZoneInfo(profile.timezone)
    day = start.astimezone(tz).date()
    days = [s.astimezone(tz).date() for s in group_starts]
    if days.count(day) >= 1:
        return False
    for first in range(7):
        lo = day - timedelta(days=first)
        if sum(lo <= d <= lo + timedelta(days=6) for d in days) + 1 > 3:
            return False
    return True


def eligible(profile, *, kind, start, end, mode, incident, language, others) -> bool:
    """The whole rule for one facilitator; `others` are their other commitments as (start, end, group)."""
    day = start.astimezone(ZoneInfo(incident.timezone)).date()
    if not statically_eligible(profile, kind=kind, mode=mode, incident=incident, language=language, day=day):
        return False
    buffer = timedelta(minutes=60)
    if not free_between(profile, start - buffer, end + buffer):
        return False
    if any(s < end + buffer and start - buffer < e for s, e, _ in others):
        return False
    return kind not in LENGTH or caps_allow(profile, start, [s for s, _, g in others if g])


def window_of(kind, incident):
    if kind == "debriefing":
        return incident.occurred_at + timedelta(hours=24), incident.occurred_at + timedelta(hours=72)
    return incident.occurred_at, incident.occurred_at + timedelta(hours=8)


def grid(kind, incident, now):
    """Every allowed start, enumerated half hour by half hour in UTC, an hour's notice after now."""
    open_, close = window_of(kind, incident)
    length = timedelta(minutes=LENGTH[kind])
    tz = ZoneInfo(incident.timezone)
    t = datetime(open_.year, open_.month, open_.day, open_.hour, tzinfo=UTC) - HALF_HOUR
    out = []
    while t + length <= close:
        start_local, end_local = t.astimezone(tz), (t + length).astimezone(tz)
        if (t >= open_ and t >= now + timedelta(hours=1) and start_local.minute % 30 == 0
                and time(8) <= start_local.time() <= time(20)
                and end_local.date() == start_local.date() and end_local.time() <= time(21)):
            out.append(t)
        t += HALF_HOUR
    return out


def expected_groups(people):
    """(key, size) of every group, from the naming rule of the design."""
    buckets = {}
    for p in people:
        buckets.setdefault((p.exposure, p.role in ("supervisor", "command"), p.language), []).append(p)
    out = []
    for (exposure, command, language), members in buckets.items():
        base = f"{exposure}-command-{language}" if command else f"{exposure}-{language}"
        parts = math.ceil(len(members) / 20)
        sizes = [len(members) // parts + (1 if i < len(members) % parts else 0) for i in range(parts)]
        out += [(base if parts == 1 else f"{base}-{i + 1}", size) for i, size in enumerate(sizes)]
    return out


def team_size(n):
    return min(max(math.ceil(n / 6), 2), 4)


def check_plans(pool_profiles, incidents, existing, plans, now):
    """Assert every hard rule of every planned session; return the sessions checked."""
    profiles = {p.id: p for p in pool_profiles}
    planned = [(incident, s) for incident in incidents for s in plans[incident.ref].sessions]
    commitments = {fid: [(b.start, b.end, b.group, b.session_ref) for b in existing if b.facilitator_id == fid]
                   for fid in profiles}
    for _, s in planned:
        for fid in s.facilitator_ids:
            commitments[fid].append((s.starts_at, s.ends_at, True, s.ref))
    for incident in incidents:
        plan = plans[incident.ref]
        groups = dict(expected_groups(incident.participants))
        kinds = ["defusing", "debriefing"] if incident.severity >= 4 else ["debriefing"]
        outcomes = sorted([(s.group_key, s.kind) for s in plan.sessions] + [(p.group_key, p.kind) for p in plan.problems])
        assert outcomes == sorted((key, kind) for key in groups for kind in kinds)
        for problem in plan.problems:
            assert problem.reasons and set(problem.reasons) <= {
                "window_closed", "no_clinician_available", "not_enough_peers", "all_candidates_conflicted",
                "no_common_slot", "language_not_covered", "region_not_covered"}
        for s in plan.sessions:
            language = s.group_key.split("-")[-1] if not s.group_key[-1].isdigit() else s.group_key.split("-")[-2]
            assert s.starts_at in grid(s.kind, incident, now)
            assert s.ends_at - s.starts_at == timedelta(minutes=LENGTH[s.kind])
            assert [(a.phase, a.minutes) for a in s.agenda] == list(PHASES[s.kind])
            assert s.agenda[0].starts_at == s.starts_at
            assert all(b.starts_at == a.starts_at + timedelta(minutes=a.minutes) for a, b in zip(s.agenda, s.agenda[1:]))
            assert s.region == incident.region
            team = [profiles[fid] for fid in s.facilitator_ids]
            assert len(set(s.facilitator_ids)) == len(team) == team_size(groups[s.group_key])
            clinicians = sum(p.kind == "clinician" for p in team)
            if s.kind == "debriefing":
                assert clinicians >= 1 and len(team) - clinicians >= 1
            else:
                assert len(team) - clinicians >= 2
            for p in team:
                others = [(a, b, g) for a, b, g, ref in commitments[p.id] if ref != s.ref]
                assert eligible(p, kind=s.kind, start=s.starts_at, end=s.ends_at, mode=s.mode, incident=incident,
                                language=language, others=others), (p.id, s)
                if s.mode == "in_person":
                    assert incident.region in p.regions
    return planned


@PROPERTY_SETTINGS
@given(surges())
def test_every_surge_plan_keeps_every_hard_rule(surge):
    profiles, incidents, existing, now = surge
    pool, schedule = FacilitatorPool(profiles), Schedule(existing)
    plans = plan_surge(incidents, pool, schedule, POLICY, now=now)
    planned = check_plans(profiles, incidents, existing, plans, now)
    # The pool keeps memos between calls: a second surge on a fresh schedule must not notice them,
    # and incident-by-incident planning must keep the rules too.
    assert plan_surge(incidents, pool, Schedule(existing), POLICY, now=now) == plans
    one_by_one = Schedule(existing)
    check_plans(profiles, incidents, existing,
                {i.ref: plan_incident(i, pool, one_by_one, POLICY, now=now) for i in incidents}, now)
    event(f"sessions planned: {min(len(planned), 3)}+")
    for plan in plans.values():
        for problem in plan.problems:
            event(f"problem: {problem.reasons[0]}")
    assert len(schedule) == len(existing) + sum(len(s.facilitator_ids) for _, s in planned)
    # No facilitator is ever in two places at once, planned sessions included.
    for fid in {p.id for p in profiles}:
        spans = sorted((s.starts_at, s.ends_at) for _, s in planned if fid in s.facilitator_ids)
        assert all(a[1] + timedelta(hours=1) <= b[0] for a, b in zip(spans, spans[1:]))


@st.composite
def single_groups(draw):
    base = draw(st.sampled_from(BASES)) + HALF_HOUR * draw(st.integers(0, 96))
    count = draw(st.integers(3, 10))
    incident = IncidentFacts(
        ref="solo", agency_id=1, severity=draw(st.integers(1, 3)),
        occurred_at=base + HALF_HOUR * draw(st.integers(0, 16)), region=draw(st.sampled_from(["r1", "r2"])),
        timezone=draw(st.sampled_from(AGENCY_ZONES)), participants=draw(participants("P", single_group=True)))
    now = base + HALF_HOUR * draw(st.integers(0, 100))
    return draw(facilitators(base, count)), incident, draw(bookings(base, count)), now


@PROPERTY_SETTINGS
@given(single_groups())
def test_the_earliest_feasible_start_and_the_preferred_team_win(case):
    """For one group: no earlier start had a team, a problem means no start had one, and the team is the preferred one."""
    profiles, incident, existing, now = case
    plan = plan_incident(incident, FacilitatorPool(profiles), Schedule(existing), POLICY, now=now)
    check_plans(profiles, [incident], existing, {"solo": plan}, now)
    event(f"outcome: {plan.sessions[0].mode if plan.sessions else plan.problems[0].reasons[0]}")
    size = team_size(len(incident.participants))
    loads = {p.id: sum(now - timedelta(days=30) <= b.start < now for b in existing if b.facilitator_id == p.id)
             for p in profiles}

    def team_at(start, mode):
        end = start + timedelta(minutes=150)
        free = [p for p in profiles if eligible(
            p, kind="debriefing", start=start, end=end, mode=mode, incident=incident, language="en",
            others=[(b.start, b.end, b.group) for b in existing if b.facilitator_id == p.id])]
        # Other agencies' peers first, then the least loaded, then by id; one clinician, then peers.
        free.sort(key=lambda p: (p.kind == "peer" and p.agency_id == incident.agency_id, loads[p.id], p.id))
        clinicians = [p.id for p in free if p.kind == "clinician"]
        peers = [p.id for p in free if p.kind == "peer"]
        if not clinicians or not peers or len(free) < size:
            return None
        team = clinicians[:1] + peers[:size - 1]
        return tuple(sorted(team + clinicians[1:1 + size - len(team)]))

    for start in grid("debriefing", incident, now):
        for mode in ("in_person", "virtual"):
            expected = team_at(start, mode)
            if plan.sessions:
                session = plan.sessions[0]
                if start < session.starts_at or (start == session.starts_at and mode != session.mode
                                                   and session.mode == "virtual"):
                    assert expected is None, (start, mode)
                if (start, mode) == (session.starts_at, session.mode):
                    assert session.facilitator_ids == expected
            else:
                assert expected is None, (start, mode, plan.problems)
