"""The one eligibility rule, shared by planning, replacement and validation of a coordinator's change."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Sequence

from service.planning.policy import PlanningPolicy
from service.planning.pool import Facilitator
from service.planning.schedule import Schedule
from service.planning.timegrid import local_date
from service.planning.types import (
    CERTIFICATION_EXPIRED, CERTIFICATION_MISSING, CONFLICT_OF_INTEREST, DAILY_CAP, DOUBLE_BOOKED,
    GROUP_KINDS, INACTIVE, LANGUAGE_MISMATCH, REGION_NOT_SERVED, TIME_OFF, UNAVAILABLE, UNIT_CONFLICT,
    VIRTUAL, WEEKLY_CAP, FacilitatorProfile, IncidentFacts, Mode, SessionKind, require_aware,
)

UTC = timezone.utc
_NO_EXPIRY = date.max


@dataclass(frozen=True, slots=True)
class Involvement:
    """Who an incident involves, in the shape the conflict-of-interest rule needs."""

    agency_id: int
    personnel_keys: frozenset[str]
    emails: frozenset[str]
    units: frozenset[str]

    @classmethod
    def of(cls, incident: IncidentFacts) -> Involvement:
        """Collect the incident's personnel keys, emails (case-folded) and units."""
        people = incident.participants
        return cls(
            agency_id=incident.agency_id,
            personnel_keys=frozenset(p.key for p in people),
            emails=frozenset(p.email.casefold() for p in people if p.email),
            units=frozenset(p.unit for p in people if p.unit),
        )


def certified_until(f: Facilitator, kind: SessionKind) -> date | None:
    """Last date on which the facilitator holds every certificate `kind` requires; None if one is missing."""
    until = _NO_EXPIRY
    if kind in GROUP_KINDS:
        if f.gci_until is None:
            return None
        until = min(until, f.gci_until)
    if f.is_clinician:
        if f.license_until is None:
            return None
        until = min(until, f.license_until)
    return until


def certification_reasons(f: Facilitator, kind: SessionKind, on_date: date) -> tuple[str, ...]:
    """certification_missing / certification_expired for the session's local date."""
    required = []
    if kind in GROUP_KINDS:
        required.append(f.gci_until)
    if f.is_clinician:
        required.append(f.license_until)
    reasons = []
    if any(until is None for until in required):
        reasons.append(CERTIFICATION_MISSING)
    if any(until is not None and until < on_date for until in required):
        reasons.append(CERTIFICATION_EXPIRED)
    return tuple(reasons)


def conflict_reasons(f: Facilitator, involvement: Involvement) -> tuple[str, ...]:
    """conflict_of_interest when the facilitator is involved personnel; unit_conflict for an involved unit."""
    p = f.profile
    same_agency = p.agency_id is not None and p.agency_id == involvement.agency_id
    reasons = []
    if ((same_agency and p.personnel_id is not None and p.personnel_id in involvement.personnel_keys)
            or (f.email and f.email in involvement.emails)):
        reasons.append(CONFLICT_OF_INTEREST)
    if same_agency and p.unit is not None and p.unit in involvement.units:
        reasons.append(UNIT_CONFLICT)
    return tuple(reasons)


def serves(profile: FacilitatorProfile, region: str, mode: Mode) -> bool:
    """Serves the region, or the session is virtual and the facilitator accepts virtual sessions."""
    return region in profile.regions or (mode == VIRTUAL and profile.virtual_ok)


def static_reasons(f: Facilitator, *, kind: SessionKind, mode: Mode, region: str, language: str,
                   involvement: Involvement | None, on_date: date) -> tuple[str, ...]:
    """The reasons that do not depend on the facilitator's other commitments."""
    p = f.profile
    reasons: list[str] = []
    if not p.active:
        reasons.append(INACTIVE)
    reasons.extend(certification_reasons(f, kind, on_date))
    if language not in p.languages:
        reasons.append(LANGUAGE_MISMATCH)
    if not serves(p, region, mode):
        reasons.append(REGION_NOT_SERVED)
    if involvement is not None:
        reasons.extend(conflict_reasons(f, involvement))
    return tuple(reasons)


def cap_reasons(f: Facilitator, start: datetime, schedule: Schedule, policy: PlanningPolicy,
                ignore_session_ref: str | None = None) -> tuple[str, ...]:
    """daily_cap / weekly_cap for one more group session starting at `start` (facilitator's local days)."""
    if not schedule.has_group_sessions(f.id):
        return ()
    tz = f.calendar.tz
    # Local dates day-6 .. day+6 lie well inside eight days either side in UTC.
    nearby = schedule.group_starts_between(f.id, start - timedelta(days=8), start + timedelta(days=8),
                                           ignore_session_ref=ignore_session_ref)
    days = sorted(s.astimezone(tz).date().toordinal() for s in nearby)
    return caps_on(start.astimezone(tz).date().toordinal(), days, policy)


def caps_on(day: int, days: Sequence[int], policy: PlanningPolicy) -> tuple[str, ...]:
    """The cap rule itself: `days` are the local-date ordinals of existing group sessions, sorted."""
    reasons = []
    if bisect_right(days, day) - bisect_left(days, day) >= policy.max_group_sessions_per_day:
        reasons.append(DAILY_CAP)
    # Every 7-day window that would contain the new session must stay within the cap.
    for first in range(day - 6, day + 1):
        if bisect_right(days, first + 6) - bisect_left(days, first) + 1 > policy.max_group_sessions_per_7_days:
            reasons.append(WEEKLY_CAP)
            break
    return tuple(reasons)


def dynamic_reasons(f: Facilitator, *, kind: SessionKind, starts_at: datetime, ends_at: datetime,
                    schedule: Schedule, policy: PlanningPolicy, ignore_session_ref: str | None = None,
                    stop_at_first: bool = False, check_caps: bool = True) -> tuple[str, ...]:
    """The reasons that depend on time: availability, time off, other bookings, caps (UTC inputs).

    The session plus the buffer on each side must lie inside availability and must not overlap
    any other booking's own [start, end): two sessions are thus at least one buffer apart.
    `check_caps=False` is for a caller that asked cap_reasons itself (the planner memoizes it).
    """
    buffer = timedelta(minutes=policy.buffer_minutes)
    lo, hi = starts_at - buffer, ends_at + buffer
    reasons: list[str] = []
    # Cheapest and most often decisive first: most facilitators have few bookings.
    if schedule.overlaps(f.id, lo, hi, ignore_session_ref=ignore_session_ref):
        if stop_at_first:
            return (DOUBLE_BOOKED,)
        reasons.append(DOUBLE_BOOKED)
    if not f.calendar.covers(lo, hi):
        if stop_at_first:
            return (UNAVAILABLE,)
        reasons.append(UNAVAILABLE)
    if f.calendar.time_off(lo, hi):
        if stop_at_first:
            return (TIME_OFF,)
        reasons.append(TIME_OFF)
    if check_caps and kind in GROUP_KINDS:
        reasons.extend(cap_reasons(f, starts_at, schedule, policy, ignore_session_ref))
    order = (UNAVAILABLE, TIME_OFF, DOUBLE_BOOKED, DAILY_CAP, WEEKLY_CAP)
    return tuple(r for r in order if r in reasons)


def ineligibility_reasons(facilitator: FacilitatorProfile, *, kind: SessionKind, starts_at: datetime,
                          ends_at: datetime, mode: Mode, region: str, language: str,
                          incident: IncidentFacts | None, schedule: Schedule, policy: PlanningPolicy,
                          ignore_session_ref: str | None = None) -> tuple[str, ...]:
    """Every reason the facilitator cannot take this session; an empty tuple means eligible."""
    return facilitator_reasons(
        Facilitator(facilitator), kind=kind, starts_at=starts_at, ends_at=ends_at, mode=mode,
        region=region, language=language, incident=incident,
        involvement=Involvement.of(incident) if incident is not None else None,
        schedule=schedule, policy=policy, ignore_session_ref=ignore_session_ref)


def facilitator_reasons(f: Facilitator, *, kind: SessionKind, starts_at: datetime, ends_at: datetime,
                        mode: Mode, region: str, language: str, incident: IncidentFacts | None,
                        involvement: Involvement | None, schedule: Schedule, policy: PlanningPolicy,
                        ignore_session_ref: str | None = None) -> tuple[str, ...]:
    """ineligibility_reasons for a pool entry (its calendar cache is reused)."""
    require_aware("starts_at", starts_at)
    require_aware("ends_at", ends_at)
    start, end = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    if end <= start:
        raise ValueError("ends_at: must be after starts_at")
    # The certificate must be valid on the date the session is held, as the agency counts dates.
    on_date = local_date(start, incident.timezone if incident is not None else f.profile.timezone)
    return static_reasons(f, kind=kind, mode=mode, region=region, language=language,
                          involvement=involvement, on_date=on_date) + dynamic_reasons(
        f, kind=kind, starts_at=start, ends_at=end, schedule=schedule, policy=policy,
        ignore_session_ref=ignore_session_ref)
