"""Helpers of the planning integration tests: a roster, and SQL checks of the hard rules."""

from __future__ import annotations

from sqlalchemy import text

from service.auth.service import create_key
from tests.factories import facilitator_body


def add_roster(client, keys, *, clinicians: int = 2, peers: int = 4, start: int = 1, **overrides) -> list[int]:
    """Post facilitators as the coordinator; return their ids (clinicians first)."""
    ids = []
    for n in range(start, start + clinicians + peers):
        kind = "clinician" if n < start + clinicians else "peer"
        response = client.post("/v1/facilitators", json=facilitator_body(n, kind=kind, **overrides), headers=keys.auth("coordinator"))
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    return ids


def facilitator_key(app, facilitator_id: int, agency: str = "north") -> dict[str, str]:
    """The Authorization header of a new key bound to one facilitator."""
    with app.extensions["debrief"].session_factory() as session:
        secret = create_key(db=session, role="facilitator", agency_code=agency, facilitator_id=facilitator_id)
    return {"Authorization": f"Bearer {secret}"}


def overlapping_assignments(app) -> list[tuple]:
    """Pairs of active assignments of one facilitator whose times overlap (must be none)."""
    with app.extensions["debrief"].engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT a.facilitator_id, a.session_id, b.session_id FROM assignments a JOIN assignments b "
            "ON a.facilitator_id = b.facilitator_id AND a.id < b.id AND a.active AND b.active "
            "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
        )))
