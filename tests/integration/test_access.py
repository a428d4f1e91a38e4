"""Authentication, roles and agency scope."""

from datetime import datetime, timedelta

import pytest

from service.auth.access import MATRIX
from service.ui import PAGE_BLUEPRINTS
from tests.factories import incident_body, report_planned


def test_every_route_has_an_entry_in_the_access_matrix(app):
    # Pages check their own credential (a signed link); the stylesheet is public.
    routed = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and rule.endpoint.partition(".")[0] not in PAGE_BLUEPRINTS
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routed - set(MATRIX) == set()
    assert set(MATRIX) - routed == set()


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer dbk_unknown", "Bearer " + "x" * 5000])
def test_missing_or_unknown_key_is_401(client, keys, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/v1/incidents", headers=headers)
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_401(app, client, keys):
    from sqlalchemy import update

    from service.auth.models import ApiKey
    from service.auth.service import hash_key

    session = app.extensions["debrief"].session_factory()
    session.execute(update(ApiKey).where(ApiKey.key_hash == hash_key(keys.dispatch)).values(revoked_at=app.extensions["debrief"].clock()))
    session.commit()
    session.close()
    assert client.get("/v1/incidents", headers=keys.auth("dispatch")).status_code == 401


@pytest.mark.parametrize(
    ("role", "method", "path", "expected"),
    [
        ("supervisor", "post", "/v1/incidents", 403),
        ("supervisor", "get", "/v1/incidents/00000000-0000-0000-0000-000000000000", 403),
        ("supervisor", "get", "/v1/incidents/00000000-0000-0000-0000-000000000000/followups", 403),
        ("admin", "post", "/v1/incidents", 403),
        ("dispatch", "post", "/v1/agencies", 403),
        ("coordinator", "post", "/v1/agencies", 403),
    ],
)
def test_wrong_role_is_403(client, keys, role, method, path, expected):
    response = getattr(client, method)(path, json={}, headers=keys.auth(role))
    assert response.status_code == expected
    assert response.content_type == "application/problem+json"


def test_another_agencys_incident_is_404(client, keys):
    created = report_planned(client, incident_body(), keys.auth("dispatch"))
    url = f"/v1/incidents/{created['id']}"
    assert client.get(url, headers=keys.auth("other_dispatch")).status_code == 404
    assert client.get(url, headers=keys.auth("other_coordinator")).status_code == 404
    assert client.patch(url, json={"severity": 1}, headers=keys.auth("other_dispatch")).status_code == 404
    assert client.get(url, headers=keys.auth("dispatch")).get_json()["severity"] == 3


def test_keys_are_stored_hashed(app, keys):
    from sqlalchemy import select

    from service.auth.models import ApiKey

    session = app.extensions["debrief"].session_factory()
    stored = list(session.scalars(select(ApiKey.key_hash)))
    session.close()
    assert keys.dispatch not in stored and all(len(h) == 64 for h in stored)


def test_admin_creates_agencies(client, keys):
    body = {"code": "east", "name": "East Police", "timezone": "America/Halifax"}
    created = client.post("/v1/agencies", json=body, headers=keys.auth("admin"))
    assert created.status_code == 201 and created.get_json()["code"] == "east"
    assert client.post("/v1/agencies", json=body, headers=keys.auth("admin")).status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"code": "x", "name": "X", "timezone": "America/Toronto"},
        {"code": "Upper", "name": "X", "timezone": "America/Toronto"},
        {"code": "west", "name": "West", "timezone": "Mars/Olympus"},
        {"code": "west", "name": "West", "timezone": "America/Toronto", "extra": 1},
        {"code": "west", "name": "", "timezone": "America/Toronto"},
    ],
)
def test_bad_agency_is_422(client, keys, body):
    response = client.post("/v1/agencies", json=body, headers=keys.auth("admin"))
    assert response.status_code == 422 and response.get_json()["errors"]


def test_admin_overrides_an_agencys_planning_policy(client, keys):
    policy = {"debriefing_closes_after": 96, "earliest_start": "09:00", "max_group_size": 15}
    response = client.patch("/v1/agencies/north", json={"policy": policy}, headers=keys.auth("admin"))
    assert response.status_code == 200 and response.get_json()["policy"] == policy
    assert client.get("/v1/agencies/north", headers=keys.auth("admin")).get_json()["policy"] == policy


@pytest.mark.parametrize(
    ("policy", "setting"),
    [
        ({"lunch_break": 30}, "lunch_break"),
        ({"max_group_size": 0}, "max_group_size"),
        ({"max_group_size": "20"}, "max_group_size"),
        ({"earliest_start": "9 o'clock"}, "earliest_start"),
        ({"debriefing_closes_after": "72h"}, "debriefing_closes_after"),
        ({"debriefing_closes_after": 12}, "debriefing_closes_after"),
        ({"min_team": 1}, "min_team"),
    ],
)
def test_bad_policy_override_is_422_and_changes_nothing(client, keys, policy, setting):
    response = client.patch("/v1/agencies/north", json={"policy": policy}, headers=keys.auth("admin"))
    assert response.status_code == 422
    assert f"policy.{setting}" in response.get_json()["errors"]
    assert client.get("/v1/agencies/north", headers=keys.auth("admin")).get_json()["policy"] == {}


def test_only_admin_changes_agencies(client, keys):
    assert client.patch("/v1/agencies/north", json={"name": "X"}, headers=keys.auth("coordinator")).status_code == 403
    assert client.patch("/v1/agencies/nowhere", json={"name": "X"}, headers=keys.auth("admin")).status_code == 404


# -- keys: listed, revoked and expiring; a deactivated facilitator's key and feed stop ---------------


def test_admins_list_keys_without_their_secrets_and_see_when_each_was_last_used(client, keys, clock):
    client.get("/v1/incidents", headers=keys.auth("dispatch"))
    listed = client.get("/v1/keys", headers=keys.auth("admin"))
    assert listed.status_code == 200 and listed.headers.get("Cache-Control") is None
    items = listed.get_json()["items"]
    assert len(items) == 6 and {k["role"] for k in items} == {"admin", "coordinator", "dispatch", "supervisor"}
    raw = listed.get_data(as_text=True)
    assert not any(getattr(keys, role) in raw for role in ("admin", "dispatch", "coordinator")) and "dbk_" not in raw
    [dispatch] = [k for k in items if k["role"] == "dispatch" and k["agency"] == "north"]
    assert dispatch["last_used_at"] is not None and dispatch["revoked_at"] is None and dispatch["expires_at"] is None
    [other] = [k for k in items if k["role"] == "dispatch" and k["agency"] == "south"]
    assert other["last_used_at"] is None
    for role in ("coordinator", "dispatch", "supervisor"):
        assert client.get("/v1/keys", headers=keys.auth(role)).status_code == 403


def test_a_revoked_key_is_401_at_once(client, keys):
    [dispatch] = [k for k in client.get("/v1/keys", headers=keys.auth("admin")).get_json()["items"]
                  if k["role"] == "dispatch" and k["agency"] == "north"]
    assert client.get("/v1/incidents", headers=keys.auth("dispatch")).status_code == 200
    assert client.delete(f"/v1/keys/{dispatch['id']}", headers=keys.auth("admin")).status_code == 204
    response = client.get("/v1/incidents", headers=keys.auth("dispatch"))
    assert response.status_code == 401 and response.content_type == "application/problem+json"
    assert client.delete(f"/v1/keys/{dispatch['id']}", headers=keys.auth("admin")).status_code == 204
    assert client.delete("/v1/keys/2147483000", headers=keys.auth("admin")).status_code == 404
    assert client.get("/v1/incidents", headers=keys.auth("other_dispatch")).status_code == 200


def test_a_key_issued_with_an_expiry_stops_working_when_it_expires(client, keys, clock):
    issued = client.post("/v1/keys", json={"role": "dispatch", "agency": "north", "expires_in_days": 2},
                         headers=keys.auth("admin"))
    assert issued.status_code == 201, issued.get_json()
    auth = {"Authorization": f"Bearer {issued.get_json()['key']}"}
    assert datetime.fromisoformat(issued.get_json()["expires_at"]) == clock() + timedelta(days=2)
    assert client.get("/v1/incidents", headers=auth).status_code == 200
    clock.advance(days=2, seconds=-1)
    assert client.get("/v1/incidents", headers=auth).status_code == 200
    clock.advance(seconds=1)
    assert client.get("/v1/incidents", headers=auth).status_code == 401
    assert client.post("/v1/keys", json={"role": "dispatch", "agency": "north", "expires_in_days": 0},
                       headers=keys.auth("admin")).status_code == 422


def test_deactivating_a_facilitator_disables_their_key_and_feed(app, client, keys):
    from tests.integration.planning_helpers import add_roster, facilitator_key

    [facilitator_id] = add_roster(client, keys, clinicians=1, peers=0)
    own = facilitator_key(app, facilitator_id)
    feed = client.post(f"/v1/facilitators/{facilitator_id}/calendar-token", headers=own).get_json()["calendar_url"]["https"]
    path = feed.split("://", 1)[1].partition("/")[2]
    assert client.get(f"/{path}").status_code == 200
    off = client.patch(f"/v1/facilitators/{facilitator_id}", json={"active": False}, headers=keys.auth("coordinator"))
    assert off.status_code == 200
    assert client.get(f"/v1/facilitators/{facilitator_id}", headers=own).status_code == 401
    assert client.get(f"/{path}").status_code == 404
    on = client.patch(f"/v1/facilitators/{facilitator_id}", json={"active": True}, headers=keys.auth("coordinator"))
    assert on.status_code == 200
    assert client.get(f"/v1/facilitators/{facilitator_id}", headers=own).status_code == 200
    assert client.get(f"/{path}").status_code == 200


# -- intake checks its key in its own statement on PostgreSQL: the same answers as every other request --


def _incidents(app) -> int:
    from sqlalchemy import func, select

    from service.incidents.models import Incident

    session = app.extensions["debrief"].session_factory()
    try:
        return session.scalar(select(func.count()).select_from(Incident))
    finally:
        session.close()


def _revoke(client, keys, role: str, agency: str = "north") -> None:
    [key] = [k for k in client.get("/v1/keys", headers=keys.auth("admin")).get_json()["items"]
             if k["role"] == role and k["agency"] == agency]
    assert client.delete(f"/v1/keys/{key['id']}", headers=keys.auth("admin")).status_code == 204


BAD_REPORTS = {
    "invalid field": ({**incident_body(), "severity": 9}, "application/json"),
    "not JSON": ("{", "application/json"),
    "not a JSON body": ("severity=9", "application/x-www-form-urlencoded"),
    "in the future": (incident_body(occurred_at="2099-01-01T00:00:00Z"), "application/json"),
}


@pytest.mark.parametrize("bad", BAD_REPORTS, ids=list(BAD_REPORTS))
def test_a_report_refused_for_its_content_is_still_401_or_403_first(app, client, keys, bad):
    import json

    body, content_type = BAD_REPORTS[bad]
    data = body if isinstance(body, str) else json.dumps(body)

    def report(role: str):
        return client.post("/v1/incidents", data=data, headers={**keys.auth(role), "Content-Type": content_type})

    own = report("dispatch")
    assert own.status_code in (400, 415, 422) and own.content_type == "application/problem+json"
    supervisor = report("supervisor")
    assert supervisor.status_code == 403 and supervisor.get_json()["detail"] == "A supervisor key may not POST this resource."
    _revoke(client, keys, "dispatch")
    revoked = report("dispatch")
    assert revoked.status_code == 401 and revoked.headers["WWW-Authenticate"].startswith("Bearer")
    assert revoked.headers["X-Content-Type-Options"] == "nosniff"  # the answer given instead passes every hook
    assert _incidents(app) == 0


def test_a_report_from_a_revoked_or_refused_key_stores_nothing_even_when_seen_before(app, client, keys):
    first = client.post("/v1/incidents", json=incident_body(), headers=keys.auth("dispatch"))
    assert first.status_code == 201
    assert client.post("/v1/incidents", json=incident_body("CAD-2"), headers=keys.auth("supervisor")).status_code == 403
    assert client.post("/v1/incidents", json=incident_body("CAD-2"), headers=keys.auth("admin")).status_code == 403
    replay = client.post("/v1/incidents", json=incident_body(), headers={**keys.auth("dispatch"), "Idempotency-Key": "k-1"})
    assert replay.status_code == 200 and replay.get_json()["id"] == first.get_json()["id"]
    _revoke(client, keys, "dispatch")
    for body in (incident_body(), incident_body("CAD-3")):  # a replay, and a new report
        answer = client.post("/v1/incidents", json=body, headers={**keys.auth("dispatch"), "Idempotency-Key": "k-1"})
        assert answer.status_code == 401
    assert _incidents(app) == 1
    # The agency's other keys still work, and its coordinator reports to it.
    coordinator = client.post("/v1/incidents", json=incident_body("CAD-4"), headers=keys.auth("coordinator"))
    assert coordinator.status_code == 201 and coordinator.get_json()["agency"] == "north"


def test_a_report_marks_its_key_used_once_an_hour(client, keys, clock):
    def last_used() -> str | None:
        [key] = [k for k in client.get("/v1/keys", headers=keys.auth("admin")).get_json()["items"]
                 if k["role"] == "dispatch" and k["agency"] == "south"]
        return key["last_used_at"]

    assert last_used() is None
    assert client.post("/v1/incidents", json=incident_body("CAD-1"), headers=keys.auth("other_dispatch")).status_code == 201
    first = last_used()
    assert first is not None
    clock.advance(minutes=30)
    assert client.post("/v1/incidents", json=incident_body("CAD-2"), headers=keys.auth("other_dispatch")).status_code == 201
    assert last_used() == first
    clock.advance(minutes=31)
    assert client.post("/v1/incidents", json=incident_body("CAD-3"), headers=keys.auth("other_dispatch")).status_code == 201
    assert datetime.fromisoformat(last_used()) > datetime.fromisoformat(first)
