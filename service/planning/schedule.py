"""The index of facilitators' commitments: overlap, per-day and rolling-week questions in log time."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import count
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator, Mapping

from service.planning.policy import PlanningPolicy
from service.planning.types import Booking

UTC = timezone.utc
_TOKENS = count(1)


class _Track:
    """One facilitator's bookings, sorted by start, with a separate list of group-session starts."""

    __slots__ = ("starts", "bookings", "group_starts", "group_bookings", "longest", "revision")

    def __init__(self) -> None:
        self.starts: list[datetime] = []
        self.bookings: list[Booking] = []
        self.group_starts: list[datetime] = []
        self.group_bookings: list[Booking] = []
        self.longest = timedelta(0)
        self.revision = 0  # bumped on every change, so callers can cache answers about this track


def _order(b: Booking) -> tuple[datetime, str]:
    return b.start, b.session_ref


class Schedule:
    """Mutable index of every facilitator's commitments (bookings), grouped by session_ref."""

    def __init__(self, bookings: Iterable[Booking] = (), *, earlier_loads: Mapping[int, int] | None = None,
                 earlier: tuple[datetime, datetime] | None = None) -> None:
        """`earlier_loads` counts, per facilitator, the sessions started in the `earlier` span [since, until)
        that are not given as bookings: they count towards `load` but need no index."""
        self.token = next(_TOKENS)  # tells schedules apart in memos that outlive one planning call
        self._tracks: dict[int, _Track] = {}
        self._by_ref: dict[str, list[Booking]] = {}
        if (earlier_loads is None) != (earlier is None):
            raise ValueError("earlier_loads and earlier go together")
        self._earlier_loads = dict(earlier_loads or {})
        self._earlier = earlier
        for booking in bookings:
            self.add(booking)

    def add(self, booking: Booking) -> None:
        """Record a commitment; a facilitator cannot hold the same session twice."""
        if booking.start.tzinfo is not UTC or booking.end.tzinfo is not UTC:
            # Same-zone aware datetimes compare by wall clock, which is wrong across a DST repeat.
            booking = replace(booking, start=booking.start.astimezone(UTC), end=booking.end.astimezone(UTC))
        same = self._by_ref.setdefault(booking.session_ref, [])
        if any(b.facilitator_id == booking.facilitator_id for b in same):
            raise ValueError(f"facilitator {booking.facilitator_id} already holds {booking.session_ref!r}")
        same.append(booking)
        track = self._tracks.get(booking.facilitator_id)
        if track is None:
            track = self._tracks[booking.facilitator_id] = _Track()
        track.revision += 1
        i = bisect_right(track.bookings, _order(booking), key=_order)
        track.bookings.insert(i, booking)
        track.starts.insert(i, booking.start)
        track.longest = max(track.longest, booking.end - booking.start)
        if booking.group:
            j = bisect_right(track.group_bookings, _order(booking), key=_order)
            track.group_bookings.insert(j, booking)
            track.group_starts.insert(j, booking.start)

    def remove(self, session_ref: str) -> tuple[Booking, ...]:
        """Drop every facilitator's booking of one session and return them."""
        removed = tuple(self._by_ref.pop(session_ref, ()))
        for booking in removed:
            track = self._tracks[booking.facilitator_id]
            track.revision += 1
            i = track.bookings.index(booking)
            del track.bookings[i], track.starts[i]
            if booking.group:
                j = track.group_bookings.index(booking)
                del track.group_bookings[j], track.group_starts[j]
        return removed

    def session(self, session_ref: str) -> tuple[Booking, ...]:
        """The bookings of one session (one per facilitator)."""
        return tuple(self._by_ref.get(session_ref, ()))

    def bookings_of(self, facilitator_id: int) -> tuple[Booking, ...]:
        """A facilitator's bookings in start order."""
        track = self._tracks.get(facilitator_id)
        return tuple(track.bookings) if track else ()

    def __iter__(self) -> Iterator[Booking]:
        for bookings in self._by_ref.values():
            yield from bookings

    def __len__(self) -> int:
        return sum(len(b) for b in self._by_ref.values())

    def load(self, facilitator_id: int, now: datetime, policy: PlanningPolicy) -> int:
        """How many sessions the facilitator started in the lookback period before `now`."""
        since = now - timedelta(days=policy.load_lookback_days)
        earlier = 0
        if self._earlier is not None:
            if self._earlier[0] != since:
                raise ValueError("the earlier loads were counted for another lookback period")
            earlier, since = self._earlier_loads.get(facilitator_id, 0), self._earlier[1]
        track = self._tracks.get(facilitator_id)
        if track is None:
            return earlier
        return earlier + bisect_left(track.starts, now) - bisect_left(track.starts, since)

    def overlaps(self, facilitator_id: int, start: datetime, end: datetime, *,
                 ignore_session_ref: str | None = None) -> bool:
        """True when [start, end) meets one of the facilitator's bookings (other than the ignored one)."""
        return bool(self._meeting(facilitator_id, start, end, ignore_session_ref, first_only=True))

    def busy(self, facilitator_id: int, start: datetime, end: datetime, *,
             ignore_session_ref: str | None = None) -> list[tuple[datetime, datetime]]:
        """The (start, end) of the facilitator's bookings that meet [start, end), latest first."""
        return self._meeting(facilitator_id, start, end, ignore_session_ref, first_only=False)

    def _meeting(self, facilitator_id: int, start: datetime, end: datetime, ignore: str | None,
                 first_only: bool) -> list[tuple[datetime, datetime]]:
        track = self._tracks.get(facilitator_id)
        if track is None:
            return []
        starts, bookings = track.starts, track.bookings
        # No booking is longer than `longest`, so earlier starts cannot reach `start`.
        earliest_relevant = start - track.longest
        found = []
        i = bisect_left(starts, end) - 1
        while i >= 0 and starts[i] > earliest_relevant:
            b = bookings[i]
            if b.end > start and b.session_ref != ignore:
                found.append((b.start, b.end))
                if first_only:
                    break
            i -= 1
        return found

    def group_starts_between(self, facilitator_id: int, lo: datetime, hi: datetime, *,
                             ignore_session_ref: str | None = None) -> list[datetime]:
        """Starts of the facilitator's group sessions in [lo, hi)."""
        track = self._tracks.get(facilitator_id)
        if track is None or not track.group_starts:
            return []
        i, j = bisect_left(track.group_starts, lo), bisect_left(track.group_starts, hi)
        return [b.start for b in track.group_bookings[i:j] if b.session_ref != ignore_session_ref]

    def revision(self, facilitator_id: int) -> int:
        """A number that changes whenever the facilitator's bookings change."""
        track = self._tracks.get(facilitator_id)
        return track.revision if track else 0

    def has_bookings(self, facilitator_id: int) -> bool:
        """Cheap pre-check before overlap questions."""
        track = self._tracks.get(facilitator_id)
        return bool(track and track.starts)

    def group_starts(self, facilitator_id: int, *, ignore_session_ref: str | None = None) -> list[datetime]:
        """Starts of all the facilitator's group sessions, in order."""
        track = self._tracks.get(facilitator_id)
        if track is None:
            return []
        return [b.start for b in track.group_bookings if b.session_ref != ignore_session_ref]

    def has_group_sessions(self, facilitator_id: int) -> bool:
        """Cheap pre-check before the per-day and rolling-week caps."""
        track = self._tracks.get(facilitator_id)
        return bool(track and track.group_starts)
