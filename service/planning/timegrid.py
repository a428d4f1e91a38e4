"""The local-time grid of possible session starts, correct across DST changes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from service.planning.policy import PlanningPolicy
from service.planning.types import Interval

UTC = timezone.utc
_ONE_DAY = timedelta(days=1)


def wall_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time; a repeated time gives its first occurrence.

    A wall time skipped by a spring-forward change is read with the offset in force before
    the change (zoneinfo's fold=0), so it lands as much later as the clock jumped.
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _instants(wall: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """Every UTC instant showing `wall` on the local clock: none in a DST gap, two in a repeat."""
    off0 = wall.replace(tzinfo=zone).utcoffset()
    off1 = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert off0 is not None and off1 is not None
    u0 = (wall - off0).replace(tzinfo=UTC)
    u1 = (wall - off1).replace(tzinfo=UTC)
    if u0 == u1:
        return (u0,)
    # In a repeated hour the first reading (fold=0) is the earlier instant; in a gap it is the later.
    return (u0, u1) if u0 < u1 else ()


@lru_cache(maxsize=4096)
def day_starts(day: date, *, minutes: int, zone: str, policy: PlanningPolicy) -> tuple[datetime, ...]:
    """Every allowed UTC start of a `minutes`-long session on one local date, in time order."""
    tz = ZoneInfo(zone)
    length = timedelta(minutes=minutes)
    step = policy.grid_minutes
    first = -(-(policy.earliest_start.hour * 60 + policy.earliest_start.minute) // step) * step
    last = policy.latest_start.hour * 60 + policy.latest_start.minute
    if policy.latest_end == time(0):
        end_limit = wall_to_utc(day + _ONE_DAY, time(0), tz)
    else:
        end_limit = wall_to_utc(day, policy.latest_end, tz)
    midnight = datetime.combine(day, time(0))
    starts = [start for m in range(first, last + 1, step)
              for start in _instants(midnight + timedelta(minutes=m), tz) if start + length <= end_limit]
    return tuple(sorted(starts))


def grid_starts(window: Interval, *, not_before: datetime, minutes: int, zone: str,
                policy: PlanningPolicy) -> list[datetime]:
    """Every allowed UTC start of a `minutes`-long session inside `window`, at or after `not_before`."""
    return [start for _, starts in grid_days(window, not_before=not_before, minutes=minutes, zone=zone,
                                             policy=policy) for start in starts]


def grid_days(window: Interval, *, not_before: datetime, minutes: int, zone: str,
              policy: PlanningPolicy) -> list[tuple[date, tuple[datetime, ...]]]:
    """grid_starts by local date; each date's starts are a contiguous run of day_starts for that date."""
    tz = ZoneInfo(zone)
    length = timedelta(minutes=minutes)
    lo = max(window.start, not_before).astimezone(UTC)
    hi = window.end.astimezone(UTC)
    if lo + length > hi:
        return []
    days = []
    day, last_day = lo.astimezone(tz).date(), hi.astimezone(tz).date()
    while day <= last_day:
        starts = tuple(s for s in day_starts(day, minutes=minutes, zone=zone, policy=policy)
                       if s >= lo and s + length <= hi)
        if starts:
            days.append((day, starts))
        day += _ONE_DAY
    return days


def local_date(instant: datetime, zone: str) -> date:
    """The calendar date of `instant` in `zone`."""
    return instant.astimezone(ZoneInfo(zone)).date()
