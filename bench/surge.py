"""Seeded surge scenarios: a facilitator roster, its existing bookings and many incidents at once.

One generator serves both planning benchmarks. `COST` is the large surge the cost figure is
measured on (200 incidents over ten regions, 100 to 10,000 facilitators). `QUALITY` is small
and tight (few regions, a pool far too small for the demand, heavy recent load, overlapping
windows) so that an exact CP-SAT model can be solved to optimality next to the planner. It also
plants the corner cases a greedy planner can get wrong: certificates expiring inside the
window, involved personnel on the roster, agencies in other time zones and, built at
`FALL_BACK`, a weekend and the end of daylight saving inside the debriefing windows.

The draws for the shared parts happen in a fixed order and the optional parts draw only when
enabled, so `COST` with seed 7 is the surge the planning-cost figure has always been measured on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from service.planning import (
    Booking, Certification, FacilitatorProfile, IncidentFacts, Interval, Participant, PlanningPolicy, WeeklyWindow,
)

UTC = timezone.utc
JUNE = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)  # a Monday, 10:00 in Toronto
# A Friday, 10:00 in Toronto: the debriefing windows run across the end of daylight saving (1 November).
FALL_BACK = datetime(2026, 10, 30, 14, 0, tzinfo=UTC)
FACILITATOR_ZONES = ("America/Toronto",) * 8 + ("America/Winnipeg", "America/Halifax")
ROLES = ("officer",) * 6 + ("dispatcher", "paramedic", "supervisor", "command")
EXPOSURES = ("direct", "direct", "witness", "support")


@dataclass(frozen=True, slots=True)
class SurgeShape:
    """The size and the texture of a surge; the optional parts are off (0) by default."""

    facilitators: int
    incidents: int
    regions: int = 10
    agencies: int = 20
    max_personnel: int = 20
    reported_over_minutes: int = 720  # incidents occurred over the last this-many minutes
    # Time zone of agency k is agency_zones[k % len(agency_zones)]; incidents are shown and gridded in it.
    agency_zones: tuple[str, ...] = ("America/Toronto",)
    clinician_share: float = 0.3
    # Optional parts (0 = off, no draw):
    expiring_share: float = 0.0          # facilitators whose GCI or licence lapses 0-3 days from now
    insider_share: float = 0.0           # incidents that involve a facilitator of their own agency
    upcoming_group_share: float = 0.0    # facilitators already booked on a group session in the next days


COST = SurgeShape(facilitators=1_000, incidents=200)
QUALITY = SurgeShape(
    facilitators=26, incidents=16, regions=3, agencies=4, max_personnel=14, reported_over_minutes=600,
    agency_zones=("America/Toronto", "America/Toronto", "America/Winnipeg", "America/Halifax"),
    expiring_share=0.12, insider_share=0.3, upcoming_group_share=0.15,
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a planning run starts from: the clock, the rules, the roster, its bookings, the surge."""

    seed: int
    now: datetime
    shape: SurgeShape
    policy: PlanningPolicy
    profiles: tuple[FacilitatorProfile, ...]
    bookings: tuple[Booking, ...]
    incidents: tuple[IncidentFacts, ...]


def regions_of(shape: SurgeShape) -> list[str]:
    """The region codes r1..rN of a shape."""
    return [f"r{i}" for i in range(1, shape.regions + 1)]


def _weekly(rng: random.Random) -> tuple[WeeklyWindow, ...]:
    pattern = rng.random()
    if pattern < 0.35:  # office hours
        return tuple(WeeklyWindow(d, time(7, 0), time(18, 0)) for d in range(5))
    if pattern < 0.55:  # evenings and weekends
        return (tuple(WeeklyWindow(d, time(16, 0), time(23, 0)) for d in range(5))
                + (WeeklyWindow(5, time(8, 0), time(20, 0)), WeeklyWindow(6, time(8, 0), time(20, 0))))
    if pattern < 0.7:  # broad
        return tuple(WeeklyWindow(d, time(7, 0), time(22, 0)) for d in range(7))
    if pattern < 0.8:  # on call overnight, across midnight
        return tuple(WeeklyWindow(d, time(18, 0), time(8, 0)) for d in range(7))
    days = rng.sample(range(7), rng.randint(2, 5))
    windows = []
    for d in sorted(days):
        start = rng.choice([6, 7, 8, 9, 12, 13])
        windows.append(WeeklyWindow(d, time(start, 0), time(min(start + rng.randint(4, 10), 23), 0)))
    return tuple(windows)


def make_pool(shape: SurgeShape, now: datetime, rng: random.Random) -> list[FacilitatorProfile]:
    """A seeded roster of `shape.facilitators` peers and clinicians."""
    regions = regions_of(shape)
    agencies = list(range(1, shape.agencies + 1))
    profiles = []
    for fid in range(1, shape.facilitators + 1):
        clinician = rng.random() < shape.clinician_share
        agency = None if rng.random() < 0.25 else rng.choice(agencies)
        r = rng.random()
        languages = frozenset({"en"} if r < 0.6 else {"fr"} if r < 0.8 else {"en", "fr"})
        gci = date(2026, 6, 1) if rng.random() < 0.05 else date(2027, rng.randint(1, 12), 1)
        certs = [Certification("GCI", gci)]
        if clinician:
            certs.append(Certification("LICENSE", date(2028, 1, 1)))
        exceptions: tuple[Interval, ...] = ()
        if rng.random() < 0.1:
            off = now + timedelta(days=rng.randint(-3, 5))
            exceptions = (Interval(off, off + timedelta(days=rng.randint(1, 7))),)
        unit = f"u{rng.randint(1, 8)}" if agency else None
        active = rng.random() < 0.97
        served = frozenset(rng.sample(regions, rng.randint(1, min(3, len(regions)))))
        virtual_ok = rng.random() < 0.5
        zone = rng.choice(FACILITATOR_ZONES)
        weekly = _weekly(rng)
        if shape.expiring_share and rng.random() < shape.expiring_share:
            # Valid when the surge starts, lapsed before the last debriefing windows close.
            lapse = now.date() + timedelta(days=rng.randint(0, 3))
            name = "LICENSE" if clinician and rng.random() < 0.5 else "GCI"
            certs = [c if c.name != name else Certification(name, lapse) for c in certs]
        profiles.append(FacilitatorProfile(
            id=fid, kind="clinician" if clinician else "peer", agency_id=agency, unit=unit,
            email=f"f{fid}@example.org", personnel_id=f"p{fid}" if agency else None, active=active,
            languages=languages, regions=served, virtual_ok=virtual_ok, timezone=zone,
            certifications=tuple(certs), weekly=weekly, exceptions=exceptions,
        ))
    return profiles


def make_bookings(shape: SurgeShape, profiles: list[FacilitatorProfile], now: datetime,
                  rng: random.Random) -> list[Booking]:
    """Thirty days of past group sessions (load, and the rolling-week cap) and a few upcoming commitments."""
    bookings = []
    for p in profiles:
        for k in range(rng.randint(0, 4)):
            start = now - timedelta(days=rng.randint(1, 29), hours=rng.randint(0, 10))
            bookings.append(Booking(p.id, f"past-{p.id}-{k}", start, start + timedelta(minutes=150), True))
        if rng.random() < 0.1:
            start = now + timedelta(days=rng.randint(1, 3), hours=rng.randint(0, 8))
            bookings.append(Booking(p.id, f"next-{p.id}", start, start + timedelta(minutes=60), False))
        if shape.upcoming_group_share and rng.random() < shape.upcoming_group_share:
            # A debriefing of an earlier incident, already on their calendar: it takes a day of the cap.
            start = now + timedelta(days=rng.randint(1, 3), hours=rng.randint(-4, 6))
            bookings.append(Booking(p.id, f"booked-{p.id}", start, start + timedelta(minutes=150), True))
    return bookings


def make_incidents(shape: SurgeShape, profiles: list[FacilitatorProfile], now: datetime,
                   rng: random.Random) -> list[IncidentFacts]:
    """A surge of incidents reported over the last hours across the shape's regions."""
    regions = regions_of(shape)
    agencies = list(range(1, shape.agencies + 1))
    incidents = []
    for i in range(shape.incidents):
        agency = rng.choice(agencies)
        # An agency works mostly in one language; a few of its people prefer the other.
        main, other = ("en", "fr") if rng.random() < 0.7 else ("fr", "en")
        people = []
        for k in range(rng.randint(2, shape.max_personnel)):
            role = rng.choice(ROLES)
            unit = f"u{rng.randint(1, 8)}"
            exposure = rng.choice(EXPOSURES)
            language = main if rng.random() < 0.9 else other
            people.append(Participant(key=f"i{i}-p{k}", email=f"i{i}-p{k}@agency{agency}.example", role=role,
                                      unit=unit, exposure=exposure, language=language))
        severity = rng.randint(1, 5)
        occurred_at = now - timedelta(minutes=rng.randint(0, shape.reported_over_minutes))
        region = rng.choice(regions)
        if shape.insider_share and rng.random() < shape.insider_share:
            insider = _insider(i, agency, main, profiles, rng)
            if insider is not None:
                people.append(insider)
        incidents.append(IncidentFacts(
            ref=f"inc-{i}", agency_id=agency, severity=severity, occurred_at=occurred_at, region=region,
            timezone=shape.agency_zones[agency % len(shape.agency_zones)], participants=tuple(people)))
    return incidents


def _insider(i: int, agency: int, language: str, profiles: list[FacilitatorProfile],
             rng: random.Random) -> Participant | None:
    """A facilitator of the agency who was on scene: listed by their personnel id, or only by their e-mail."""
    own = [p for p in profiles if p.agency_id == agency and p.personnel_id]
    if not own:
        return None
    who = rng.choice(own)
    by_email = rng.random() < 0.5
    # No unit: the unit rule is exercised by everyone else; this one is found by key or e-mail alone.
    if by_email:
        # Another personnel number, the same address in other case: only the e-mail gives them away.
        return Participant(key=f"i{i}-x{who.id}", email=who.email.upper(), role="officer", unit=None,
                           exposure=rng.choice(EXPOSURES), language=language)
    return Participant(key=who.personnel_id or "", email=f"i{i}-x{who.id}@agency{agency}.example", role="officer",
                       unit=None, exposure=rng.choice(EXPOSURES), language=language)


def build(shape: SurgeShape, seed: int, now: datetime = JUNE, policy: PlanningPolicy | None = None) -> Scenario:
    """The scenario of one seed: roster, bookings, then incidents, drawn from one random stream."""
    rng = random.Random(seed)
    profiles = make_pool(shape, now, rng)
    bookings = make_bookings(shape, profiles, now, rng)
    incidents = make_incidents(shape, profiles, now, rng)
    return Scenario(seed, now, shape, policy or PlanningPolicy(), tuple(profiles), tuple(bookings), tuple(incidents))
