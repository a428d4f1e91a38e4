"""The local-time grid of possible session starts, correct across DST changes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
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


def grid_starts(window: Interval, *, not_before: datetime, minutes: int, zone: str,
                policy: PlanningPolicy) -> list[datetime]:
    """Every allowed UTC start of a `minutes`-long session inside `window`, at or after `not_before`."""
    tz = ZoneInfo(zone)
    length = timedelta(minutes=minutes)
    lo = max(window.start, not_before).astimezone(UTC)
    hi = window.end.astimezone(UTC)
    if lo + length > hi:
        return []
    step = policy.grid_minutes
    first = -(-(policy.earliest_start.hour * 60 + policy.earliest_start.minute) // step) * step
    last = policy.latest_start.hour * 60 + policy.latest_start.minute
    minutes_of_day = range(first, last + 1, step)
    starts: list[datetime] = []
    day = lo.astimezone(tz).date()
    last_day = hi.astimezone(tz).date()
    while day <= last_day:
        if policy.latest_end == time(0):
            end_limit = wall_to_utc(day + _ONE_DAY, time(0), tz)
        else:
            end_limit = wall_to_utc(day, policy.latest_end, tz)
        midnight = datetime.combine(day, time(0))
        for m in minutes_of_day:
            for start in _instants(midnight + timedelta(minutes=m), tz):
                end = start + length
                if start >= lo and end <= hi and end <= end_limit:
                    starts.append(start)
        day += _ONE_DAY
    starts.sort()
    return starts


def local_date(instant: datetime, zone: str) -> date:
    """The calendar date of `instant` in `zone`."""
    return instant.astimezone(ZoneInfo(zone)).date()
