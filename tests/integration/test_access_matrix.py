"""Every operation of the committed openapi.yaml, for every role and no key, on the caller's own agency
and on another agency: the API answers the documented class of status.

The operations are read from `openapi.yaml` (`security: []` is public, `x-roles` lists who may call
the others), so a new route in the spec is covered without touching this file, unless it needs a
path parameter, or a request body, not known here (the test then fails and says which).

Each case sends its request in both directions: a `north` key on `north`'s resources and a `south`
key on `south`'s (own agency), or across (another agency). Expected, per request:

- public operation: never 401 or 403 (and a GET answers 200);
- no key: 401; a role not in `x-roles`: 403, whatever the agency;
- an allowed role on its own agency's resource: neither 401, 403 nor 404 (a GET answers 200);
- an allowed role on another agency's resource: 404, answered exactly as for a resource that does
  not exist (its existence must not leak); admin is global and reaches every agency; a facilitator
  key reaches only its own facilitator and the sessions it is assigned to (a colleague's key of the
  same agency gets 404 too);
- never a 5xx.

Every 2xx answer to an agency-bound key must not name anything of the other agency (its incident,
session, facilitators, agency code, people); no 2xx answer to a supervisor may contain a seeded
participant's name or email, and no answer at all outside the coordinators' follow-up list may.

The world (two agencies, each with a roster, one planned incident, a calendar feed token and a
participant's response token) is built once per backend and rebuilt only after a case changed it: a
non-GET request that succeeded (or failed with a 5xx). Refused requests change nothing, so the cases
in between share it.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from service.app import create_app
from service.auth.service import create_key, issue_key
from service.calendars.service import issue_token
from service.facilitators.models import Facilitator
from service.outbox.models import OutboxMessage
from tests.conftest import FakeClock, Keys, seed_agencies, settings, wipe
from tests.factories import EVERY_DAY, facilitator_body, incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster, facilitator_key

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
ROLES = ("admin", "coordinator", "dispatch", "supervisor", "facilitator", None)
TARGETS = ("own", "other")
PROBLEM = "application/problem+json"
LINK = re.compile(r"/r/([^?/\s]+)")
# Path parameters that name a resource of one agency: another agency's answers 404.
AGENCY_SCOPED = frozenset({"code", "incident_id", "session_id", "facilitator_id"})
# The one place participants' names and emails are shown (coordinators only; every read is audited).
PARTICIPANT_DATA = frozenset({("get", "/v1/incidents/{incident_id}/followups")})
# Query parameters filled from the target agency's world.
QUERY_VALUES = {"incident_id": lambda side: side.incident_id}


# -- the operations of the spec ----------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One path and method of openapi.yaml."""

    method: str
    path: str
    public: bool
    roles: frozenset[str]
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    has_body: bool

    @property
    def scoped(self) -> bool:
        """Whether the path names a resource of one agency."""
        return bool(AGENCY_SCOPED & set(self.path_params))

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def load_operations() -> list[Operation]:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    operations = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = shared + op.get("parameters", [])
            operations.append(Operation(
                method=method, path=path,
                # No `security` at all would fall back to the spec's default: treat only `[]` as public.
                public=op.get("security") == [],
                roles=frozenset(op.get("x-roles", ())),
                path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                query_params=tuple(p["name"] for p in params if p["in"] == "query" and p["name"] in QUERY_VALUES),
                has_body="requestBody" in op,
            ))
    return operations


OPERATIONS = load_operations()


def test_the_spec_has_operations_and_every_closed_one_lists_its_roles():
    assert len(OPERATIONS) >= 30
    for op in OPERATIONS:
        assert op.public or op.roles, f"{op}: neither public nor x-roles"
        assert op.roles <= {r for r in ROLES if r}, f"{op}: unknown role in x-roles {sorted(op.roles)}"


# -- the world ---------------------------------------------------------------------------------------


@dataclass
class Side:
    """One agency's part of the world, and the keys of its callers."""

    code: str
    region: str
    incident_id: str
    session_id: str
    session_starts_at: str
    facilitator_id: int  # on the session's team; the `facilitator` key is theirs
    colleague_id: int  # same agency, not on the team; the `colleague` key is theirs
    roster: list[int]
    roster_names: list[str]
    roster_emails: list[str]
    people: list[tuple[str, str]]  # (name, email) of the incident's participants
    calendar_token: str
    response_token: str
    spare_key_id: int  # a key of the agency that nothing else uses (for revocation)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> Authorization header


@dataclass
class World:
    north: Side
    south: Side

    def other(self, side: Side) -> Side:
        return self.south if side is self.north else self.north

    @property
    def people(self) -> list[tuple[str, str]]:
        return self.north.people + self.south.people


class _ActingAs:
    """Keys whose `coordinator` is another role's key (add_roster posts as `coordinator`)."""

    def __init__(self, keys: Keys, role: str) -> None:
        self._keys, self._role = keys, role

    def auth(self, _role: str) -> dict[str, str]:
        return self._keys.auth(self._role)


class Harness:
    """The app on one backend, and the world it holds until a case changes it."""

    def __init__(self, database_url: str) -> None:
        self.app = create_app(settings(database_url), clock=FakeClock())
        self.services = self.app.extensions["debrief"]
        self.client = self.app.test_client()
        self._world: World | None = None
        self.dirty = False
        self.builds = 0

    def world(self) -> World:
        if self._world is None:
            wipe(self.services.engine)
            self._world = self._build()
            self.dirty = False
            self.builds += 1
        return self._world

    def discard(self) -> None:
        self._world = None

    def close(self) -> None:
        wipe(self.services.engine)
        self.services.close()

    def _session(self) -> DbSession:
        return self.services.session_factory()

    def _build(self) -> World:
        client = self.client
        with self._session() as db:
            keys = seed_agencies(db)
            south_supervisor = create_key(db=db, role="supervisor", agency_code="south")
            spare = {code: issue_key(db=db, role="dispatch", agency_code=code).id for code in ("north", "south")}
        # Disjoint regions: each incident is staffed from its own agency's roster only (the planner may
        # otherwise book another agency's facilitators, which is allowed and would blur "own" and "other").
        north_roster = add_roster(client, keys, regions=["north-east"])
        south_roster = add_roster(client, _ActingAs(keys, "other_coordinator"), start=7, regions=["south-west"],
                                  timezone="America/Vancouver")
        north_people = [person(n) for n in (1, 2, 3)]
        south_people = [person(n, name=f"Constable Southern{n}", email=f"constable{n}@south.example.org") for n in (21, 22, 23)]
        sides = {}
        for code, region, roster, start, people, dispatch, auth in (
            ("north", "north-east", north_roster, 1, north_people, "dispatch",
             {"coordinator": keys.auth("coordinator"), "dispatch": keys.auth("dispatch"), "supervisor": keys.auth("supervisor")}),
            ("south", "south-west", south_roster, 7, south_people, "other_dispatch",
             {"coordinator": keys.auth("other_coordinator"), "dispatch": keys.auth("other_dispatch"),
              "supervisor": {"Authorization": f"Bearer {south_supervisor}"}}),
        ):
            incident = report_planned(client, incident_body(f"CAD-{code}-1", region=region, personnel=people),
                                      keys.auth(dispatch))
            [session] = incident["sessions"]
            team = [f["id"] for f in session["facilitators"]]
            assert team and set(team) <= set(roster), (code, team, roster)
            facilitator_id = team[0]
            colleague_id = next(f for f in roster if f not in team)
            with self._session() as db:
                facilitator = db.get(Facilitator, facilitator_id)
                calendar_token = issue_token(facilitator)
                db.commit()
                messages = db.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.incident_id == uuid.UUID(incident["id"]), OutboxMessage.kind.like("invitation%"))
                    .order_by(OutboxMessage.created_at)
                ).all()
            [response_token, *_] = [t for m in messages for t in LINK.findall(m.payload.get("text", ""))]
            sides[code] = Side(
                code=code, region=region, incident_id=incident["id"], session_id=session["id"],
                session_starts_at=session["starts_at"], facilitator_id=facilitator_id, colleague_id=colleague_id,
                roster=roster, roster_names=[f"Facilitator {n}" for n in range(start, start + len(roster))],
                roster_emails=[f"facilitator{n}@cism.example.org" for n in range(start, start + len(roster))],
                people=[(p["name"], p["email"]) for p in people], calendar_token=calendar_token, response_token=response_token,
                spare_key_id=spare[code],
                keys={**auth, "admin": keys.auth("admin"),
                      "facilitator": facilitator_key(self.app, facilitator_id, code),
                      "colleague": facilitator_key(self.app, colleague_id, code)},
            )
        return World(north=sides["north"], south=sides["south"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def harness(request) -> Iterator[Harness]:
    """The app on one backend for the whole module (the world is rebuilt only when a case changed it)."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    harness = Harness(url)
    yield harness
    harness.close()


@pytest.fixture
def world(harness) -> Iterator[World]:
    yield harness.world()
    if harness.dirty:
        harness.discard()


# -- what each operation is sent ---------------------------------------------------------------------

_unique = itertools.count(1)

BodyBuilder = Callable[[Side, Side], Any]
# (method, path) -> the body, from the caller's side and the target side: valid, so that a request of an
# allowed role reaches the agency check instead of stopping at validation (422 says nothing of scope).
BODIES: dict[tuple[str, str], BodyBuilder] = {
    ("post", "/v1/agencies"): lambda caller, target: {
        "code": f"east-{next(_unique)}", "name": "East Police", "timezone": "America/Halifax"},
    ("patch", "/v1/agencies/{code}"): lambda caller, target: {"name": "Renamed Police"},
    ("post", "/v1/incidents"): lambda caller, target: incident_body(
        f"CAD-new-{next(_unique)}", region=caller.region, personnel=[person(90, name="Officer Newcomer")]),
    ("patch", "/v1/incidents/{incident_id}"): lambda caller, target: {"severity": 3},
    # The agency named in the body is the target's: another agency's roster is not the caller's to extend.
    ("post", "/v1/facilitators"): lambda caller, target: facilitator_body(
        90, kind="peer", agency=target.code, regions=[target.region], email=f"new{next(_unique)}@cism.example.org"),
    ("patch", "/v1/facilitators/{facilitator_id}"): lambda caller, target: {"name": "Renamed Facilitator"},
    ("put", "/v1/facilitators/{facilitator_id}/availability"): lambda caller, target: {"weekly": EVERY_DAY, "exceptions": []},
    ("post", "/v1/sessions/{session_id}/reschedule"): lambda caller, target: {"starts_at": target.session_starts_at},
    ("post", "/v1/responses/{token}"): lambda caller, target: {"action": "decline"},
    ("post", "/v1/keys"): lambda caller, target: {"role": "dispatch", "agency": target.code, "expires_in_days": 30},
}
# Unscoped operations whose body names the target agency: another agency is refused (403 or 404).
BODY_NAMES_AGENCY = frozenset({("post", "/v1/facilitators")})


def path_value(op: Operation, name: str, target: Side) -> str:
    if name == "token" and op.path.startswith("/v1/calendars/"):
        return target.calendar_token
    if name == "token" and op.path.startswith("/v1/responses/"):
        return target.response_token
    values = {"code": target.code, "incident_id": target.incident_id, "session_id": target.session_id,
              "facilitator_id": target.facilitator_id, "key_id": target.spare_key_id}
    if name not in values:
        pytest.fail(f"{op}: no value for path parameter {{{name}}}; teach path_value() about it")
    return str(values[name])


def url_of(op: Operation, target: Side) -> str:
    url = op.path
    for name in op.path_params:
        url = url.replace("{" + name + "}", path_value(op, name, target))
    assert "{" not in url, f"{op}: unfilled path parameter in {url}"
    query = "&".join(f"{name}={QUERY_VALUES[name](target)}" for name in op.query_params)
    return f"{url}?{query}" if query else url


# -- expectations ------------------------------------------------------------------------------------


def expectation(op: Operation, role: str | None, target: str) -> str:
    """The documented class of answer of one case."""
    if op.public:
        return "public"
    if role is None:
        return "401"
    if role not in op.roles:
        return "403"
    if target == "own" or role == "admin":
        return "allowed"
    if op.scoped:
        return "404"
    if op.key in BODY_NAMES_AGENCY:
        return "refused"
    return "allowed"  # a collection of the caller's own agency: it must not show the other agency's items


@dataclass(frozen=True)
class Call:
    caller: Side
    target: Side
    key: str | None  # the caller's key, by role (or `colleague`)


def calls(world: World, op: Operation, role: str | None, target: str) -> list[Call]:
    pairs = [(world.north, world.north), (world.south, world.south)] if target == "own" else \
        [(world.north, world.south), (world.south, world.north)]
    planned = [Call(caller, target_side, role) for caller, target_side in pairs]
    if role == "facilitator" and target == "other" and op.scoped:
        # Same agency, but not the facilitator itself nor a session it is on.
        planned.append(Call(world.north, world.north, "colleague"))
    return planned


def _walk(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def leaks(body: Any, other: Side) -> list[str]:
    """What of the other agency an answer shows."""
    found = []
    uuids = {other.incident_id: "incident", other.session_id: "session"}
    texts = {other.code: "agency code", **{n: "facilitator name" for n in other.roster_names},
             **{e: "facilitator email" for e in other.roster_emails},
             **{n: "participant name" for n, _ in other.people}, **{e: "participant email" for _, e in other.people}}
    for key, value in _walk(body):
        if isinstance(value, str) and value in uuids:
            found.append(f"{uuids[value]} {value}")
        elif isinstance(value, str) and value in texts:
            found.append(f"{texts[value]} {value!r}")
        elif isinstance(value, int) and not isinstance(value, bool) and key in ("id", "facilitator_id") and value in other.roster:
            found.append(f"facilitator id {value} (under {key!r})")
    return found


def ghost_of(side: Side) -> Side:
    """The side with ids of resources that do not exist."""
    return replace(side, code="nowhere", incident_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()),
                   facilitator_id=2147480000, colleague_id=2147480001)


def _normalized(problem: Any, side: Side) -> Any:
    """A problem document with the resource's ids replaced by a placeholder."""
    if not isinstance(problem, dict):
        return problem
    detail = str(problem.get("detail", ""))
    for value in (side.incident_id, side.session_id, str(side.facilitator_id), side.code):
        detail = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", "<id>", detail)
    return {**problem, "detail": detail}


def existence_leaks(found, missing, ghost: Side, call: Call) -> list[str]:
    """A refusal about another agency's resource must read exactly as one about a resource that does not exist."""
    if found.status_code not in (403, 404):
        return []
    if missing.status_code != found.status_code or _normalized(found.get_json(), call.target) != _normalized(missing.get_json(), ghost):
        return [f"{call.key} of {call.caller.code} on {call.target.code}'s data: its {found.status_code} differs from a missing "
                f"resource's ({missing.status_code}): {found.get_data(as_text=True)[:200]} vs {missing.get_data(as_text=True)[:200]}"]
    return []


def problems_of(op: Operation, role: str | None, expected: str, call: Call, response, world: World) -> list[str]:
    status = response.status_code
    where = f"{call.key or 'no key'} of {call.caller.code} on {call.target.code}'s data: {status}"
    out = []
    if status >= 500:
        out.append(f"{where}, a server error: {response.get_data(as_text=True)[:300]}")
    elif expected == "public":
        if status in (401, 403) or (op.method == "get" and status != 200):
            out.append(f"{where}, expected {'200' if op.method == 'get' else 'neither 401 nor 403'} (public)")
    elif expected in ("401", "403", "404"):
        if status != int(expected):
            out.append(f"{where}, expected {expected}")
        elif response.content_type != PROBLEM:
            out.append(f"{where} as {response.content_type}, expected {PROBLEM}")
    elif expected == "refused":
        if status not in (403, 404):
            out.append(f"{where}, expected 403 or 404 (the body names another agency)")
    elif expected == "allowed":
        if status in (401, 403, 404) or (op.method == "get" and status != 200):
            out.append(f"{where}, expected {'200' if op.method == 'get' else 'neither 401, 403 nor 404'}")
    if 200 <= status < 300:
        raw = response.get_data(as_text=True)
        if role == "supervisor" or op.key not in PARTICIPANT_DATA:
            for name, email in world.people:
                if name in raw or email in raw:
                    who = "a supervisor's answer" if role == "supervisor" else "an answer outside the follow-up list"
                    out.append(f"{where}: {who} shows participant {name!r} / {email!r}")
        if call.key not in (None, "admin") and not op.public and response.is_json:
            for leak in leaks(response.get_json(), world.other(call.caller)):
                out.append(f"{where}: shows the other agency's {leak}")
    return out


# -- the cases ---------------------------------------------------------------------------------------

# (method, path, role, target) -> the bug behind an expected failure (strict: fixing it turns the case red).
KNOWN_BUGS: dict[tuple[str, str, str | None, str], str] = {}


def _case(op: Operation, role: str | None, target: str):
    marks = []
    reason = KNOWN_BUGS.get((op.method, op.path, role, target))
    if reason:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(op, role, target, marks=marks, id=f"{op.method.upper()} {op.path}-{role or 'nokey'}-{target}")


CASES = [_case(op, role, target) for op in OPERATIONS for role in ROLES for target in TARGETS]


@pytest.mark.parametrize(("op", "role", "target"), CASES)
def test_access(harness, world, op, role, target):
    expected = expectation(op, role, target)
    found = []
    for call in calls(world, op, role, target):
        headers = {} if call.key is None else call.caller.keys[call.key]
        kwargs: dict[str, Any] = {"headers": headers}
        if op.has_body:
            builder = BODIES.get(op.key)
            kwargs["json"] = builder(call.caller, call.target) if builder else {}
        response = harness.client.open(url_of(op, call.target), method=op.method.upper(), **kwargs)
        if op.method != "get" and (response.status_code < 400 or response.status_code >= 500):
            harness.dirty = True  # it may have changed the world: the next case gets a new one
        found += problems_of(op, role, expected, call, response, world)
        if expected in ("404", "refused"):
            ghost = ghost_of(call.target)
            if op.has_body and op.key in BODIES:
                kwargs["json"] = BODIES[op.key](call.caller, ghost)
            missing = harness.client.open(url_of(op, ghost), method=op.method.upper(), **kwargs)
            found += existence_leaks(response, missing, ghost, call)
    if op.has_body and op.key not in BODIES:
        found.append(f"{op}: no valid body known (add one to BODIES), so {{}} was sent")
    assert not found, f"{op}, {role or 'no key'}, {target} agency (expected: {expected}):\n  " + "\n  ".join(found)
