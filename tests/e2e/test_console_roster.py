"""The coordinators' roster and agency pages in a real headless Chromium: a coordinator signs in from the
emailed link and adds a clinician through the form; every page accessible in both languages."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.browser import assert_accessible, screenshot
from tests.console_helpers import seed_live_console
from tests.e2e.test_console_pages import both_languages_accessible, follow, sign_in
from tests.factories import facilitator_body
from tests.integration.planning_helpers import add_roster

COORDINATOR = "coord@north.example.org"


@pytest.fixture
def world(live):
    """Agencies, a roster with a certification that expires soon, and a coordinator's account."""
    keys, api = seed_live_console(live, (COORDINATOR, "coordinator", "north"))
    add_roster(api, keys, clinicians=1, peers=2)
    soon = facilitator_body(7, name="Marie Tremblay", languages=["fr", "en"],
                            certifications=[{"name": "GCI", "expires_on": "2026-12-12"}])
    assert api.post("/v1/facilitators", json=soon, headers=keys.auth("coordinator")).status_code == 201
    return {"services": live.app.extensions["debrief"], "api": api, "keys": keys}


def set_value(page, element_id: str, value: str) -> None:
    """Type into a date field whatever the browser's locale (its typed format differs)."""
    page.execute_script("arguments[0].value = arguments[1]", page.find_element(By.ID, element_id), value)


def test_a_coordinator_adds_a_clinician_to_the_roster(page, live, sink, world):
    sign_in(page, live, sink, world, COORDINATOR)
    page.get(f"{live.url}/roster?lang=fr")
    main = page.find_element(By.TAG_NAME, "main").text
    assert "Marie Tremblay" in main and "GCI expire le" in main
    screenshot(page, "console-roster-fr")
    both_languages_accessible(page, f"{live.url}/roster")
    both_languages_accessible(page, f"{live.url}/roster?kind=peer&language=fr")
    both_languages_accessible(page, f"{live.url}/agency")

    page.get(f"{live.url}/roster/new?lang=en")
    page.find_element(By.ID, "name").send_keys("Dr. Anne Roy")
    page.find_element(By.ID, "email").send_keys("anne.roy@cism.example.org")
    page.find_element(By.CSS_SELECTOR, "#kind option[value=clinician]").click()
    page.find_element(By.ID, "regions").send_keys("north-east, north-west")
    page.find_element(By.ID, "certifications-0-name").send_keys("GCI")
    set_value(page, "certifications-0-expires_on", "2027-06-30")
    follow(page, By.CSS_SELECTOR, "form[action='/roster/new'] button[type=submit]")
    # A clinician without a LICENSE: the error beside the field, what was typed kept.
    assert page.find_element(By.ID, "certifications-0-name-error").is_displayed()
    assert page.find_element(By.ID, "name").get_attribute("value") == "Dr. Anne Roy"
    assert_accessible(page)
    page.find_element(By.ID, "certifications-1-name").send_keys("LICENSE")
    set_value(page, "certifications-1-expires_on", "2027-06-30")
    follow(page, By.CSS_SELECTOR, "form[action='/roster/new'] button[type=submit]")
    assert "Dr. Anne Roy was added to the roster." in page.find_element(By.TAG_NAME, "main").text
    added = [f for f in world["api"].get("/v1/facilitators", headers=world["keys"].auth("coordinator")).get_json()["items"]
             if f["email"] == "anne.roy@cism.example.org"]
    assert len(added) == 1 and added[0]["kind"] == "clinician" and added[0]["languages"] == ["fr", "en"]
    assert [w["day"] for w in added[0]["availability"]["weekly"]] == ["mon", "tue", "wed", "thu", "fri"]
    assert_accessible(page)
    screenshot(page, "console-facilitator-edit-en")
    edit = page.current_url.split("?")[0]
    both_languages_accessible(page, edit)
    both_languages_accessible(page, f"{edit}/deactivate")
    both_languages_accessible(page, f"{live.url}/roster/new")
