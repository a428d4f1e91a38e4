"""Incident intake, reading, listing and changes over the API, on SQLite and PostgreSQL."""

from datetime import timedelta
from uuid import UUID

from sqlalchemy import func, select

from service.incidents.models import Incident, Personnel
from tests.factories import NOW, incident_body, person, plan_reports


def count(app, model=Incident) -> int:
    session = app.extensions["debrief"].session_factory()
    try:
        return session.scalar(select(func.count()).select_from(model))
    finally:
        session.close()


def post(client, keys, body, role="dispatch", **headers):
    return client.post("/v1/incidents", json=body, headers={**keys.auth(role), **headers})


def test_report_answers_201_at_once_with_window_in_agency_zone(client, keys, app):
    response = post(client, keys, incident_body())
    assert response.status_code == 201
    assert "Preference-Applied" not in response.headers
    data = response.get_json()
    # Stored, not yet planned: the planner plans it.
    assert data["status"] == "received"
    assert response.headers["Location"].endswith(f"/v1/incidents/{data['id']}")
    assert data["agency"] == "north"
    assert data["personnel_count"] == 3
    assert data["sessions"] == [] and data["problems"] == []
    # 13:00 UTC -> 08:00 EST; the window opens 24 h later and closes 72 h later, shown in Toronto time.
    assert data["occurred_at"] == "2026-11-22T08:00:00-05:00"
    assert data["window"] == {"opens_at": "2026-11-23T08:00:00-05:00", "closes_at": "2026-11-25T08:00:00-05:00"}
    assert count(app) == 1 and count(app, Personnel) == 3
    # No facilitator on the roster: once planned, flagged rather than silently unplanned.
    assert plan_reports(client) == 1
    planned = client.get(response.headers["Location"], headers=keys.auth("dispatch")).get_json()
    assert planned["status"] == "needs_attention"
    assert planned["problems"] == [{"group": "direct-en", "kind": "debriefing", "reasons": ["language_not_covered"]}]


def test_personnel_are_stored_as_reported_in_the_reports_order(client, keys, app):
    people = [person(7, name="Élise Tremblay", language="fr", role="supervisor", exposure="witness"),
              person(2, phone=None, unit=None), person(5)]
    people[2].pop("phone")
    people[2].pop("unit")
    data = post(client, keys, incident_body(personnel=people), **{"Idempotency-Key": "intake-order-1"}).get_json()
    session = app.extensions["debrief"].session_factory()
    try:
        stored = session.scalars(select(Personnel).where(Personnel.incident_id == UUID(data["id"])).order_by(Personnel.id)).all()
        incident = session.get(Incident, UUID(data["id"]))
        assert (incident.status, incident.created_at, incident.updated_at) == ("received", NOW, NOW)
    finally:
        session.close()
    columns = ("external_id", "name", "email", "phone", "role", "unit", "exposure", "language")
    assert [{c: getattr(p, c) for c in columns} for p in stored] == [{c: p.get(c) for c in columns} for p in people]
    assert all(p.added_at == NOW and p.opted_out_at is None for p in stored)
    # The key is bound to the incident: the same body under it is its replay.
    replay = post(client, keys, incident_body(personnel=people), **{"Idempotency-Key": "intake-order-1"})
    assert (replay.status_code, replay.get_json()["id"]) == (201, data["id"])


def test_answers_carry_no_personal_data(client, keys):
    body = incident_body()
    text = post(client, keys, body).get_data(as_text=True)
    for p in body["personnel"]:
        assert p["name"] not in text and p["email"] not in text and p["external_id"] not in text


def test_same_report_twice_is_one_incident(client, keys, app):
    first = post(client, keys, incident_body())
    second = post(client, keys, incident_body())
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert count(app) == 1 and count(app, Personnel) == 3


def test_same_report_with_other_offset_and_order_is_a_retry(client, keys):
    first = post(client, keys, incident_body())
    body = incident_body()
    body["occurred_at"] = "2026-11-22T13:00:00Z"
    body["personnel"].reverse()
    again = post(client, keys, body)
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]


def test_same_external_id_with_other_content_is_409(client, keys, app):
    first = post(client, keys, incident_body())
    changed = post(client, keys, incident_body(severity=5))
    assert changed.status_code == 409
    assert changed.content_type == "application/problem+json"
    assert changed.get_json()["incident_id"] == first.get_json()["id"]
    assert count(app) == 1


def test_same_external_id_in_another_agency_is_another_incident(client, keys, app):
    assert post(client, keys, incident_body()).status_code == 201
    assert post(client, keys, incident_body(), role="other_dispatch").status_code == 201
    assert count(app) == 2


def test_idempotency_key_replays_and_refuses_another_payload(client, keys, app):
    first = post(client, keys, incident_body(), **{"Idempotency-Key": "req-1"})
    replay = post(client, keys, incident_body(), **{"Idempotency-Key": "req-1"})
    assert first.status_code == 201 and replay.status_code == 201
    assert replay.get_json()["id"] == first.get_json()["id"]
    other = post(client, keys, incident_body("CAD-2026-0002"), **{"Idempotency-Key": "req-1"})
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["errors"]
    assert count(app) == 1


def test_idempotency_key_on_a_retry_with_new_key_binds_to_the_same_incident(client, keys):
    first = post(client, keys, incident_body())
    retry = post(client, keys, incident_body(), **{"Idempotency-Key": "late-key"})
    again = post(client, keys, incident_body(), **{"Idempotency-Key": "late-key"})
    assert retry.status_code == 200 and again.status_code == 200
    assert {retry.get_json()["id"], again.get_json()["id"]} == {first.get_json()["id"]}


def test_future_occurred_at_is_refused_beyond_clock_skew(client, keys, app):
    too_late = post(client, keys, incident_body(occurred_at=(NOW + timedelta(minutes=10)).isoformat()))
    assert too_late.status_code == 422 and "occurred_at" in too_late.get_json()["errors"]
    skewed = post(client, keys, incident_body(occurred_at=(NOW + timedelta(minutes=2)).isoformat()))
    assert skewed.status_code == 201
    assert count(app) == 1


def test_coordinator_may_report_too(client, keys):
    assert post(client, keys, incident_body(), role="coordinator").status_code == 201


def test_read_one_incident(client, keys):
    created = post(client, keys, incident_body()).get_json()
    response = client.get(f"/v1/incidents/{created['id']}", headers=keys.auth("coordinator"))
    assert response.status_code == 200
    assert response.get_json() == created


def test_list_is_paginated_with_a_cursor_newest_first(client, keys, clock):
    ids = []
    for n in range(5):
        clock.advance(seconds=1)
        ids.append(post(client, keys, incident_body(f"CAD-{n}")).get_json()["id"])
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/incidents", query_string=query, headers=keys.auth("dispatch")).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_list_filters_by_status_and_keeps_to_the_agency(client, keys):
    kept = post(client, keys, incident_body("CAD-1")).get_json()["id"]
    cancelled = post(client, keys, incident_body("CAD-2")).get_json()["id"]
    client.patch(f"/v1/incidents/{cancelled}", json={"status": "cancelled"}, headers=keys.auth("dispatch"))
    post(client, keys, incident_body("CAD-3"), role="other_dispatch")
    plan_reports(client)
    page = client.get("/v1/incidents", query_string={"status": "needs_attention"}, headers=keys.auth("dispatch")).get_json()
    assert [item["id"] for item in page["items"]] == [kept]
    everything = client.get("/v1/incidents", headers=keys.auth("dispatch")).get_json()
    assert len(everything["items"]) == 2


def test_bad_cursor_and_limit_are_422(client, keys):
    for query in ({"cursor": "nonsense"}, {"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"status": "lost"}):
        response = client.get("/v1/incidents", query_string=query, headers=keys.auth("dispatch"))
        assert response.status_code == 422, query
        assert response.content_type == "application/problem+json"


def test_patch_adds_personnel_and_changes_severity(client, keys, app):
    created = post(client, keys, incident_body()).get_json()
    response = client.patch(
        f"/v1/incidents/{created['id']}",
        json={"severity": 5, "add_personnel": [person(10), person(11, exposure="witness")]},
        headers=keys.auth("dispatch"),
    )
    assert response.status_code == 200
    assert response.get_json()["severity"] == 5 and response.get_json()["personnel_count"] == 5
    assert count(app, Personnel) == 5


def test_patch_refuses_known_personnel_and_changes_nothing(client, keys, app):
    created = post(client, keys, incident_body()).get_json()
    response = client.patch(
        f"/v1/incidents/{created['id']}", json={"severity": 5, "add_personnel": [person(1)]}, headers=keys.auth("dispatch"),
    )
    assert response.status_code == 409
    assert "add_personnel.0.external_id" in response.get_json()["errors"]
    again = client.get(f"/v1/incidents/{created['id']}", headers=keys.auth("dispatch")).get_json()
    assert again["severity"] == 3 and again["personnel_count"] == 3


def test_patch_refuses_to_exceed_500_personnel(client, keys, app):
    created = post(client, keys, incident_body(people=400)).get_json()
    response = client.patch(
        f"/v1/incidents/{created['id']}", json={"add_personnel": [person(1000 + i) for i in range(101)]},
        headers=keys.auth("dispatch"),
    )
    assert response.status_code == 422
    assert count(app, Personnel) == 400


def test_cancelled_incident_cannot_change(client, keys):
    created = post(client, keys, incident_body()).get_json()
    url = f"/v1/incidents/{created['id']}"
    cancelled = client.patch(url, json={"status": "cancelled"}, headers=keys.auth("dispatch"))
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert client.patch(url, json={"severity": 1}, headers=keys.auth("dispatch")).status_code == 409
