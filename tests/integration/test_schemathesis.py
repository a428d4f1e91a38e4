"""Property-based requests from openapi.yaml (schemathesis): whatever is sent, the answer keeps the contract.

Every operation of the committed spec gets schema-valid and schema-breaking requests (the schema's
examples, schemathesis' boundary and type-violation cases, then Hypothesis-generated ones), sent
in-process to the app on SQLite and on PostgreSQL with a valid key of a role the operation allows.
Path and query values are often swapped for real ones of a seeded world (incident, session and
facilitator ids, feed and response tokens, page cursors), so requests get past the 404 and reach
the code that reads the body against real data. Each answer must:

- never be a 5xx;
- have a status the operation documents by number (every operation also documents `default`,
  which would let any status through);
- have a documented content type, and a body and headers that match the documented schema;
- refuse a schema-breaking request with a 4xx.

`positive_data_acceptance` is off: domain rules beyond JSON Schema (a known IANA time zone, an
existing agency, the 30-minute grid, a clinician's LICENSE, a cursor this API issued) refuse some
schema-valid requests with their documented 422.

The world is built once per backend and rebuilt only after an operation changed it (a non-GET
answered 2xx), so each operation starts from the same seeded state. Generation is deterministic
(derandomized, no example database), so CI sees the same requests on every run.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy import select

from service.app import create_app
from service.auth.service import create_key
from service.calendars.service import issue_token
from service.facilitators.models import Facilitator
from service.outbox.models import OutboxMessage
from tests.conftest import FakeClock, seed_agencies, wipe
from tests.conftest import settings as app_settings
from tests.factories import incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
LINK = re.compile(r"/r/([^?/\s]+)")
# Of the requests whose path (or query) is schema-valid, the share sent with real values instead.
REAL_SHARE = (True, True, True, False)
# Methods that change nothing (RFC 9110): the coverage phase also sends HEAD, OPTIONS and TRACE.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

CONFIG = schemathesis.Config.from_dict({
    "generation": {
        "mode": "all",
        "max-examples": 25,
        "deterministic": True,
        "database": "none",
        # The test sends real keys itself; generated bearer tokens would only ever meet the 401.
        "with-security-parameters": False,
    },
    "checks": {"positive_data_acceptance": {"enabled": False}},
})
schema = schemathesis.openapi.from_path(SPEC_PATH, config=CONFIG)

HYPOTHESIS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    # The world is shared by the examples of an operation on purpose; the rest fire on large, slow
    # or heavily filtered generated bodies, which is what this test is for.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)


class CurrentApp:
    """The WSGI app of the backend under test: the schema is loaded at import, before any app exists."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


CURRENT_APP = CurrentApp()
# Checks that re-send a request (e.g. without its key) reach the app through the schema.
schema.app = CURRENT_APP


# -- the seeded world --------------------------------------------------------------------------------


@dataclass
class World:
    """One agency's keys and the real values requests may use."""

    headers: dict[str, dict[str, str]]  # role -> Authorization header
    values: dict[str, list[str]]  # parameter -> real values
    own: dict[str, list[str]]  # parameter -> the values a facilitator key may reach
    cursors: dict[str, list[str]]  # operation path -> a next_cursor it answered

    def pool(self, path: str, role: str | None, name: str) -> list[str]:
        """The real values of a parameter of one operation, for one role."""
        if name == "cursor":
            return self.cursors.get(path, [])
        if name == "token":
            name = "calendar_token" if path.startswith("/v1/calendars/") else "response_token"
        if role == "facilitator" and name in self.own:
            return self.own[name]
        return self.values.get(name, [])


class Harness:
    """The app on one backend, and the world it holds until an operation changes it."""

    def __init__(self, database_url: str) -> None:
        self.app = create_app(app_settings(database_url), clock=FakeClock())
        self.services = self.app.extensions["debrief"]
        self._world: World | None = None
        self.dirty = False

    def world(self) -> World:
        """The world, built on first use and again after an operation changed it."""
        if self._world is None or self.dirty:
            wipe(self.services.engine)
            self._world = self._build()
            self.dirty = False
        return self._world

    def close(self) -> None:
        """Delete every row and release the connections."""
        wipe(self.services.engine)
        self.services.close()

    def _build(self) -> World:
        client = self.app.test_client()
        with self.services.session_factory() as db:
            keys = seed_agencies(db)
        roster = add_roster(client, keys, regions=["north-east"])
        incidents = []
        for n in (1, 2):
            body = incident_body(f"CAD-{n}", personnel=[person(10 * n + i) for i in (1, 2, 3)])
            incidents.append(report_planned(client, body, keys.auth("dispatch")))
        sessions = [s for incident in incidents for s in incident["sessions"]]
        facilitator_id = sessions[0]["facilitators"][0]["id"]
        with self.services.session_factory() as db:
            calendar_token = issue_token(db.get(Facilitator, facilitator_id))
            db.commit()
            facilitator_secret = create_key(db=db, role="facilitator", agency_code="north", facilitator_id=facilitator_id)
            texts = [m.payload.get("text", "") for m in db.scalars(select(OutboxMessage))]
        headers = {role: keys.auth(role) for role in ("admin", "coordinator", "dispatch", "supervisor")}
        headers["facilitator"] = {"Authorization": f"Bearer {facilitator_secret}"}
        incident_ids = [incident["id"] for incident in incidents]
        return World(
            headers=headers,
            values={
                "code": ["north", "south"],
                "incident_id": incident_ids,
                "session_id": [s["id"] for s in sessions],
                "facilitator_id": [str(f) for f in roster],
                "calendar_token": [calendar_token],
                "response_token": sorted({t for text in texts for t in LINK.findall(text)}),
            },
            own={
                "facilitator_id": [str(facilitator_id)],
                "session_id": [s["id"] for s in sessions if facilitator_id in {f["id"] for f in s["facilitators"]}],
            },
            cursors=self._cursors(client, headers, incident_ids),
        )

    @staticmethod
    def _cursors(client, headers: dict[str, dict[str, str]], incident_ids: list[str]) -> dict[str, list[str]]:
        """A second-page cursor of every paginated list (reading follow-ups also fills the audit log)."""
        pages = [(f"/v1/incidents/{incident_id}/followups", "coordinator", "/v1/incidents/{incident_id}/followups")
                 for incident_id in incident_ids]
        pages += [("/v1/incidents", "coordinator", "/v1/incidents"), ("/v1/facilitators", "coordinator", "/v1/facilitators"),
                  ("/v1/audit", "admin", "/v1/audit")]
        cursors: dict[str, list[str]] = {}
        for url, role, path in pages:
            response = client.get(f"{url}?limit=1", headers=headers[role])
            assert response.status_code == 200, response.get_json()
            assert response.get_json()["next_cursor"], f"{url}: no second page to take a cursor from"
            cursors.setdefault(path, []).append(response.get_json()["next_cursor"])
        return cursors


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def harness(request) -> Iterator[Harness]:
    """The app on one backend for the whole module."""
    harness = Harness(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))
    CURRENT_APP.app = harness.app
    yield harness
    CURRENT_APP.app = None
    harness.close()


@pytest.fixture
def world(harness) -> World:
    """The seeded world, as it was built (rebuilt if the previous operation changed it)."""
    CURRENT_APP.app = harness.app
    return harness.world()


# -- what is sent and checked ------------------------------------------------------------------------


def roles_of(method: str, path: str) -> list[str | None]:
    """The roles allowed to call an operation (`None` alone: a public operation, sent without a key)."""
    operation = SPEC["paths"][path][method.lower()]
    return [None] if operation.get("security") == [] else sorted(operation["x-roles"])


def pick(items: list[Any] | tuple[Any, ...], digest: int, salt: str) -> Any:
    """A choice that depends only on the request, so a replayed or shrunk example makes the same one."""
    return items[zlib.crc32(f"{digest}:{salt}".encode()) % len(items)]


def use_real_values(case, world: World, role: str | None, digest: int) -> None:
    """Swap path and query values of a schema-valid part of the request for real ones, most of the time."""
    for location, attribute in ((ParameterLocation.PATH, "path_parameters"), (ParameterLocation.QUERY, "query")):
        generated = case.meta.components.get(location) if case.meta is not None else None
        if generated is None or not generated.mode.is_positive or not pick(REAL_SHARE, digest, location.value):
            continue
        values = dict(getattr(case, attribute))
        for name in values:
            pool = world.pool(case.operation.path, role, name)
            if pool:
                values[name] = pick(pool, digest, name)
        # Assigning (not mutating) makes schemathesis re-judge whether the request is still schema-breaking.
        setattr(case, attribute, values)


def documented_status_code(ctx, response, case) -> None:
    """The status is one the operation documents by number (`default` alone does not count)."""
    if case.method.upper() != case.operation.method.upper():
        return None  # a probe with an undocumented method: 405 is the answer, checked by schemathesis itself
    documented = set(case.operation.definition.raw["responses"]) - {"default"}
    assert str(response.status_code) in documented, (
        f"{case.method} {case.operation.path} answered {response.status_code}, which it does not document "
        f"(documented: {', '.join(sorted(documented))}): {response.text[:300]}"
    )
    return None


def send(case, harness: Harness, headers: dict[str, str]) -> None:
    """Send a case and check its answer; a change to the world makes the next operation rebuild it."""
    response = case.call(headers=headers)
    if case.method.upper() not in SAFE_METHODS and 200 <= response.status_code < 300:
        harness.dirty = True
    case.validate_response(response, headers=headers, additional_checks=[documented_status_code],
                           transport_kwargs={"headers": headers})


# -- the tests ---------------------------------------------------------------------------------------


@schema.parametrize()
@HYPOTHESIS
def test_operation_keeps_the_contract(case, harness, world):
    """Valid and invalid requests to one operation, as a role it allows: every answer keeps the contract."""
    digest = zlib.crc32(repr(case).encode())
    role = pick(roles_of(case.operation.method, case.operation.path), digest, "role")
    use_real_values(case, world, role, digest)
    send(case, harness, world.headers[role] if role else {})

