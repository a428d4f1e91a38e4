"""Builders shared by the planning unit tests: instants in Toronto time and facilitator profiles."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from service.planning import Certification, FacilitatorProfile, PlanningPolicy, WeeklyWindow

UTC = timezone.utc
TORONTO = ZoneInfo("America/Toronto")
POLICY = PlanningPolicy()
ALWAYS = tuple(WeeklyWindow(d, time(0), time(0)) for d in range(7))  # every day, around the clock


def at(y: int, m: int, d: int, h: int, mi: int = 0, zone: ZoneInfo = TORONTO, fold: int = 0) -> datetime:
    """A local wall-clock time (Toronto by default) as a UTC instant."""
    return datetime(y, m, d, h, mi, tzinfo=zone, fold=fold).astimezone(UTC)


def facilitator(fid: int = 1, kind: str = "peer", **changes) -> FacilitatorProfile:
    """An active English-speaking facilitator of region r1, certified until 2030, always available."""
    certs = [Certification("GCI", date(2030, 1, 1))]
    if kind == "clinician":
        certs.append(Certification("LICENSE", date(2030, 1, 1)))
    fields = dict(id=fid, kind=kind, agency_id=None, unit=None, email=f"f{fid}@cism.example", personnel_id=None,
                  active=True, languages=frozenset({"en"}), regions=frozenset({"r1"}), virtual_ok=False,
                  timezone="America/Toronto", certifications=tuple(certs), weekly=ALWAYS, exceptions=())
    fields.update(changes)
    return FacilitatorProfile(**fields)
