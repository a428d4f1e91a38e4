"""Every malformed request gets a 4xx problem+json that says what is wrong, and changes nothing."""

import json

import pytest
from sqlalchemy import func, select

from service.incidents.models import Incident, Personnel
from tests.factories import incident_body, person


def totals(app):
    session = app.extensions["debrief"].session_factory()
    try:
        return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Incident, Personnel))
    finally:
        session.close()


def raw_post(client, keys, data, content_type="application/json", path="/v1/incidents"):
    return client.post(path, data=data, headers={**keys.auth("dispatch"), "Content-Type": content_type})


CASES = {
    "invalid utf-8": (b'{"external_id": "\xff\xfe"}', "application/json", 400),
    "not json": (b"{not json", "application/json", 400),
    "json array": (b"[]", "application/json", 422),
    "json string": (b'"incident"', "application/json", 422),
    "json null": (b"null", "application/json", 422),
    "empty body": (b"", "application/json", 422),
    "form encoded": (b"external_id=1", "application/x-www-form-urlencoded", 415),
    "plain text": (json.dumps(incident_body()).encode(), "text/plain", 415),
    "naive datetime": (json.dumps(incident_body(occurred_at="2026-11-22T10:00:00")).encode(), "application/json", 422),
    "unknown enum": (json.dumps(incident_body(type="bank_robbery")).encode(), "application/json", 422),
    "unknown field": (json.dumps({**incident_body(), "summary": "x"}).encode(), "application/json", 422),
    "wrong types": (json.dumps(incident_body(severity="high", personnel={"a": 1})).encode(), "application/json", 422),
    "nul in string": (json.dumps(incident_body(region="a\u0000b")).encode(), "application/json", 422),
    "lone surrogate": (b'{"external_id": "\\ud800", "type": "other"}', "application/json", 422),
    "huge number": (json.dumps(incident_body(severity=10**400)).encode(), "application/json", 422),
    "deep nesting": (b"[" * 5000 + b"]" * 5000, "application/json", 400),
    "year 1": (json.dumps(incident_body(occurred_at="0001-01-01T00:00:00+05:00")).encode(), "application/json", 422),
    "year 9999": (json.dumps(incident_body(occurred_at="9999-12-31T23:59:59-05:00")).encode(), "application/json", 422),
}


@pytest.mark.parametrize("case", CASES)
def test_malformed_report_is_a_problem_and_changes_nothing(client, keys, app, case):
    data, content_type, status = CASES[case]
    response = raw_post(client, keys, data, content_type)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status and problem["detail"] and problem["title"] and problem["type"]
    assert totals(app) == (0, 0)


def test_ten_megabyte_body_is_413(client, keys, app):
    response = raw_post(client, keys, b'{"x": "' + b"a" * (10 * 1024 * 1024) + b'"}')
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert totals(app) == (0, 0)


def test_ten_thousand_personnel_is_refused(client, keys, app):
    data = json.dumps(incident_body(personnel=[person(i) for i in range(10_000)])).encode()
    response = raw_post(client, keys, data)
    # Under the body limit the schema refuses the list; over it, the size does.
    expected = 413 if len(data) > app.extensions["debrief"].config.max_content_length else 422
    assert response.status_code == expected
    body = incident_body(personnel=[person(i) for i in range(501)])
    response = raw_post(client, keys, json.dumps(body).encode())
    assert response.status_code == 422 and "personnel" in response.get_json()["errors"]
    assert totals(app) == (0, 0)


def test_validation_errors_name_every_bad_field(client, keys):
    body = incident_body(severity=9, personnel=[person(1, email="nope"), person(2, language="de")])
    errors = raw_post(client, keys, json.dumps(body).encode()).get_json()["errors"]
    assert set(errors) == {"severity", "personnel.0.email", "personnel.1.language"}


@pytest.mark.parametrize("path", ["/v1/incidents/not-a-uuid", "/v1/incidents/00000000-0000-0000-0000-000000000000", "/v1/nowhere"])
def test_unknown_resources_are_404_problems(client, keys, path):
    response = client.get(path, headers=keys.auth("dispatch"))
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


def test_wrong_method_is_405_with_allow(client, keys):
    response = client.delete("/v1/incidents", headers=keys.auth("dispatch"))
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.content_type == "application/problem+json"


def test_bad_idempotency_key_header_is_422(client, keys, app):
    response = client.post(
        "/v1/incidents", json=incident_body(), headers={**keys.auth("dispatch"), "Idempotency-Key": "x" * 300},
    )
    assert response.status_code == 422 and "headers.Idempotency-Key" in response.get_json()["errors"]
    assert totals(app) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "status"),
    [
        ("get", "/v1/facilitators/2147483648", None, "coordinator", 404),
        ("get", "/v1/agencies/a%00b", None, "admin", 404),
        ("post", "/v1/facilitators", {"agency": "a\u0000"}, "admin", 422),
        ("patch", "/v1/agencies/north", {"policy": {"debriefing_closes_after": 1e12}}, "admin", 422),
        ("patch", "/v1/agencies/north", {"policy": {"load_lookback_days": 10**9}}, "admin", 422),
        ("patch", "/v1/agencies/north", {"policy": {"buffer_minutes": 10**12}}, "admin", 422),
        ("patch", "/v1/agencies/north", {"policy": {"defusing_phases": [["intro\u0000", 45]]}}, "admin", 422),
        ("get", "/v1/facilitators?cursor=WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwIiwgIjEiXQ", None, "coordinator", 422),
    ],
)
def test_out_of_range_values_are_4xx_not_500(client, keys, method, path, body, role, status):
    kwargs = {"json": body} if body is not None else {}
    response = getattr(client, method)(path, headers=keys.auth(role), **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
