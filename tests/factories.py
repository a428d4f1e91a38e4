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


EVERY_DAY = [{"day": d, "start": "07:00", "end": "22:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]


def facilitator_body(n: int = 1, *, kind: str = "peer", **overrides: Any) -> dict[str, Any]:
    """A valid facilitator, available 07:00–22:00 every day, certified until 2027."""
    certifications = [{"name": "GCI", "expires_on": "2027-12-31"}]
    if kind == "clinician":
        certifications.append({"name": "LICENSE", "expires_on": "2027-12-31"})
    body = {
        "name": f"Facilitator {n}", "email": f"facilitator{n}@cism.example.org", "kind": kind,
        "unit": f"peer-team-{n}", "languages": ["en"], "regions": ["north-east"], "virtual_ok": False,
        "timezone": "America/Toronto", "certifications": certifications,
        "availability": {"weekly": EVERY_DAY, "exceptions": []},
    }
    body.update(overrides)
    return body


def plan_reports(client: Any) -> int:
    """Run the planner's pass over every report still `received`, as its process does once intake wakes it."""
    from service.planner import plan_pending

    return plan_pending(client.application.extensions["debrief"])


def report_planned(client: Any, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """Report an incident, let the planner plan it, and read it back as it then stands."""
    answer = client.post("/v1/incidents", json=body, headers=headers)
    assert answer.status_code in (200, 201), answer.get_json()
    plan_reports(client)
    read = client.get(answer.headers["Location"], headers=headers)
    assert read.status_code == 200, read.get_json()
    return read.get_json()
