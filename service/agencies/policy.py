"""An agency's planning-policy overrides, as JSON (stored and sent) and as a PlanningPolicy."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import fields
from datetime import time, timedelta
from typing import Any, Mapping

from service.planning import PlanningPolicy

DURATION_FIELDS = frozenset({
    "debriefing_opens_after", "debriefing_closes_after", "defusing_opens_after", "defusing_closes_after", "individual_within",
})
CLOCK_FIELDS = frozenset({"earliest_start", "latest_start", "latest_end"})
PHASE_FIELDS = frozenset({"debriefing_phases", "defusing_phases"})
PHASE_NAME = re.compile(r"^[\w][\w -]{0,39}$")
SETTINGS = tuple(f.name for f in fields(PlanningPolicy))


# Far beyond any sensible policy, and small enough that date arithmetic cannot overflow.
MAX_HOURS = 24 * 365
MAX_COUNT = 7 * 24 * 60


def _decode(name: str, value: Any) -> Any:
    if name in DURATION_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_HOURS:
            raise ValueError(f"{name}: expected a number of hours from 0 to {MAX_HOURS}")
        return timedelta(hours=value)
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_COUNT:
        raise ValueError(f"{name}: at most {MAX_COUNT}")
    if name in PHASE_FIELDS:
        # Phase names reach agendas, mails and calendar feeds: short printable text only.
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and PHASE_NAME.fullmatch(p[0]) for p in value
        ):
            raise ValueError(f"{name}: expected [[name, minutes], ...] with names of 1-40 letters, digits, '-' or spaces")
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
    return _policy(json.dumps(overrides, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _policy(overrides_json: str) -> PlanningPolicy:
    # Kept by their JSON: every intake and every plan reads its agency's policy, and a policy is immutable.
    decoded = {}
    for name, value in json.loads(overrides_json).items():
        if name not in SETTINGS:
            raise ValueError(f"{name}: unknown planning policy setting")
        decoded[name] = _decode(name, value)
    return PlanningPolicy().with_overrides(decoded)
