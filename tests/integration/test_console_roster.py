"""The coordinators' roster in the console: the list and its filters, a facilitator's form (the API's rules),
weekly availability and time off that re-plan a booked session, deactivation; another agency's facilitator is a 404."""

from __future__ import annotations

import re

import pytest

from tests.console_helpers import add_account, csrf_of, post_form, sign_in, signed_in_client
from tests.factories import facilitator_body, incident_body
from tests.integration.planning_helpers import add_roster
from tests.integration.test_facilitator_pages import api_session, exceptions_of, report, team_of

COORDINATOR = "coord@north.example.org"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def page_text(answer, status: int = 200) -> str:
    assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True)[:3000])
    return answer.get_data(as_text=True)


@pytest.fixture
def coordinator(app, keys):
    return signed_in_client(app, COORDINATOR, "coordinator", "north")


def form_of(**overrides) -> dict[str, object]:
    """The facilitator form as a person fills it in: a clinician available 07:00-22:00 every day."""
    data: dict[str, object] = {
        "name": "Dr. Anne Roy", "email": "anne.roy@cism.example.org", "kind": "clinician", "unit": "",
        "external_id": "", "languages": ["fr", "en"], "regions": "north-east, north-west", "virtual_ok": "y",
        "timezone": "America/Toronto",
        "certifications-0-name": "GCI", "certifications-0-expires_on": "2027-06-30",
        "certifications-1-name": "LICENSE", "certifications-1-expires_on": "2027-06-30",
        "certifications-2-name": "", "certifications-2-expires_on": "",
        "certifications-3-name": "", "certifications-3-expires_on": "",
    }
    for n, _day in enumerate(DAYS):
        data.update({f"weekly-{n}-available": "y", f"weekly-{n}-start": "07:00", f"weekly-{n}-end": "22:00"})
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def api_roster(client, keys) -> list[dict]:
    return client.get("/v1/facilitators?limit=100", headers=keys.auth("coordinator")).get_json()["items"]


def facilitator_form(client, facilitator_id: int) -> dict[str, object]:
    """The edit form of a facilitator as the page fills it in (what a person who changes nothing sends)."""
    html = page_text(client.get(f"/roster/{facilitator_id}"))
    form = html.split(f'action="/roster/{facilitator_id}"')[1].split("</form>")[0]
    data: dict[str, object] = {}
    for name, value in re.findall(r'<input type="(?:text|email|date|time)" id="[^"]+" name="([^"]+)" value="([^"]*)"', form):
        data[name] = value.replace("&amp;", "&")
    data["languages"] = re.findall(r'name="languages" value="(\w+)" checked', form)
    for name in re.findall(r'<input type="checkbox" id="[^"]+" name="([^"]+)" value="y" checked', form):
        data[name] = "y"
    for name, value in re.findall(r'<select id="[^"]+" name="([^"]+)"[^>]*>.*?<option value="([^"]*)" selected', form, re.S):
        data[name] = value
    return data


def test_the_roster_is_filtered_and_flags_certifications_that_expire_soon(client, keys, coordinator):
    add_roster(client, keys)
    soon = [{"name": "GCI", "expires_on": "2026-12-12"}]
    gone = [{"name": "GCI", "expires_on": "2026-11-01"}]
    for n, certifications, languages, region in ((7, soon, ["fr"], "south-shore"), (8, gone, ["fr", "en"], "north-east")):
        body = facilitator_body(n, languages=languages, regions=[region], certifications=certifications)
        assert client.post("/v1/facilitators", json=body, headers=keys.auth("coordinator")).status_code == 201
    client.post("/v1/facilitators", json=facilitator_body(9, email="south@cism.example.org"), headers=keys.auth("other_coordinator"))
    html = page_text(coordinator.get("/roster"))
    assert "8 of 8 facilitators" in html and "Facilitator 9" not in html
    assert "GCI expires Dec 12, 2026" in html and "GCI expired Nov 1, 2026" in html
    assert html.count("tag--yellow") == 1 and html.count("tag--red") == 1
    french = page_text(coordinator.get("/roster?language=fr"))
    assert "2 of 8 facilitators" in french and "Facilitator 7" in french and "Facilitator 1<" not in french
    assert 'value="fr" selected' in french
    peers = page_text(coordinator.get("/roster?kind=peer&region=south-shore"))
    assert "1 of 8 facilitators" in peers and "Facilitator 7" in peers
    assert "0 of 8 facilitators" in page_text(coordinator.get("/roster?kind=clinician&region=south-shore"))
    assert "No facilitator matches these filters." in page_text(coordinator.get("/roster?region=nowhere"))
    assert "expire" in page_text(coordinator.get("/roster?lang=fr"))  # "GCI expire le ..." in French


def test_the_provincial_pool_is_on_the_roster_read_only_and_can_be_filtered(client, keys, coordinator):
    add_roster(client, keys)
    pool = facilitator_body(10, kind="peer", agency=None, name="Pool Peer")
    created = client.post("/v1/facilitators", json=pool, headers=keys.auth("admin"))
    assert created.status_code == 201
    pool_id = created.get_json()["id"]
    html = page_text(coordinator.get("/roster"))
    assert "Pool Peer" in html and "provincial pool (managed by the province)" in html
    assert f"/roster/{pool_id}" not in html  # another's to edit: no link, and the page itself is a 404
    assert coordinator.get(f"/roster/{pool_id}").status_code == 404
    only_pool = page_text(coordinator.get("/roster?agency=pool"))
    assert "Pool Peer" in only_pool and "Facilitator 1<" not in only_pool
    ours = page_text(coordinator.get("/roster?agency=own"))
    assert "Pool Peer" not in ours and "Facilitator 1" in ours


def test_a_facilitator_added_through_the_form_is_on_the_api_roster(client, keys, coordinator):
    assert 'name="weekly-6-start"' in page_text(coordinator.get("/roster/new"))
    created = post_form(coordinator, "/roster/new", form_of(**{"weekly-5-available": None, "weekly-6-available": None}))
    assert created.status_code == 303, created.get_data(as_text=True)
    [added] = api_roster(client, keys)
    assert created.headers["Location"] == f"/roster/{added['id']}"
    assert added["kind"] == "clinician" and added["languages"] == ["fr", "en"] and added["virtual_ok"] is True
    assert added["regions"] == ["north-east", "north-west"] and added["agency"] == "north" and added["unit"] is None
    assert [w["day"] for w in added["availability"]["weekly"]] == list(DAYS[:5])
    assert {c["name"] for c in added["certifications"]} == {"GCI", "LICENSE"}
    page = page_text(coordinator.get(created.headers["Location"]))
    assert "Dr. Anne Roy was added to the roster." in page and 'value="north-east, north-west"' in page


@pytest.mark.parametrize("change, field, message", [
    ({"email": "anne.roy-at-example"}, "email", "Enter an email address in the form name@example.org."),
    ({"kind": "shaman"}, "kind", "Choose peer or clinician."),
    ({"certifications-1-name": "", "certifications-1-expires_on": ""}, "certifications-0-name", "A clinician needs a LICENSE"),
    ({"certifications-2-name": "cpr", "certifications-2-expires_on": "2027-13-40"}, "certifications-2-name", "upper-case code"),
    ({"certifications-2-name": "CPR", "certifications-2-expires_on": "soon"}, "certifications-2-expires_on", "Enter a date"),
    ({"weekly-2-start": "8am"}, "weekly-2-start", "Enter a time such as 08:00"),
    ({"languages": ["de"]}, "languages", "Choose at least one language."),
    ({"languages": None}, "languages", "Choose at least one language."),
    ({"timezone": "Mars/Olympus"}, "timezone", "Choose one of the time zones."),
    ({"regions": "a, a"}, "regions", "each once"),
    ({"name": "  ", "email": "x" * 300}, "name", "Enter the name"),
])
def test_a_wrong_form_shows_the_error_beside_the_field_keeps_what_was_typed_and_stores_nothing(
        client, keys, coordinator, change, field, message):
    answer = post_form(coordinator, "/roster/new", form_of(**change))
    html = page_text(answer, 422)
    assert f'href="#{field}"' in html and message in html and f'id="{field}-error"' in html or field == "languages"
    assert message in html and ('value="Dr. Anne Roy"' in html or 'value="' + "x" * 300 + '"' in html)
    assert api_roster(client, keys) == []


def test_junk_and_a_missing_csrf_token_store_nothing(client, keys, coordinator):
    junk = coordinator.post("/roster/new", data={"csrf_token": csrf_of(page_text(coordinator.get("/roster/new"))),
                                                 "weekly-0-available": "y", "certifications-99-name": "\x00", "kind": ""})
    assert junk.status_code == 422
    assert coordinator.post("/roster/new", data=form_of()).status_code == 400
    assert api_roster(client, keys) == []


def test_unchecking_a_day_on_the_weekly_editor_replans_the_booked_session(app, client, keys, coordinator):
    add_roster(client, keys, clinicians=2, peers=2)
    session = report(client, keys, incident_body())["sessions"][0]
    clinician = team_of(session, "clinician")
    data = facilitator_form(coordinator, clinician)
    assert data["weekly-0-available"] == "y" and data["weekly-0-start"] == "07:00"
    data.pop("weekly-0-available")  # no longer available on Mondays (the session is on Monday the 23rd)
    saved = post_form(coordinator, f"/roster/{clinician}", data)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    after = api_session(client, keys, session["id"])
    assert clinician not in {f["id"] for f in after["facilitators"]}
    assert after["sequence"] == 1 and after["starts_at"] == session["starts_at"]
    api = client.get(f"/v1/facilitators/{clinician}", headers=keys.auth("coordinator")).get_json()
    assert [w["day"] for w in api["availability"]["weekly"]] == list(DAYS[1:])
    assert "gets a replacement" in page_text(coordinator.get(saved.headers["Location"]))


def test_an_edit_with_errors_keeps_what_was_typed_and_changes_nothing(client, keys, coordinator):
    [fid] = add_roster(client, keys, clinicians=1, peers=0)
    before = client.get(f"/v1/facilitators/{fid}", headers=keys.auth("coordinator")).get_json()
    data = facilitator_form(coordinator, fid)
    data.update({"name": "Renamed", "email": "not-an-address"})
    html = page_text(post_form(coordinator, f"/roster/{fid}", data), 422)
    assert 'value="Renamed"' in html and 'value="not-an-address"' in html and 'href="#email"' in html
    assert client.get(f"/v1/facilitators/{fid}", headers=keys.auth("coordinator")).get_json() == before


def test_time_off_is_added_and_removed_and_a_wrong_period_is_refused(client, keys, coordinator):
    add_roster(client, keys, clinicians=2, peers=2)
    session = report(client, keys, incident_body())["sessions"][0]
    peer = team_of(session, "peer")
    wrong = post_form(coordinator, f"/roster/{peer}/time-off", {"start_date": "2026-12-24", "end_date": "2026-12-20"},
                      form_page=f"/roster/{peer}")
    html = page_text(wrong, 422)
    assert "The end must be after the start." in html and 'value="2026-12-24"' in html
    assert exceptions_of(client, keys, peer) == []
    added = post_form(coordinator, f"/roster/{peer}/time-off", {"start_date": "2026-11-23", "end_date": "2026-11-23"},
                      form_page=f"/roster/{peer}")
    assert added.status_code == 303
    assert exceptions_of(client, keys, peer) == [{"start": "2026-11-23T00:00:00-05:00", "end": "2026-11-24T00:00:00-05:00"}]
    assert peer not in {f["id"] for f in api_session(client, keys, session["id"])["facilitators"]}
    page = page_text(coordinator.get(f"/roster/{peer}"))
    assert "Monday, November 23, 2026 (the whole day)" in page
    [start, end] = re.search(r'name="start" value="([^"]+)">\s*<input type="hidden" name="end" value="([^"]+)"', page).groups()
    removed = post_form(coordinator, f"/roster/{peer}/time-off/remove", {"start": start, "end": end}, form_page=f"/roster/{peer}")
    assert removed.status_code == 303 and exceptions_of(client, keys, peer) == []
    bad = post_form(coordinator, f"/roster/{peer}/time-off/remove", {"start": "junk"}, form_page=f"/roster/{peer}")
    assert bad.status_code == 400


def test_deactivating_asks_first_then_replaces_them_on_their_sessions(client, keys, coordinator):
    add_roster(client, keys, clinicians=2, peers=2)
    session = report(client, keys, incident_body())["sessions"][0]
    peer = team_of(session, "peer")
    confirm = page_text(coordinator.get(f"/roster/{peer}/deactivate"))
    assert "gets a replacement" in confirm
    assert client.get(f"/v1/facilitators/{peer}", headers=keys.auth("coordinator")).get_json()["active"] is True
    done = post_form(coordinator, f"/roster/{peer}/deactivate", {})
    assert done.status_code == 303 and done.headers["Location"] == "/roster"
    assert client.get(f"/v1/facilitators/{peer}", headers=keys.auth("coordinator")).get_json()["active"] is False
    after = api_session(client, keys, session["id"])
    assert peer not in {f["id"] for f in after["facilitators"]} and after["sequence"] == 1
    assert "inactive" in page_text(coordinator.get("/roster"))
    again = post_form(coordinator, f"/roster/{peer}/reactivate", {}, form_page=f"/roster/{peer}")
    assert again.status_code == 303
    assert client.get(f"/v1/facilitators/{peer}", headers=keys.auth("coordinator")).get_json()["active"] is True


def test_another_agencys_facilitator_is_a_404_and_a_supervisor_gets_403(app, client, keys, coordinator):
    south = client.post("/v1/facilitators", json=facilitator_body(9), headers=keys.auth("other_coordinator")).get_json()["id"]
    for path in (f"/roster/{south}", f"/roster/{south}/deactivate"):
        answer = coordinator.get(path)
        assert answer.status_code == 404 and "Facilitator 9" not in answer.get_data(as_text=True)
    assert post_form(coordinator, f"/roster/{south}/deactivate", {}, form_page="/roster").status_code == 404
    assert client.get(f"/v1/facilitators/{south}", headers=keys.auth("other_coordinator")).get_json()["active"] is True
    add_account(app, "sup@north.example.org", "supervisor", "north")
    supervisor = app.test_client()
    sign_in(supervisor, app, "sup@north.example.org")
    assert supervisor.get("/roster").status_code == 403 and supervisor.get("/roster/new").status_code == 403


# -- the coordinator's agency ---------------------------------------------------------------------------------


def agency_of(client, keys, code: str = "north") -> dict:
    return client.get(f"/v1/agencies/{code}", headers=keys.auth("admin")).get_json()


def test_the_agency_page_changes_the_addresses_as_the_api_would(client, keys, coordinator):
    page = page_text(coordinator.get("/agency"))
    assert "North Police" in page and "No secret is set" in page and 'value="24"' in page
    wrong = post_form(coordinator, "/agency/contact", {"coordinator_email": "cism-at-north", "webhook_url": "ftp://x.example"},
                      form_page="/agency")
    html = page_text(wrong, 422)
    assert 'value="cism-at-north"' in html and 'href="#coordinator_email"' in html and 'href="#webhook_url"' in html
    assert agency_of(client, keys)["coordinator_email"] is None
    # A webhook address only once the agency has its own secret: nothing would sign the events.
    early = post_form(coordinator, "/agency/contact", {"coordinator_email": "cism@north.example.org",
                                                       "webhook_url": "https://hooks.north.example.org/debrief"},
                      form_page="/agency")
    assert "Create the webhook secret first" in page_text(early, 422)
    assert agency_of(client, keys)["webhook_url"] is None
    post_form(coordinator, "/agency/webhook-secret", {}, form_page="/agency")
    saved = post_form(coordinator, "/agency/contact", {"coordinator_email": "cism@north.example.org",
                                                       "webhook_url": "https://hooks.north.example.org/debrief"}, form_page="/agency")
    assert saved.status_code == 303
    agency = agency_of(client, keys)
    assert agency["coordinator_email"] == "cism@north.example.org"
    assert agency["webhook_url"] == "https://hooks.north.example.org/debrief"
    cleared = post_form(coordinator, "/agency/contact", {"coordinator_email": "", "webhook_url": ""}, form_page="/agency")
    assert cleared.status_code == 303 and agency_of(client, keys)["webhook_url"] is None
    assert agency_of(client, keys, "south")["coordinator_email"] is None


def webhook_error(html: str) -> str:
    """The error shown beside the webhook address field."""
    found = re.search(r'<span class="error-message" id="webhook_url-error">.*?</span>\s*(.*?)</span>', html, re.S)
    assert found, "no error beside the webhook address"
    return found.group(1).strip()


def test_the_agency_page_refuses_a_webhook_address_inside_our_network_beside_the_field(app, client, keys, coordinator):
    post_form(coordinator, "/agency/webhook-secret", {}, form_page="/agency")
    hook = {"coordinator_email": "cism@north.example.org", "webhook_url": "https://hooks.north.example.org/debrief"}
    assert post_form(coordinator, "/agency/contact", hook, form_page="/agency").status_code == 303
    before = agency_of(client, keys)
    for url in ("https://169.254.169.254/latest/meta-data/", "https://localhost:6379/", "https://0x7f000001/", "https://[::1]/"):
        typed = {"coordinator_email": "team@north.example.org", "webhook_url": url}
        html = page_text(post_form(coordinator, "/agency/contact", typed, form_page="/agency"), 422)
        assert webhook_error(html).startswith("Enter the receiver’s public internet address"), url
        assert 'href="#webhook_url"' in html and f'value="{url}"' in html
        assert agency_of(client, keys) == before
    # Plain http: the embedded default (here, SQLite without Redis) takes it, a deployment asks for https.
    plain = post_form(coordinator, "/agency/contact", {**hook, "webhook_url": "http://hooks.north.example.org/debrief"},
                      form_page="/agency")
    if app.extensions["debrief"].config.embedded:
        assert plain.status_code == 303
    else:
        assert webhook_error(page_text(plain, 422)).startswith("Enter an address that starts with https://:")
        assert agency_of(client, keys) == before


def test_the_webhook_secret_is_shown_once(app, client, keys, coordinator):
    shown = page_text(post_form(coordinator, "/agency/webhook-secret", {}, form_page="/agency"))
    secret = re.search(r'<textarea id="new-secret"[^>]*>(whsec_[A-Za-z0-9+/=]+)</textarea>', shown).group(1)
    from service.agencies.models import Agency
    with app.extensions["debrief"].session_factory() as db:
        assert db.query(Agency).filter_by(code="north").one().webhook_secret == secret
    again = page_text(coordinator.get("/agency"))
    assert secret not in again and "A secret is set" in again
    assert coordinator.post("/agency/webhook-secret").status_code == 400  # no CSRF token


def test_planning_numbers_are_checked_as_the_api_checks_them(client, keys, coordinator):
    numbers = {"debriefing_opens_after": "24", "debriefing_closes_after": "96", "defusing_min_severity": "4",
               "defusing_closes_after": "8", "max_group_size": "15", "participants_per_facilitator": "6",
               "max_group_sessions_per_day": "1", "max_group_sessions_per_7_days": "3"}
    saved = post_form(coordinator, "/agency/policy", numbers, form_page="/agency")
    assert saved.status_code == 303
    assert agency_of(client, keys)["policy"] == {"debriefing_closes_after": 96, "max_group_size": 15}
    for wrong, field in (({"debriefing_closes_after": "12"}, "debriefing_closes_after"),
                         ({"max_group_size": "0"}, "max_group_size"),
                         ({"max_group_sessions_per_7_days": "abc"}, "max_group_sessions_per_7_days"),
                         ({"defusing_closes_after": "-3"}, "defusing_closes_after")):
        html = page_text(post_form(coordinator, "/agency/policy", {**numbers, **wrong}, form_page="/agency"), 422)
        assert f'href="#{field}"' in html, wrong
    assert agency_of(client, keys)["policy"] == {"debriefing_closes_after": 96, "max_group_size": 15}
    back = post_form(coordinator, "/agency/policy", {**numbers, "debriefing_closes_after": "72"}, form_page="/agency")
    assert back.status_code == 303 and agency_of(client, keys)["policy"] == {"max_group_size": 15}


def test_only_coordinators_see_their_agency(app, client, keys):
    add_account(app, "sup@north.example.org", "supervisor", "north")
    supervisor = app.test_client()
    sign_in(supervisor, app, "sup@north.example.org")
    assert supervisor.get("/agency").status_code == 403
    add_account(app, "coord@south.example.org", "coordinator", "south")
    south = app.test_client()
    sign_in(south, app, "coord@south.example.org")
    assert "South Police" in page_text(south.get("/agency")) and "North Police" not in page_text(south.get("/agency"))
