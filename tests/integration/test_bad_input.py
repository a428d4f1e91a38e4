"""Every malformed request gets a 4xx problem+json that says what is wrong, and changes nothing."""

import json
from hashlib import sha256
from urllib.parse import quote

import pytest
import yaml
from sqlalchemy import func, select

from service.incidents.models import Incident, Personnel
from service.models import metadata
from tests.factories import incident_body, person
from tests.integration.test_access_matrix import BODIES, HTTP_METHODS, OPERATIONS, SPEC_PATH, Harness, path_value, url_of


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
    "lone surrogate": (b'{"external_id": "\\ud800", "type": "other"}', "application/json", 400),
    "huge number": (json.dumps(incident_body(severity=10**400)).encode(), "application/json", 422),
    "deep nesting": (b"[" * 5000 + b"]" * 5000, "application/json", 400),
    "integer of 5,000 digits": (b'{"severity": 1' + b"0" * 5000 + b"}", "application/json", 400),
    "NaN": (json.dumps(incident_body(severity=float("nan"))).encode(), "application/json", 400),
    "duplicate key": (b'{"severity": 3, "severity": 4}', "application/json", 400),
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


def test_integer_beyond_python_limit_to_the_public_link_is_400_not_500(client):
    response = client.post("/v1/responses/x", data=b'{"action": 1' + b"0" * 4300 + b"}", content_type="application/json")
    assert response.status_code == 400 and response.content_type == "application/problem+json"
    assert "not valid JSON" in response.get_json()["detail"]


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
        ("patch", "/v1/agencies/north", {"policy": {"debriefing_phases": [["introduction", 10**18]]}}, "admin", 422),
        ("patch", "/v1/agencies/north", {"policy": {"debriefing_phases": [["introduction\n", 15]]}}, "admin", 422),
        ("post", "/v1/agencies", {"code": "east\n", "name": "East Police", "timezone": "America/Halifax"}, "admin", 422),
        ("get", "/v1/facilitators?cursor=WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwIiwgIjEiXQ", None, "coordinator", 422),
    ],
)
def test_out_of_range_values_are_4xx_not_500(client, keys, method, path, body, role, status):
    kwargs = {"json": body} if body is not None else {}
    response = getattr(client, method)(path, headers=keys.auth(role), **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"


# -- a hostile-input corpus against every operation of openapi.yaml ----------------------------------
#
# Each operation gets, as a key of a role it allows on its own agency's real resources: raw bodies
# that are not I-JSON (when it takes a body), the corpus' values in place of each value of a valid
# body, and in place of each path and query parameter. Every answer must be a 4xx problem+json and
# the database must be as it was; an operation that reads no input at all may answer 2xx.

QUERY_PARAMS = {
    (method, path): tuple(p["name"] for p in item[method].get("parameters", []) if p["in"] == "query")
    for path, item in yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))["paths"].items()
    for method in HTTP_METHODS if method in item
}

HUGE = "1" + "0" * 5000  # more digits than Python converts to an int (4,300)
RAW_BODIES = {
    "integer of 5,000 digits": '{"a": %s}' % HUGE,
    "NaN": '{"a": NaN}',
    "Infinity": '{"a": Infinity}',
    "-Infinity": '{"a": [-Infinity]}',
    "beyond a double": '{"a": 1e400}',
    "lone surrogate": '{"a": "\\ud800"}',
    "lone surrogate as a name": '{"\\udfff": 1}',
    "arrays 10,000 deep": "[" * 10_000 + "]" * 10_000,
    "objects 10,000 deep": '{"a": ' * 10_000 + "1" + "}" * 10_000,
}
# Each takes the valid value it replaces.
VALUES = {
    "NUL": lambda v: "a\u0000b",
    "escape sequence": lambda v: "\u001b[2J",
    "integer of 4,000 digits": lambda v: 10**4000,
    "-1e18": lambda v: -(10**18),
    "largest double": lambda v: 1.7976931348623157e308,
    "100,000 characters": lambda v: "x" * 100_000,
    "right-to-left override": lambda v: "a\u202eb",
    "zero-width space": lambda v: "a\u200bb",
    "line separator": lambda v: "a\u2028b",
    "trailing newline": lambda v: f"{v}\n",
}
PATH_VALUES = {
    "NUL": lambda v: f"{v}\u0000",
    "trailing newline": lambda v: f"{v}\n",
    "right-to-left override": lambda v: f"{v}\u202e",
    "escape sequence": lambda v: f"{v}\u001b[2J",
    "4,000 digits": lambda v: "9" * 4000,
    "10,000 characters": lambda v: "x" * 10_000,
}


# When a key was last used is bookkeeping of the request itself, not data it changed.
BOOKKEEPING = frozenset({("api_keys", "last_used_at")})


def database_digest(engine) -> str:
    """A digest of every row of every table."""
    digest = sha256()
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.c if (table.name, c.name) not in BOOKKEEPING]
            rows = conn.execute(select(*columns).order_by(*table.primary_key.columns)).all()
            digest.update(repr((table.name, rows)).encode())
    return digest.hexdigest()


def leaves(value, path=()):
    """The paths of every scalar of a JSON body (of a list, its first item only)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        if value:
            yield from leaves(value[0], (*path, 0))
    else:
        yield path, value


def replaced(body, path, new):
    """A deep copy of `body` with the value at `path` replaced."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        return {**body, head: replaced(body[head], rest, new)}
    return [replaced(body[0], rest, new), *body[1:]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hostile(request):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    harness = Harness(url)
    yield harness
    harness.close()


def hostile_requests(op, side, other):
    """(what, url, raw body) of every hostile request for one operation."""
    url = url_of(op, side)
    if op.has_body:
        valid = BODIES[op.key](side, other)
        for name, raw in RAW_BODIES.items():
            yield name, url, raw
        for path, value in leaves(valid):
            for name, make in VALUES.items():
                yield f"{name} at {'.'.join(map(str, path))}", url, json.dumps(replaced(valid, path, make(value)))
    for param in op.path_params:
        for name, make in PATH_VALUES.items():
            bad = op.path
            for other_param in op.path_params:
                value = path_value(op, other_param, side)
                bad = bad.replace("{" + other_param + "}", quote(make(value) if other_param == param else value, safe=""))
            yield f"{name} in {{{param}}}", bad, None
    for param in QUERY_PARAMS.get(op.key, ()):
        for name, make in PATH_VALUES.items():
            # On "x": a number with white space around it (`limit=1%0A`) is still the number.
            yield f"{name} in ?{param}", f"{url.partition('?')[0]}?{param}={quote(make('x'), safe='')}", None


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
def test_hostile_input_is_refused_and_changes_nothing(hostile, op):
    world = hostile.world()
    side, other = world.north, world.south
    role = "admin" if "admin" in op.roles else min(op.roles, default=None)
    headers = {} if op.public else side.keys[role]
    reads_input = op.has_body or op.path_params or QUERY_PARAMS.get(op.key)
    cases = list(hostile_requests(op, side, other)) if reads_input else [
        (name, url_of(op, side), raw) for name, raw in RAW_BODIES.items()]
    before = database_digest(hostile.services.engine)
    found = []
    for what, url, raw in cases:
        kwargs = {"data": raw.encode(), "content_type": "application/json"} if raw is not None else {}
        response = hostile.client.open(url, method=op.method.upper(), headers=headers, **kwargs)
        status = response.status_code
        if not reads_input and op.method == "get" and status < 500:
            continue
        if not 400 <= status < 500:
            found.append(f"{what}: {status} {response.get_data(as_text=True)[:200]}")
            if op.method != "get":
                hostile.discard()
        elif response.content_type != "application/problem+json":
            found.append(f"{what}: {status} as {response.content_type}")
    if database_digest(hostile.services.engine) != before:
        found.append("the database changed")
        hostile.discard()
    assert not found, f"{op} as {role or 'no key'}:\n  " + "\n  ".join(found)
