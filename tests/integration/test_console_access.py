"""Who sees which console page: every console route × every role (and nobody) × own and other agency.

The console routes are read from the app, so a new page is covered without touching this file,
unless it needs a path parameter not known here (the test then fails and says which).
Expected, per page: a role the access table lets in gets the page (200; a redirect where the page
sends them on), another agency's incident 404; nobody signed in is sent to sign in (303, with
`next`); any other role gets a 403 page. Never a 5xx.
"""

from __future__ import annotations

import uuid

import pytest

from service.accounts.access import ANONYMOUS, PAGE_MATRIX
from service.console import CONSOLE_BLUEPRINTS
from tests.console_helpers import add_account, csrf_of, sign_in
from tests.factories import facilitator_body, incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster

PEOPLE = {
    "coordinator": "coord@north.example.org",
    "supervisor": "sup@north.example.org",
    "admin": "admin@cism.example.org",
    "facilitator": "facilitator1@cism.example.org",  # on the roster: no account
}
# A page of each role whose layout carries a form token.
TOKEN_PAGE = {"coordinator": "/incidents", "supervisor": "/incidents", "admin": "/accounts", "facilitator": "/my-sessions",
              ANONYMOUS: "/signin"}
# Forms an allowed role posts empty (with a token) in this test, and the answer: another agency's
# facilitator or incident is always a 404.
POSTED = {"accounts.disable": 303, "roster_pages.reactivate": 303, "agency_settings.contact": 303,
          "agency_settings.policy": 422, "agency_settings.rotate_secret": 200}
# Where an allowed role is sent on instead of being shown the page.
SENT_ON = {("signin.form", role) for role in PEOPLE} | {("console.home", "facilitator")}


def console_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.partition(".")[0] in CONSOLE_BLUEPRINTS]


def test_every_console_route_has_an_entry_in_the_page_matrix(app):
    routed = {rule.endpoint for rule in console_rules(app)}
    assert routed - set(PAGE_MATRIX) == set()
    assert set(PAGE_MATRIX) - routed == set()


@pytest.fixture
def world(app, client, keys):
    """Two agencies with an incident each, an account of each role in `north`, and a facilitator on the roster."""
    roster = add_roster(client, keys)
    other_facilitator = client.post("/v1/facilitators", json=facilitator_body(9), headers=keys.auth("other_coordinator")).get_json()["id"]
    own = report_planned(client, incident_body(), keys.auth("dispatch"))["id"]
    other = client.post("/v1/incidents", json=incident_body("CAD-SOUTH", personnel=[person(7)]),
                        headers=keys.auth("other_dispatch")).get_json()["id"]
    accounts = {role: add_account(app, PEOPLE[role], role, None if role == "admin" else "north")
                for role in ("coordinator", "supervisor", "admin")}
    spare = add_account(app, "spare@north.example.org", "supervisor", "north")
    clients = {ANONYMOUS: app.test_client()}
    for role, address in PEOPLE.items():
        clients[role] = app.test_client()
        sign_in(clients[role], app, address)
    own_session = client.get(f"/v1/incidents/{own}", headers=keys.auth("coordinator")).get_json()["sessions"][0]["id"]
    return {"own": own, "other": other, "accounts": accounts, "spare": spare, "clients": clients,
            "facilitator": {"own": roster[-1], "other": other_facilitator},
            # The other agency's one peer cannot staff its incident: no session there, so any id is another agency's.
            "own_session": own_session, "other_session": str(uuid.uuid4())}


def url_of(rule, world, target: str) -> str:
    values = {}
    for name in rule.arguments:
        if name == "incident_id":
            values[name] = world[target]
        elif name == "facilitator_id":
            values[name] = world["facilitator"][target]
        elif name == "account_id":
            values[name] = world["spare"]
        elif name == "session_id":
            values[name] = world[f"{target}_session"]
        elif name == "token":
            values[name] = "not-a-link"
        elif name == "key_id":
            values[name] = 1  # the first of the fixtures' API keys (admins only: no agency scope)
        else:
            pytest.fail(f"{rule.endpoint}: no value known for the path parameter {name!r}")
    return rule.build(values, append_unknown=False)[1]


def expected(endpoint: str, role: str, target: str, method: str) -> int:
    if (role if role != ANONYMOUS else ANONYMOUS) not in PAGE_MATRIX[endpoint]:
        return 303 if role == ANONYMOUS else 403
    if endpoint == "signin.link":
        return 410
    if method == "POST":
        return 404 if target == "other" else POSTED[endpoint]
    if (endpoint, role) in SENT_ON:
        return 303
    return 404 if target == "other" else 200


@pytest.mark.parametrize("role", [ANONYMOUS, *PEOPLE])
def test_each_role_sees_the_pages_of_the_table_and_no_other(app, world, role):
    client = world["clients"][role]
    checked = 0
    for rule in console_rules(app):
        targets = ("own", "other") if {"incident_id", "facilitator_id"} & rule.arguments else ("own",)
        for target in targets:
            url = url_of(rule, world, target)
            if "GET" in rule.methods:
                answer = client.get(url)
                assert answer.status_code == expected(rule.endpoint, role, target, "GET"), (rule.endpoint, url)
                checked += 1
            elif role not in PAGE_MATRIX[rule.endpoint] or rule.endpoint in POSTED or target == "other":
                token = csrf_of(client.get(TOKEN_PAGE[role]).get_data(as_text=True))
                answer = client.post(url, data={"csrf_token": token})
                assert answer.status_code == expected(rule.endpoint, role, target, "POST"), (rule.endpoint, url)
                checked += 1
            else:
                continue
            assert answer.mimetype == "text/html"
            if answer.status_code == 303 and role == ANONYMOUS:
                assert answer.headers["Location"].startswith("/signin?next=")
            if answer.status_code == 403:
                assert "You do not have access to this page" in answer.get_data(as_text=True)
    assert checked >= len(PAGE_MATRIX)


def test_the_sign_in_page_brings_people_back_only_to_this_site(app, client, world):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "/signin/abc"):
        page = client.get(f"/signin?next={target}").get_data(as_text=True)
        assert 'name="next" value=""' in page
    assert 'name="next" value="/incidents?at_risk=1"' in client.get("/signin?next=/incidents?at_risk%3D1").get_data(as_text=True)


def test_the_navigation_follows_the_role(world):
    def nav(role):
        html = world["clients"][role].get(TOKEN_PAGE[role]).get_data(as_text=True)
        return html.split('<ul class="top__nav">')[1].split("</ul>")[0]

    assert "/incidents" in nav("coordinator") and "/accounts" not in nav("coordinator")
    assert "/incidents" in nav("supervisor") and "/agencies" not in nav("supervisor")
    assert "/agencies" in nav("admin") and "/accounts" in nav("admin") and "/incidents" not in nav("admin")
    assert "/my-sessions" in nav("facilitator") and "/incidents" not in nav("facilitator")
