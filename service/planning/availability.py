"""A facilitator's availability: weekly windows in their zone, minus dated time off, in UTC."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from service.planning.timegrid import wall_to_utc
from service.planning.types import Interval, WeeklyWindow

UTC = timezone.utc
_ONE_DAY = timedelta(days=1)
_BLOCK_DAYS = 7
# Local dates differ from UTC dates by at most one day; two days of margin covers windows
# that start the evening before and run past midnight.
_MARGIN_DAYS = 2


def merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted union of intervals; touching intervals merge (a window ending at midnight meets the next)."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


class FacilitatorCalendar:
    """Answers "is this range inside the weekly windows / in time off" with cached UTC intervals."""

    __slots__ = ("zone", "tz", "_by_weekday", "_blocks", "_off_starts", "_off_ends")

    def __init__(self, weekly: Iterable[WeeklyWindow], exceptions: Iterable[Interval], zone: str) -> None:
        self.zone = zone
        self.tz = ZoneInfo(zone)
        self._by_weekday: tuple[list[WeeklyWindow], ...] = tuple([] for _ in range(7))
        for w in weekly:
            self._by_weekday[w.day].append(w)
        self._blocks: dict[int, tuple[list[datetime], list[datetime]]] = {}
        off = merge((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in exceptions)
        self._off_starts = [s for s, _ in off]
        self._off_ends = [e for _, e in off]

    def windows_between(self, first: date, last: date) -> list[tuple[datetime, datetime]]:
        """Merged UTC intervals of the weekly windows that start on local dates first..last."""
        raw = []
        day = first
        while day <= last:
            for w in self._by_weekday[day.weekday()]:
                start = wall_to_utc(day, w.start, self.tz)
                # end <= start (including end == 00:00) means the window runs into the next day.
                end = wall_to_utc(day + _ONE_DAY if w.end <= w.start else day, w.end, self.tz)
                if end > start:
                    raw.append((start, end))
            day += _ONE_DAY
        return merge(raw)

    def covers(self, start: datetime, end: datetime) -> bool:
        """True when [start, end] lies inside one stretch of weekly availability (UTC inputs)."""
        starts, ends = self._spans(start, end)
        i = bisect_right(starts, start) - 1
        return i >= 0 and ends[i] >= end

    def free_mask(self, ranges: Sequence[tuple[datetime, datetime]]) -> int:
        """Bit i set when ranges[i] is covered by weekly availability and meets no time off (UTC inputs)."""
        if not ranges:
            return 0
        starts, ends = self._spans(min(a for a, _ in ranges), max(b for _, b in ranges))
        mask = 0
        for i, (a, b) in enumerate(ranges):
            j = bisect_right(starts, a) - 1
            if j >= 0 and ends[j] >= b and not self.time_off(a, b):
                mask |= 1 << i
        return mask

    def _spans(self, start: datetime, end: datetime) -> tuple[list[datetime], list[datetime]]:
        """Merged availability stretches around [start, end], from per-week blocks computed once."""
        first = start.date().toordinal() // _BLOCK_DAYS
        last = end.date().toordinal() // _BLOCK_DAYS
        if first == last:
            return self._block(first)
        pieces = []
        for block in range(first, last + 1):
            starts, ends = self._block(block)
            pieces.extend(zip(starts, ends))
        # Neighbouring blocks overlap by their margins; merging joins stretches that cross a boundary.
        merged = merge(pieces)
        return [s for s, _ in merged], [e for _, e in merged]

    def _block(self, block: int) -> tuple[list[datetime], list[datetime]]:
        cached = self._blocks.get(block)
        if cached is None:
            first = date.fromordinal(block * _BLOCK_DAYS) - timedelta(days=_MARGIN_DAYS)
            last = date.fromordinal(block * _BLOCK_DAYS + _BLOCK_DAYS - 1) + timedelta(days=_MARGIN_DAYS)
            spans = self.windows_between(first, last)
            cached = self._blocks[block] = ([s for s, _ in spans], [e for _, e in spans])
        return cached

    def time_off(self, start: datetime, end: datetime) -> bool:
        """True when [start, end) overlaps a dated unavailability (UTC inputs)."""
        if not self._off_starts:
            return False
        # Merged exceptions are disjoint and sorted, so only the last one starting before `end` matters.
        i = bisect_left(self._off_starts, end) - 1
        return i >= 0 and self._off_ends[i] > start
