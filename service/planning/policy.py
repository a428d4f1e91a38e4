"""Planning policy: every number of the domain rules, with its default, overridable per agency."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import time, timedelta
from typing import Any, Mapping

Phases = tuple[tuple[str, int], ...]

_TIMEDELTA_FIELDS = frozenset({
    "debriefing_opens_after", "debriefing_closes_after", "defusing_opens_after",
    "defusing_closes_after", "individual_within",
})
_TIME_FIELDS = frozenset({"earliest_start", "latest_start", "latest_end"})
_PHASE_FIELDS = frozenset({"debriefing_phases", "defusing_phases"})
# Zero is meaningful for these (no buffer, no lookback); every other count must be positive.
_NON_NEGATIVE_INTS = frozenset({"buffer_minutes", "load_lookback_days", "notice_minutes"})
# A session fits in a day (the planner's grid is a day's), in a handful of phases.
MAX_SESSION_MINUTES = 24 * 60
MAX_PHASES = 20


@dataclass(frozen=True, slots=True)
class PlanningPolicy:
    """The numbers of DESIGN.md section 3; an agency may override any of them."""

    debriefing_opens_after: timedelta = timedelta(hours=24)
    debriefing_closes_after: timedelta = timedelta(hours=72)
    debriefing_phases: Phases = (
        ("introduction", 15), ("fact", 20), ("thought", 15), ("reaction", 35),
        ("symptom", 20), ("teaching", 25), ("re-entry", 20),
    )
    # A value above 5 disables defusings for the agency (severity is 1-5).
    defusing_min_severity: int = 4
    defusing_opens_after: timedelta = timedelta(hours=0)
    defusing_closes_after: timedelta = timedelta(hours=8)
    defusing_phases: Phases = (("introduction", 10), ("exploration", 20), ("information", 15))
    individual_minutes: int = 60
    individual_within: timedelta = timedelta(days=7)
    participants_per_facilitator: int = 6
    min_team: int = 2
    max_team: int = 4
    max_group_size: int = 20
    buffer_minutes: int = 60
    max_group_sessions_per_day: int = 1
    max_group_sessions_per_7_days: int = 3
    grid_minutes: int = 30
    earliest_start: time = time(8, 0)
    latest_start: time = time(20, 0)
    latest_end: time = time(21, 0)
    # A group session starts at least this long after the plan is made: people need notice.
    notice_minutes: int = 60
    load_lookback_days: int = 30

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name))
        _check_consistency(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> PlanningPolicy:
        """Return a copy with `overrides` applied; ValueError names the first bad key."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for key in sorted(overrides):
            if key not in known:
                raise ValueError(f"{key}: unknown planning policy setting")
            value = overrides[key]
            if key in _PHASE_FIELDS and isinstance(value, list):
                # Overrides usually come from JSON, where tuples arrive as lists.
                value = tuple(tuple(p) if isinstance(p, list) else p for p in value)
            _check_field(key, value)
            changes[key] = value
        return replace(self, **changes)


def _check_field(name: str, value: Any) -> None:
    if name in _TIMEDELTA_FIELDS:
        if not isinstance(value, timedelta):
            raise ValueError(f"{name}: expected a timedelta, got {type(value).__name__}")
        if value < timedelta(0):
            raise ValueError(f"{name}: must not be negative")
    elif name in _TIME_FIELDS:
        if not isinstance(value, time) or value.tzinfo is not None:
            raise ValueError(f"{name}: expected a naive datetime.time")
    elif name in _PHASE_FIELDS:
        if not isinstance(value, tuple) or not 0 < len(value) <= MAX_PHASES:
            raise ValueError(f"{name}: expected 1 to {MAX_PHASES} (phase, minutes) pairs")
        for phase in value:
            if (not isinstance(phase, tuple) or len(phase) != 2 or not isinstance(phase[0], str)
                    or not phase[0] or not _is_int(phase[1]) or phase[1] <= 0):
                raise ValueError(f"{name}: each phase must be (name, positive minutes)")
        if sum(minutes for _, minutes in value) > MAX_SESSION_MINUTES:
            raise ValueError(f"{name}: a session lasts at most {MAX_SESSION_MINUTES} minutes")
    else:
        if not _is_int(value):
            raise ValueError(f"{name}: expected an int, got {type(value).__name__}")
        if value < 0 or (value == 0 and name not in _NON_NEGATIVE_INTS):
            raise ValueError(f"{name}: must be positive")
        if name == "individual_minutes" and value > MAX_SESSION_MINUTES:
            raise ValueError(f"{name}: a session lasts at most {MAX_SESSION_MINUTES} minutes")


def _check_consistency(p: PlanningPolicy) -> None:
    if p.debriefing_closes_after <= p.debriefing_opens_after:
        raise ValueError("debriefing_closes_after: must be after debriefing_opens_after")
    if p.defusing_closes_after <= p.defusing_opens_after:
        raise ValueError("defusing_closes_after: must be after defusing_opens_after")
    if p.max_team < p.min_team:
        raise ValueError("max_team: must be at least min_team")
    if p.min_team < 2:
        # A debriefing needs a clinician and a peer, a defusing two peers.
        raise ValueError("min_team: must be at least 2")
    if 1440 % p.grid_minutes:
        raise ValueError("grid_minutes: must divide a day evenly")
    if p.latest_start < p.earliest_start:
        raise ValueError("latest_start: must not be before earliest_start")
    if p.latest_end != time(0) and p.latest_end <= p.earliest_start:
        raise ValueError("latest_end: must be after earliest_start")
    if p.max_group_sessions_per_7_days < p.max_group_sessions_per_day:
        raise ValueError("max_group_sessions_per_7_days: must be at least max_group_sessions_per_day")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
