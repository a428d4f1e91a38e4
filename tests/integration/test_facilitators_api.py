"""The facilitator roster over the API."""

import pytest

from tests.factories import facilitator_body
from tests.integration.planning_helpers import facilitator_key


def post(client, keys, body, role="coordinator"):
    return client.post("/v1/facilitators", json=body, headers=keys.auth(role))


def test_coordinator_adds_a_facilitator_to_their_agency(client, keys):
    response = post(client, keys, facilitator_body(1, kind="clinician"))
    assert response.status_code == 201
    data = response.get_json()
    assert data["agency"] == "north" and data["kind"] == "clinician" and data["active"] is True
    assert data["availability"]["weekly"][0] == {"day": "mon", "start": "07:00", "end": "22:00"}
    read = client.get(f"/v1/facilitators/{data['id']}", headers=keys.auth("coordinator")).get_json()
    assert read == {k: v for k, v in data.items() if k != "calendar_url"}  # the feed URL is shown only once


def test_admin_adds_a_provincial_pool_member(client, keys):
    response = post(client, keys, facilitator_body(2), role="admin")
    assert response.status_code == 201 and response.get_json()["agency"] is None


def test_coordinator_cannot_add_to_another_agency(client, keys):
    assert post(client, keys, facilitator_body(3, agency="south")).status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "counsellor"},
        {"languages": []},
        {"languages": ["en", "en"]},
        {"timezone": "Europe/Nowhere"},
        {"certifications": [{"name": "gci", "expires_on": "2027-01-01"}]},
        {"certifications": [{"name": "GCI", "expires_on": "soon"}]},
        {"availability": {"weekly": [{"day": "monday", "start": "08:00", "end": "18:00"}]}},
        {"availability": {"weekly": [{"day": "mon", "start": "8am", "end": "18:00"}]}},
        {"availability": {"weekly": [], "exceptions": [{"start": "0001-01-01T00:00:00+05:00", "end": "2026-12-01T09:00:00Z"}]}},
        {"availability": {"weekly": [], "exceptions": [{"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T09:00:00Z"}]}},
        {"availability": {"weekly": [], "exceptions": [{"start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00"}]}},
        {"virtual_ok": "sometimes"},
    ],
)
def test_bad_facilitator_is_422(client, keys, change):
    response = post(client, keys, facilitator_body(4, **change))
    assert response.status_code == 422 and response.get_json()["errors"]


def test_clinician_needs_a_license(client, keys):
    body = facilitator_body(5, kind="clinician", certifications=[{"name": "GCI", "expires_on": "2027-01-01"}])
    response = post(client, keys, body)
    assert response.status_code == 422 and "certifications" in response.get_json()["errors"]


def test_roster_list_is_paginated_and_scoped(client, keys, clock):
    ids = []
    for n in range(3):
        clock.advance(seconds=1)
        ids.append(post(client, keys, facilitator_body(n)).get_json()["id"])
    post(client, keys, facilitator_body(9), role="admin")
    first = client.get("/v1/facilitators", query_string={"limit": 2}, headers=keys.auth("coordinator")).get_json()
    second = client.get("/v1/facilitators", query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=keys.auth("coordinator")).get_json()
    assert [f["id"] for f in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next_cursor"] is None


def test_another_agency_cannot_see_or_change_a_facilitator(client, keys):
    fid = post(client, keys, facilitator_body(1)).get_json()["id"]
    assert client.get(f"/v1/facilitators/{fid}", headers=keys.auth("other_coordinator")).status_code == 404
    assert client.patch(f"/v1/facilitators/{fid}", json={"active": False}, headers=keys.auth("other_coordinator")).status_code == 404


def test_facilitator_reads_and_changes_only_themselves(app, client, keys):
    me = post(client, keys, facilitator_body(1)).get_json()["id"]
    other = post(client, keys, facilitator_body(2)).get_json()["id"]
    auth = facilitator_key(app, me)
    assert client.get(f"/v1/facilitators/{me}", headers=auth).status_code == 200
    assert client.get(f"/v1/facilitators/{other}", headers=auth).status_code == 404
    assert client.patch(f"/v1/facilitators/{me}", json={"languages": ["en", "fr"]}, headers=auth).get_json()["languages"] == ["en", "fr"]
    for field, value in (("certifications", []), ("unit", "elsewhere"), ("email", "me@elsewhere.org"), ("active", True)):
        # Conflict-of-interest and eligibility rules read these: a facilitator cannot change them.
        assert client.patch(f"/v1/facilitators/{me}", json={field: value}, headers=auth).status_code == 403
    assert client.get("/v1/facilitators", headers=auth).status_code == 403


def test_availability_is_replaced_whole(client, keys):
    fid = post(client, keys, facilitator_body(1)).get_json()["id"]
    availability = {
        "weekly": [{"day": "fri", "start": "20:00", "end": "02:00"}],
        "exceptions": [{"start": "2026-12-24T00:00:00-05:00", "end": "2026-12-27T00:00:00-05:00"}],
    }
    response = client.put(f"/v1/facilitators/{fid}/availability", json=availability, headers=keys.auth("coordinator"))
    assert response.status_code == 200
    assert response.get_json()["availability"]["weekly"] == availability["weekly"]
    assert len(response.get_json()["availability"]["exceptions"]) == 1


def test_a_full_day_window_is_accepted(client, keys):
    body = facilitator_body(1, availability={"weekly": [{"day": "sat", "start": "00:00", "end": "24:00"}], "exceptions": []})
    response = post(client, keys, body)
    assert response.status_code == 201
    assert response.get_json()["availability"]["weekly"] == [{"day": "sat", "start": "00:00", "end": "00:00"}]
