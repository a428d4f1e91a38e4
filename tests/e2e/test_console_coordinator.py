"""The coordinators' board and incident page in a real headless Chromium: signed in from the emailed link,
an incident with a planning problem re-planned once a clinician joins the roster, a session moved to
another offered time; every page accessible in both languages, at 360 and 1280 px."""

from __future__ import annotations

from datetime import datetime

import pytest
from selenium.webdriver.common.by import By

from tests.browser import assert_accessible, screenshot
from tests.console_helpers import seed_live_console
from tests.e2e.test_console_pages import both_languages_accessible, follow, sign_in
from tests.factories import incident_body, report_planned
from tests.integration.planning_helpers import add_roster

COORDINATOR = "coord@north.example.org"


@pytest.fixture
def world(live):
    """A roster with peers only, so the incident has a planning problem; a coordinator's account."""
    keys, api = seed_live_console(live, (COORDINATOR, "coordinator", "north"))
    add_roster(api, keys, clinicians=0, peers=4)
    incident = report_planned(api, incident_body(people=4), keys.auth("dispatch"))
    assert incident["status"] == "needs_attention"
    return {"incident": incident, "services": live.app.extensions["debrief"], "api": api, "keys": keys}


def test_a_coordinator_replans_an_incident_and_moves_its_session(page, live, sink, world):
    incident = world["incident"]
    sign_in(page, live, sink, world, COORDINATOR)
    page.get(f"{live.url}/incidents?lang=en")
    main = page.find_element(By.TAG_NAME, "main").text
    assert "At risk" in main and "CAD-2026-0001" in main and "Needs attention" in main
    assert "No clinician is free in the window: add one to the roster, or let one lead sessions by video (roster)." in main
    screenshot(page, "console-board-en")
    both_languages_accessible(page, f"{live.url}/incidents")

    # A clinician joins the roster (the roster page is another branch's); the coordinator re-plans.
    add_roster(world["api"], world["keys"], clinicians=1, peers=0, start=20)
    page.get(f"{live.url}/incidents?lang=en")
    follow(page, By.PARTIAL_LINK_TEXT, "CAD-2026-0001")
    assert page.current_url == f"{live.url}/incidents/{incident['id']}"
    follow(page, By.XPATH, "//button[normalize-space()='Re-plan the incident']")
    main = page.find_element(By.TAG_NAME, "main").text
    assert "Re-planned: every group has its session." in main and "Planned" in main
    assert "Facilitator 20 (Clinician)" in main
    assert_accessible(page)
    after = world["api"].get(f"/v1/incidents/{incident['id']}", headers=world["keys"].auth("coordinator")).get_json()
    assert after["status"] == "planned"
    [session] = after["sessions"]
    both_languages_accessible(page, f"{live.url}/incidents/{incident['id']}")
    page.get(f"{live.url}/incidents/{incident['id']}?lang=fr")
    assert "Replanifier l’incident" in page.find_element(By.TAG_NAME, "main").text
    screenshot(page, "console-incident-fr")

    # Reschedule: choose another offered time.
    page.get(f"{live.url}/incidents/{incident['id']}?lang=en")
    follow(page, By.PARTIAL_LINK_TEXT, "Reschedule")
    choices = page.find_elements(By.CSS_SELECTOR, "input[name=starts_at]")
    assert len(choices) > 1
    chosen = choices[-1].get_attribute("value")
    assert_accessible(page)
    follow(page, By.CSS_SELECTOR, "main form button[type=submit]")  # nothing chosen
    assert page.find_element(By.ID, "starts_at-error").is_displayed()
    assert_accessible(page)
    page.find_element(By.CSS_SELECTOR, f"input[name=starts_at][value='{chosen}'] + label").click()
    follow(page, By.CSS_SELECTOR, "main form button[type=submit]")
    assert "The session was moved" in page.find_element(By.TAG_NAME, "main").text
    moved = world["api"].get(f"/v1/sessions/{session['id']}", headers=world["keys"].auth("coordinator")).get_json()
    assert moved["sequence"] == session["sequence"] + 1 and moved["starts_at"] != session["starts_at"]
    assert datetime.fromisoformat(moved["starts_at"]) == datetime.fromisoformat(chosen)
    both_languages_accessible(page, f"{live.url}/incidents/{incident['id']}/sessions/{session['id']}/reschedule")

    # The other pages: cancel (confirm), add a person, follow-ups.
    both_languages_accessible(page, f"{live.url}/incidents/{incident['id']}/sessions/{session['id']}/cancel")
    both_languages_accessible(page, f"{live.url}/incidents/{incident['id']}/personnel")
    page.get(f"{live.url}/incidents/{incident['id']}/personnel?lang=fr")
    follow(page, By.CSS_SELECTOR, "main form button[type=submit]")
    assert "Il y a un problème" in page.find_element(By.TAG_NAME, "main").text
    assert_accessible(page)
    both_languages_accessible(page, f"{live.url}/incidents/{incident['id']}/followups")
