"""The console's pages: supervisors see counts and never a person; admins manage accounts and agencies."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from service.accounts.models import Account, ConsoleSession
from service.agencies.models import Agency
from tests.console_helpers import add_account, csrf_of, post_form, sign_in
from tests.factories import incident_body, report_planned
from tests.integration.planning_helpers import add_roster
from tests.integration.test_supervisor_status import token_of

SUPERVISOR = "sup@north.example.org"
ADMIN = "admin@cism.example.org"


def text_of(answer) -> str:
    assert answer.status_code == 200, answer.status_code
    return answer.get_data(as_text=True)


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture
def supervisor_client(app, client, keys):
    add_account(app, SUPERVISOR, "supervisor", "north")
    browser = app.test_client()
    sign_in(browser, app, SUPERVISOR)
    return browser


def test_supervisor_pages_show_counts_and_nothing_about_any_person(app, client, keys, clock, supervisor_client):
    add_roster(client, keys)
    incident = report_planned(client, incident_body(people=6), keys.auth("dispatch"))
    clock.advance(minutes=10)
    declined = client.post(f"/v1/responses/{token_of(app, 'B0001', 'offer')}", json={"action": "decline"})
    assert declined.status_code == 200
    clock.advance(days=30)
    screened = client.post(f"/v1/responses/{token_of(app, 'B0002', 'screening')}",
                           json={"action": "answer", "answers": [True] * 5})
    assert screened.status_code == 200
    sign_in(supervisor_client, app, SUPERVISOR)  # 30 days later: the first session has long expired
    listing = text_of(supervisor_client.get("/incidents"))
    assert "CAD-2026-0001" in listing and f"/incidents/{incident['id']}/status" in listing
    page = text_of(supervisor_client.get(f"/incidents/{incident['id']}/status"))
    api = client.get(f"/v1/incidents/{incident['id']}/status", headers=keys.auth("supervisor")).get_json()
    assert api["offers"]["declined"] == "masked" and api["checkins"]["completed"] == "masked"
    words = visible_text(page)
    assert "Group debriefing (CISD)" in words and "masked" in words
    for html in (listing, page, text_of(supervisor_client.get("/incidents?at_risk=1"))):
        for n in range(1, 7):
            assert f"Number{n}" not in html and f"officer{n}@" not in html and f"B000{n}" not in html
        assert "555" not in html and "/v1/responses/" not in html and "/r/" not in html
        for clinical in ("escalat", "positive", "screen", "PC-PTSD"):
            assert clinical not in html.lower()
    # The page shows exactly what the API shows supervisors, cell by cell.
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td>(?:<span class="masked">)?([^<]+)', page))
    assert rows["Not sent yet"] in (str(api["offers"]["scheduled"]), str(api["checkins"]["scheduled"]))
    assert rows["Declined"] == str(api["offers"]["declined"])


def test_another_agencys_incident_is_a_404_page(app, client, keys, supervisor_client):
    other = report_planned(client, incident_body("CAD-SOUTH"), keys.auth("other_dispatch"))
    answer = supervisor_client.get(f"/incidents/{other['id']}/status")
    assert answer.status_code == 404 and "CAD-SOUTH" not in answer.get_data(as_text=True)
    assert "CAD-SOUTH" not in text_of(supervisor_client.get("/incidents"))
    assert supervisor_client.get("/incidents?cursor=not-a-cursor").status_code == 422


@pytest.fixture
def admin_client(app, keys):
    add_account(app, ADMIN, "admin")
    browser = app.test_client()
    sign_in(browser, app, ADMIN)
    return browser


def accounts_of(app) -> dict[str, tuple[str, int | None, bool]]:
    with app.extensions["debrief"].session_factory() as db:
        return {a.email: (a.role, a.agency_id, a.disabled_at is not None) for a in db.scalars(select(Account))}


def test_an_admin_creates_an_account_and_a_wrong_form_keeps_what_was_typed(app, admin_client):
    wrong = post_form(admin_client, "/accounts/new", {"email": "New.Coord@North.example.org", "role": "coordinator", "agency": ""})
    assert wrong.status_code == 422
    html = wrong.get_data(as_text=True)
    assert 'value="New.Coord@North.example.org"' in html and 'href="#agency"' in html
    assert "Choose the agency this person works for." in html and set(accounts_of(app)) == {ADMIN}
    for data in ({"email": "x", "role": "admin", "agency": ""}, {"email": "a@b.example", "role": "king", "agency": ""},
                 {"email": "a@b.example", "role": "admin", "agency": "north"}, {"email": "a@b.example", "role": "supervisor", "agency": "nowhere"}):
        assert post_form(admin_client, "/accounts/new", data).status_code == 422
    created = post_form(admin_client, "/accounts/new", {"email": "New.Coord@North.example.org", "role": "coordinator", "agency": "north"})
    assert created.status_code == 303 and created.headers["Location"] == "/accounts"
    assert "The account of new.coord@north.example.org was created" in text_of(admin_client.get("/accounts"))
    assert accounts_of(app)["new.coord@north.example.org"][0] == "coordinator"
    again = post_form(admin_client, "/accounts/new", {"email": "new.coord@north.example.org", "role": "supervisor", "agency": "north"})
    assert again.status_code == 422 and "There is already an account with this email address." in again.get_data(as_text=True)


def test_an_admin_changes_a_role_and_disabling_signs_the_account_out(app, admin_client):
    account_id = add_account(app, SUPERVISOR, "supervisor", "north")
    browser = app.test_client()
    sign_in(browser, app, SUPERVISOR)
    changed = post_form(admin_client, f"/accounts/{account_id}", {"role": "coordinator", "agency": "north"})
    assert changed.status_code == 303 and accounts_of(app)[SUPERVISOR][0] == "coordinator"
    assert browser.get("/incidents").status_code == 200  # the new role, from the next page on
    disabled = post_form(admin_client, f"/accounts/{account_id}/access", {"access": "disable"}, form_page=f"/accounts/{account_id}")
    assert disabled.status_code == 303 and accounts_of(app)[SUPERVISOR][2] is True
    assert browser.get("/incidents").status_code == 303
    with app.extensions["debrief"].session_factory() as db:
        assert db.scalar(select(func.count()).select_from(ConsoleSession).where(ConsoleSession.account_id == account_id)) == 0
    enabled = post_form(admin_client, f"/accounts/{account_id}/access", {"access": "enable"}, form_page=f"/accounts/{account_id}")
    assert enabled.status_code == 303 and accounts_of(app)[SUPERVISOR][2] is False


def test_an_admin_cannot_lock_themself_out(app, admin_client):
    own = next(iter(accounts_of(app)))
    with app.extensions["debrief"].session_factory() as db:
        own_id = db.scalar(select(Account.id).where(Account.email == own))
    refused = post_form(admin_client, f"/accounts/{own_id}", {"role": "supervisor", "agency": "north"})
    assert refused.status_code == 422 and "You cannot change your own role." in refused.get_data(as_text=True)
    token = csrf_of(text_of(admin_client.get("/accounts")))
    assert admin_client.post(f"/accounts/{own_id}/access", data={"csrf_token": token, "access": "disable"}).status_code == 303
    assert accounts_of(app)[ADMIN] == ("admin", None, False)
    assert admin_client.get("/accounts").status_code == 200
    assert admin_client.get("/accounts/999999").status_code == 404


def test_an_admin_creates_an_agency(app, admin_client):
    wrong = post_form(admin_client, "/agencies/new", {"code": "East Police", "name": "East Police", "timezone": "Mars/Olympus"})
    assert wrong.status_code == 422
    html = wrong.get_data(as_text=True)
    assert 'href="#code"' in html and 'href="#timezone"' in html and 'value="Mars/Olympus"' in html
    created = post_form(admin_client, "/agencies/new", {"code": "east", "name": "East Police", "timezone": "America/Halifax"})
    assert created.status_code == 303
    assert "East Police" in text_of(admin_client.get("/agencies"))
    taken = post_form(admin_client, "/agencies/new", {"code": "east", "name": "Another", "timezone": "America/Halifax"})
    assert taken.status_code == 422 and "There is already an agency with this code." in taken.get_data(as_text=True)
    with app.extensions["debrief"].session_factory() as db:
        assert db.scalar(select(func.count()).select_from(Agency).where(Agency.code == "east")) == 1
