"""Builders of valid requests for the tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)


def person(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """A valid personnel entry."""
    entry = {
        "external_id": f"B{n:04d}", "name": f"Officer Number{n}", "email": f"officer{n}@north.example.org",
        "phone": "+1 416 555 0100", "role": "officer", "unit": "patrol-3", "exposure": "direct", "language": "en",
    }
    entry.update(overrides)
    return entry


def incident_body(external_id: str = "CAD-2026-0001", *, people: int = 3, **overrides: Any) -> dict[str, Any]:
    """A valid incident report that occurred two hours before NOW."""
    body = {
        "external_id": external_id,
        "type": "officer_involved_shooting",
        "severity": 3,
        "occurred_at": (NOW - timedelta(hours=2)).astimezone(timezone(timedelta(hours=-5))).isoformat(),
        "region": "north-east",
        "personnel": [person(i) for i in range(1, people + 1)],
    }
    body.update(overrides)
    return body
