"""An agency's planning-policy overrides, as JSON (stored and sent) and as a PlanningPolicy."""

from __future__ import annotations

from dataclasses import fields
from datetime import time, timedelta
from typing import Any, Mapping

from service.planning import PlanningPolicy

DURATION_FIELDS = frozenset({
    "debriefing_opens_after", "debriefing_closes_after", "defusing_opens_after", "defusing_closes_after", "individual_within",
})
CLOCK_FIELDS = frozenset({"earliest_start", "latest_start", "latest_end"})
SETTINGS = tuple(f.name for f in fields(PlanningPolicy))


def _decode(name: str, value: Any) -> Any:
    if name in DURATION_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name}: expected a number of hours")
        return timedelta(hours=value)
    if name in CLOCK_FIELDS:
        if not isinstance(value, str):
            raise ValueError(f'{name}: expected a time of day "HH:MM"')
        try:
            return time.fromisoformat(value)
        except ValueError:
            raise ValueError(f'{name}: expected a time of day "HH:MM"') from None
    return value


def policy_from_overrides(overrides: Mapping[str, Any]) -> PlanningPolicy:
    """The defaults with JSON overrides applied; ValueError names the first bad setting."""
    decoded = {}
    for name, value in overrides.items():
        if name not in SETTINGS:
            raise ValueError(f"{name}: unknown planning policy setting")
        decoded[name] = _decode(name, value)
    return PlanningPolicy().with_overrides(decoded)
