"""Planning cost vs pool size on a seeded surge: ms per incident at 100, 1,000 and 10,000 facilitators.

Run from the repository root: `python -m bench.planner_scale` (or `python bench/planner_scale.py`).
Targets (DESIGN.md section 6): < 10 ms per incident at 1,000 facilitators; 10k/1k ratio <= 3.
"""

from __future__ import annotations

import random
import sys
import time as clock
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # also runnable as `python bench/planner_scale.py`

from service.planning import (  # noqa: E402
    Booking, Certification, FacilitatorPool, FacilitatorProfile, IncidentFacts, Interval, Participant,
    PlanningPolicy, Schedule, WeeklyWindow, plan_incident, plan_surge,
)

UTC = timezone.utc
NOW = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)  # a Monday, 10:00 in Toronto
REGIONS = [f"r{i}" for i in range(1, 11)]
ZONES = ["America/Toronto"] * 8 + ["America/Winnipeg", "America/Halifax"]
AGENCIES = list(range(1, 21))
INCIDENTS = 200
SIZES = (100, 1_000, 10_000)
REPEATS = 3


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


def make_pool(n: int, rng: random.Random) -> list[FacilitatorProfile]:
    """A seeded roster of `n` facilitators."""
    profiles = []
    for fid in range(1, n + 1):
        clinician = rng.random() < 0.3
        agency = None if rng.random() < 0.25 else rng.choice(AGENCIES)
        r = rng.random()
        languages = frozenset({"en"} if r < 0.6 else {"fr"} if r < 0.8 else {"en", "fr"})
        certs = [Certification("GCI", date(2026, 6, 1) if rng.random() < 0.05 else date(2027, rng.randint(1, 12), 1))]
        if clinician:
            certs.append(Certification("LICENSE", date(2028, 1, 1)))
        exceptions = ()
        if rng.random() < 0.1:
            off = NOW + timedelta(days=rng.randint(-3, 5))
            exceptions = (Interval(off, off + timedelta(days=rng.randint(1, 7))),)
        profiles.append(FacilitatorProfile(
            id=fid, kind="clinician" if clinician else "peer", agency_id=agency,
            unit=f"u{rng.randint(1, 8)}" if agency else None, email=f"f{fid}@example.org",
            personnel_id=f"p{fid}" if agency else None, active=rng.random() < 0.97, languages=languages,
            regions=frozenset(rng.sample(REGIONS, rng.randint(1, 3))), virtual_ok=rng.random() < 0.5,
            timezone=rng.choice(ZONES), certifications=tuple(certs), weekly=_weekly(rng), exceptions=exceptions,
        ))
    return profiles


def make_bookings(profiles: list[FacilitatorProfile], rng: random.Random) -> list[Booking]:
    """Thirty days of past sessions (the load) and a few upcoming ones."""
    bookings = []
    for p in profiles:
        for k in range(rng.randint(0, 4)):
            start = NOW - timedelta(days=rng.randint(1, 29), hours=rng.randint(0, 10))
            bookings.append(Booking(p.id, f"past-{p.id}-{k}", start, start + timedelta(minutes=150), True))
        if rng.random() < 0.1:
            start = NOW + timedelta(days=rng.randint(1, 3), hours=rng.randint(0, 8))
            bookings.append(Booking(p.id, f"next-{p.id}", start, start + timedelta(minutes=60), False))
    return bookings


def make_incidents(rng: random.Random) -> list[IncidentFacts]:
    """A surge: 200 incidents reported over the last twelve hours across ten regions."""
    incidents = []
    for i in range(INCIDENTS):
        agency = rng.choice(AGENCIES)
        # An agency works mostly in one language; a few of its people prefer the other.
        main, other = ("en", "fr") if rng.random() < 0.7 else ("fr", "en")
        people = []
        for k in range(rng.randint(2, 20)):
            people.append(Participant(
                key=f"i{i}-p{k}", email=f"i{i}-p{k}@agency{agency}.example", role=rng.choice(
                    ["officer"] * 6 + ["dispatcher", "paramedic", "supervisor", "command"]),
                unit=f"u{rng.randint(1, 8)}", exposure=rng.choice(["direct", "direct", "witness", "support"]),
                language=main if rng.random() < 0.9 else other))
        incidents.append(IncidentFacts(
            ref=f"inc-{i}", agency_id=agency, severity=rng.randint(1, 5),
            occurred_at=NOW - timedelta(minutes=rng.randint(0, 720)), region=rng.choice(REGIONS),
            timezone="America/Toronto", participants=tuple(people)))
    return incidents


def measure(n: int, seed: int = 7) -> dict[str, float]:
    """Best of REPEATS: ms per incident for one surge call and for incident-by-incident calls."""
    rng = random.Random(seed)
    profiles = make_pool(n, rng)
    bookings = make_bookings(profiles, rng)
    incidents = make_incidents(rng)
    policy = PlanningPolicy()
    surge, single, placed, problems = [], [], 0, 0
    for _ in range(REPEATS):
        pool, schedule = FacilitatorPool(profiles), Schedule(bookings)
        t0 = clock.perf_counter()
        plans = plan_surge(incidents, pool, schedule, policy, now=NOW)
        surge.append((clock.perf_counter() - t0) * 1000 / len(incidents))
        placed = sum(len(p.sessions) for p in plans.values())
        problems = sum(len(p.problems) for p in plans.values())
        pool, schedule = FacilitatorPool(profiles), Schedule(bookings)
        t0 = clock.perf_counter()
        for incident in incidents:
            plan_incident(incident, pool, schedule, policy, now=NOW)
        single.append((clock.perf_counter() - t0) * 1000 / len(incidents))
    return {"surge": min(surge), "single": min(single), "placed": placed, "problems": problems}


def main() -> None:
    """Print the per-incident cost at each pool size and the 10k/1k ratios."""
    results = {}
    print(f"{INCIDENTS} incidents, regions r1..r10, languages en/fr; best of {REPEATS}")
    print(f"{'facilitators':>12} {'plan_surge ms/inc':>18} {'plan_incident ms/inc':>21} {'sessions':>9} {'problems':>9}")
    for n in SIZES:
        r = results[n] = measure(n)
        print(f"{n:>12,} {r['surge']:>18.3f} {r['single']:>21.3f} {r['placed']:>9} {r['problems']:>9}")
    for key, label in (("surge", "plan_surge"), ("single", "plan_incident")):
        ratio = results[10_000][key] / results[1_000][key]
        print(f"ratio 10k/1k ({label}): {ratio:.2f}  (target <= 3; 1k: {results[1_000][key]:.2f} ms, target < 10)")
    assert "flask" not in sys.modules and "sqlalchemy" not in sys.modules


if __name__ == "__main__":
    main()
