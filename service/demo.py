"""Demo data for `debrief serve --demo`: an agency and one key per role."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from service.agencies import service as agencies
from service.auth.service import create_key

DEMO_AGENCY = "demo-police"


def seed(app: Flask, *, base_url: str) -> str:
    """Seed the demo agency and fresh keys; return the text to print."""
    session = app.extensions["debrief"].session_factory()
    try:
        agencies.get_or_create(db=session, code=DEMO_AGENCY, name="Demo Police Service", timezone="America/Toronto")
        keys = {
            "admin": create_key(db=session, role="admin"),
            "dispatch": create_key(db=session, role="dispatch", agency_code=DEMO_AGENCY),
            "supervisor": create_key(db=session, role="supervisor", agency_code=DEMO_AGENCY),
            "coordinator": create_key(db=session, role="coordinator", agency_code=DEMO_AGENCY),
        }
    finally:
        session.close()
    occurred_at = (app.extensions["debrief"].clock() - timedelta(hours=2)).replace(microsecond=0).isoformat()
    lines = [f"Demo agency: {DEMO_AGENCY} (America/Toronto)", "API keys (shown once):"]
    lines += [f"  {role:<12} {secret}" for role, secret in keys.items()]
    lines += [
        "",
        "Report an incident:",
        f"  curl -s -X POST {base_url}/v1/incidents \\",
        f"    -H 'Authorization: Bearer {keys['dispatch']}' -H 'Content-Type: application/json' \\",
        "    -d '{\"external_id\": \"CAD-2026-0001\", \"type\": \"officer_involved_shooting\", \"severity\": 4,"
        f" \"occurred_at\": \"{occurred_at}\", \"region\": \"north\","
        " \"personnel\": [{\"external_id\": \"B1234\", \"name\": \"Alex Martin\", \"email\": \"alex.martin@example.org\","
        " \"role\": \"officer\", \"unit\": \"patrol-3\", \"exposure\": \"direct\", \"language\": \"en\"}]}'",
        f"API docs: {base_url}/docs  (contract: {base_url}/openapi.yaml)",
    ]
    return "\n".join(lines)
