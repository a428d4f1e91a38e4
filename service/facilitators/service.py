"""Facilitator roster use cases, and the facilitator as the planner sees it."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Mapping, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from service.agencies.models import Agency
from service.auth.service import Principal
from service.calendars.service import CalendarToken, CalendarUrls, calendar_urls, issue_token
from service.errors import Forbidden, InvalidInput, NotFound
from service.facilitators import links
from service.facilitators.models import Facilitator
from service.facilitators.schemas import DAYS, MAX_EXCEPTIONS
from service.followups.outgoing import context
from service.i18n import N_
from service.pagination import newest_first, row_id
from service.planning import Certification, FacilitatorProfile, Interval, WeeklyWindow


@dataclass(frozen=True, slots=True)
class FacilitatorView:
    """A facilitator as the API shows it."""

    id: int
    name: str
    email: str
    kind: str
    agency_code: str | None
    unit: str | None
    external_id: str | None
    languages: list[str]
    regions: list[str]
    virtual_ok: bool
    timezone: str
    active: bool
    certifications: list[dict[str, Any]]
    availability: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    # Only in the answer that issues the feed secret: just its hash is stored.
    calendar_url: CalendarUrls | None = None


def present(f: Facilitator) -> FacilitatorView:
    """The API view of a facilitator."""
    return FacilitatorView(
        id=f.id, name=f.name, email=f.email, kind=f.kind, agency_code=f.agency.code if f.agency else None,
        unit=f.unit, external_id=f.external_id, languages=list(f.languages), regions=list(f.regions),
        virtual_ok=f.virtual_ok, timezone=f.timezone, active=f.active,
        certifications=[{"name": c["name"], "expires_on": date.fromisoformat(c["expires_on"])} for c in f.certifications],
        availability={
            "weekly": [{"day": w["day"], "start": time.fromisoformat(w["start"]), "end": time.fromisoformat(w["end"])} for w in f.weekly],
            "exceptions": [{"start": datetime.fromisoformat(e["start"]), "end": datetime.fromisoformat(e["end"])} for e in f.exceptions],
        },
        created_at=f.created_at, updated_at=f.updated_at,
    )


class RosterRow(NamedTuple):
    """A facilitator's planning columns as fetched, JSON decoded: what `to_profile` reads."""

    id: int
    kind: str
    agency_id: int | None
    unit: str | None
    email: str
    external_id: str | None
    active: bool
    languages: list[str]
    regions: list[str]
    virtual_ok: bool
    timezone: str
    certifications: list[dict[str, str]]
    weekly: list[dict[str, str]]
    exceptions: list[dict[str, str]]


# JSON columns are fetched as their text: hashable, so a fetched row can key the profile it converts to.
_JSON_FIELDS = frozenset({"languages", "regions", "certifications", "weekly", "exceptions"})
_ROSTER_COLUMNS = tuple(
    cast(getattr(Facilitator, name), Text) if name in _JSON_FIELDS else getattr(Facilitator, name)
    for name in RosterRow._fields
)
# Profiles by the exact row they were converted from: a changed facilitator is a new key, so an
# entry is never stale. Per process, bounded by clearing.
_PROFILES: dict[tuple[Any, ...], FacilitatorProfile] = {}
PROFILE_CACHE_SIZE = 50_000


def _profile(row: tuple[Any, ...]) -> FacilitatorProfile:
    """The planner's profile of a fetched roster row, converted once per distinct row."""
    profile = _PROFILES.get(row)
    if profile is None:
        if len(_PROFILES) >= PROFILE_CACHE_SIZE:
            _PROFILES.clear()
        values = [json.loads(v) if name in _JSON_FIELDS else v for name, v in zip(RosterRow._fields, row)]
        profile = _PROFILES[row] = to_profile(RosterRow(*values))
    return profile


def planning_profiles(db: Session, ids: list[int] | None = None) -> list[FacilitatorProfile]:
    """The planner's profiles of every facilitator (or of some), by id; unchanged rows are not converted again."""
    query = select(*_ROSTER_COLUMNS).order_by(Facilitator.id)
    if ids is not None:
        query = query.where(Facilitator.id.in_(ids))
    return [_profile(tuple(row)) for row in db.execute(query)]


def to_profile(f: Facilitator | RosterRow) -> FacilitatorProfile:
    """The facilitator as the pure planner sees it."""
    return FacilitatorProfile(
        id=f.id, kind=f.kind, agency_id=f.agency_id, unit=f.unit, email=f.email.lower(), personnel_id=f.external_id,  # type: ignore[arg-type]
        active=f.active, languages=frozenset(f.languages), regions=frozenset(f.regions), virtual_ok=f.virtual_ok,
        timezone=f.timezone,
        certifications=tuple(Certification(c["name"], date.fromisoformat(c["expires_on"])) for c in f.certifications),
        weekly=tuple(
            WeeklyWindow(DAYS.index(w["day"]), time.fromisoformat(w["start"]), time.fromisoformat(w["end"])) for w in f.weekly
        ),
        exceptions=tuple(Interval(datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"])) for e in f.exceptions),
    )


def _store_certifications(certifications: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"name": c["name"], "expires_on": c["expires_on"].isoformat()} for c in certifications]


def _store_weekly(weekly: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"day": w["day"], "start": w["start"].strftime("%H:%M"), "end": w["end"].strftime("%H:%M")} for w in weekly]


def _store_exceptions(exceptions: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"start": e["start"].isoformat(), "end": e["end"].isoformat()} for e in exceptions]


def _check_kind_certifications(kind: str, certifications: list[dict[str, str]]) -> None:
    if kind == "clinician" and not any(c["name"] == "LICENSE" for c in certifications):
        raise InvalidInput(
            "A clinician needs a LICENSE certification.",
            errors={"certifications": ["A clinician needs a LICENSE certification."]},
        )


def _agency_for_new(db: Session, caller: Principal, code: str | None) -> int | None:
    if caller.role == "admin":
        if code is None:
            return None
        agency_id = db.scalar(select(Agency.id).where(Agency.code == code))
        if agency_id is None:
            raise InvalidInput(f"No agency with code {code!r}.", errors={"agency": ["Unknown agency."]})
        return agency_id
    own = db.scalar(select(Agency.code).where(Agency.id == caller.agency_id))
    if code not in (None, own):
        raise Forbidden("A coordinator adds facilitators to their own agency only.")
    return caller.agency_id


def create(*, db: Session, caller: Principal, data: Mapping[str, Any], base_url: str | None = None) -> FacilitatorView:
    """Add a facilitator to the roster with a calendar feed; its URL (under `base_url`) is shown this once."""
    certifications = _store_certifications(data["certifications"])
    _check_kind_certifications(data["kind"], certifications)
    facilitator = Facilitator(
        agency_id=_agency_for_new(db, caller, data.get("agency")),
        name=data["name"], email=data["email"], kind=data["kind"], unit=data.get("unit"),
        external_id=data.get("external_id"), languages=list(data["languages"]), regions=list(data["regions"]),
        virtual_ok=data["virtual_ok"], timezone=data["timezone"], active=data.get("active", True),
        certifications=certifications,
        weekly=_store_weekly(data["availability"]["weekly"]),
        exceptions=_store_exceptions(data["availability"]["exceptions"]),
    )
    secret = issue_token(facilitator)
    db.add(facilitator)
    db.commit()
    return replace(present(facilitator), calendar_url=calendar_urls(base_url, secret) if base_url else None)


def visible(*, db: Session, caller: Principal, facilitator_id: int, for_update: bool = False) -> Facilitator:
    """A facilitator the caller may see: admin all, coordinator their agency's, a facilitator itself."""
    query = select(Facilitator).where(Facilitator.id == facilitator_id)
    if caller.role == "facilitator":
        query = query.where(Facilitator.id == caller.facilitator_id)
    elif caller.role != "admin":
        query = query.where(Facilitator.agency_id == caller.agency_id)
    if for_update:
        query = query.with_for_update(of=Facilitator)
    facilitator = db.scalar(query)
    if facilitator is None:
        raise NotFound(f"No facilitator {facilitator_id}.")
    return facilitator


def rotate_calendar_token(*, db: Session, caller: Principal, facilitator_id: int, base_url: str) -> CalendarToken:
    """Issue a new calendar feed secret; the old feed URL answers 404 from now on."""
    facilitator = visible(db=db, caller=caller, facilitator_id=facilitator_id, for_update=True)
    secret = issue_token(facilitator)
    db.commit()
    return CalendarToken(facilitator_id=facilitator.id, calendar_url=calendar_urls(base_url, secret))


def get(*, db: Session, caller: Principal, facilitator_id: int) -> FacilitatorView:
    """One facilitator."""
    return present(visible(db=db, caller=caller, facilitator_id=facilitator_id))


def list_page(*, db: Session, caller: Principal, limit: int, cursor: str | None) -> tuple[list[FacilitatorView], str | None]:
    """The roster the caller manages, newest first."""
    query = select(Facilitator)
    if caller.role != "admin":
        query = query.where(Facilitator.agency_id == caller.agency_id)
    rows, next_cursor = newest_first(db, query, at=Facilitator.created_at, id=Facilitator.id, limit=limit, cursor=cursor,
                                     parse_id=row_id)
    return [present(r) for r in rows], next_cursor


def provincial_pool(*, db: Session) -> list[FacilitatorView]:
    """The facilitators of no agency, who may serve every agency's incidents (coordinators see them, cannot edit them)."""
    return [present(f) for f in db.scalars(select(Facilitator).where(Facilitator.agency_id.is_(None)).order_by(Facilitator.id))]


def apply_changes(facilitator: Facilitator, changes: Mapping[str, Any]) -> None:
    """Write validated changes onto the row (the caller re-plans and commits)."""
    for name in ("name", "email", "unit", "external_id", "virtual_ok", "timezone", "active"):
        if name in changes:
            setattr(facilitator, name, changes[name])
    if "languages" in changes:
        facilitator.languages = list(changes["languages"])
    if "regions" in changes:
        facilitator.regions = list(changes["regions"])
    if "certifications" in changes:
        facilitator.certifications = _store_certifications(changes["certifications"])
    _check_kind_certifications(facilitator.kind, facilitator.certifications)
    if "weekly" in changes:
        facilitator.weekly = _store_weekly(changes["weekly"])
    if "exceptions" in changes:
        facilitator.exceptions = _store_exceptions(changes["exceptions"])


# Fields the eligibility and conflict-of-interest rules read: only a coordinator or admin changes them.
COORDINATOR_ONLY = frozenset({"active", "certifications", "external_id", "regions", "unit", "email"})


def _check_changes(caller: Principal, changes: Mapping[str, Any]) -> None:
    if caller.role == "facilitator" and (COORDINATOR_ONLY & set(changes)):
        raise Forbidden(
            "A facilitator may not change their own status, certifications, regions, unit, email or personnel id: "
            "the conflict-of-interest and eligibility rules read them."
        )


def update(*, db: Session, caller: Principal, facilitator_id: int,
           changes: Mapping[str, Any] | Callable[[Facilitator], Mapping[str, Any]], now: datetime) -> FacilitatorView:
    """Change a facilitator; sessions they can no longer take get a replacement.

    `changes` may be a function of the facilitator as they stand once the change holds the pool,
    for a change made from their current values (adding a period to their time off); when it
    returns no change, nothing is written.
    """
    from service.sessions.service import commit, retrying, revalidate_facilitator

    if isinstance(changes, Mapping):
        _check_changes(caller, changes)

    def attempt() -> Facilitator:
        facilitator = visible(db=db, caller=caller, facilitator_id=facilitator_id)
        wanted = changes if isinstance(changes, Mapping) else changes(facilitator)
        if not wanted:
            return facilitator
        _check_changes(caller, wanted)
        apply_changes(facilitator, wanted)
        facilitator.updated_at = now
        revalidate_facilitator(db, facilitator=facilitator, now=now)
        commit(db)
        return facilitator

    return present(retrying(db, attempt))


def set_availability(*, db: Session, caller: Principal, facilitator_id: int, availability: Mapping[str, Any], now: datetime) -> FacilitatorView:
    """Replace weekly windows and exceptions; sessions that no longer fit get a replacement."""
    return update(
        db=db, caller=caller, facilitator_id=facilitator_id, now=now,
        changes={"weekly": availability["weekly"], "exceptions": availability["exceptions"]},
    )


# -- a facilitator's own page: their link, their time off -----------------------------------------------

# The longest period of time off one form adds; a longer leave is several periods (or a coordinator's change).
MAX_TIME_OFF = timedelta(days=366)


def from_link(*, db: Session, token: str, now: datetime) -> Facilitator:
    """The active facilitator a signed page link names.

    links.InvalidToken when the token is forged, malformed or a participant's; links.ExpiredToken
    once it has expired; NotFound when it names no active facilitator (deactivated, removed).
    """
    claim = links.verify(context(db).keys, token, now=now)
    facilitator = db.get(Facilitator, claim.facilitator_id)
    if facilitator is None or not facilitator.active:
        raise NotFound(f"No facilitator {claim.facilitator_id}.")
    return facilitator


def link_caller(facilitator: Facilitator) -> Principal:
    """The caller a facilitator's own signed link makes: the facilitator, with no API key."""
    return Principal(key_id=None, role="facilitator", agency_id=facilitator.agency_id, facilitator_id=facilitator.id)


@dataclass(frozen=True, slots=True)
class TimeOff:
    """A dated period of unavailability, in the facilitator's time zone."""

    start: datetime
    end: datetime

    @property
    def from_midnight(self) -> bool:
        """Whether it starts at the start of a day."""
        return self.start.time() == time(0)

    @property
    def to_midnight(self) -> bool:
        """Whether it ends at the end of a day."""
        return self.end.time() == time(0)

    @property
    def last_day(self) -> datetime:
        """The last day it covers (the day before an end at midnight)."""
        return self.end - timedelta(days=1) if self.to_midnight else self.end


def _periods(facilitator: Facilitator) -> list[TimeOff]:
    zone = ZoneInfo(facilitator.timezone)
    return [TimeOff(datetime.fromisoformat(e["start"]).astimezone(zone), datetime.fromisoformat(e["end"]).astimezone(zone))
            for e in facilitator.exceptions]


def _exceptions(periods: list[TimeOff]) -> dict[str, list[dict[str, datetime]]]:
    return {"exceptions": [{"start": p.start, "end": p.end} for p in periods]}


def time_off(facilitator: Facilitator, *, now: datetime) -> list[TimeOff]:
    """The facilitator's time off that has not ended, earliest first."""
    return sorted((p for p in _periods(facilitator) if p.end > now), key=lambda p: (p.start, p.end))


def _new_time_off(facilitator: Facilitator, start: datetime, end: datetime, now: datetime) -> TimeOff:
    """A period typed in local time, checked: after its start, not in the past, not too long."""
    zone = ZoneInfo(facilitator.timezone)
    period = TimeOff(start.replace(tzinfo=zone), end.replace(tzinfo=zone))
    errors: dict[str, list[str]] = {}
    if period.start.date() < now.astimezone(zone).date():
        errors["start"] = [N_("The start cannot be before today.")]
    if period.end <= period.start:
        errors["end"] = [N_("The end must be after the start.")]
    elif period.end <= now:
        errors["end"] = [N_("The end must be in the future.")]
    elif period.end - period.start > MAX_TIME_OFF:
        errors["end"] = [N_("A period of time off can last at most 366 days.")]
    if len(facilitator.exceptions) >= MAX_EXCEPTIONS:
        errors["start"] = [N_("You have too many periods of time off: remove some first.")]
    if errors:
        raise InvalidInput("The time off is not valid.", errors=errors)
    return period


def add_time_off(*, db: Session, caller: Principal, facilitator_id: int, start: datetime, end: datetime,
                 now: datetime) -> FacilitatorView:
    """Add a period of time off given in the facilitator's local time (naive); sessions it breaks are re-staffed.

    The same change as `set_availability` with one more exception; the same period twice is kept once.
    """
    def changes(facilitator: Facilitator) -> Mapping[str, Any]:
        period = _new_time_off(facilitator, start, end, now)
        periods = _periods(facilitator)
        return {} if period in periods else _exceptions([*periods, period])

    return update(db=db, caller=caller, facilitator_id=facilitator_id, changes=changes, now=now)


def remove_time_off(*, db: Session, caller: Principal, facilitator_id: int, start: datetime, end: datetime,
                    now: datetime) -> FacilitatorView:
    """Remove a period of time off (by its instants); removing one that is gone changes nothing."""
    def changes(facilitator: Facilitator) -> Mapping[str, Any]:
        periods = _periods(facilitator)
        kept = [p for p in periods if (p.start, p.end) != (start, end)]
        return {} if len(kept) == len(periods) else _exceptions(kept)

    return update(db=db, caller=caller, facilitator_id=facilitator_id, changes=changes, now=now)
