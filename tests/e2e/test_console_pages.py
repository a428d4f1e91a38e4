"""The staff console in a real headless Chromium: signing in from the emailed link, a supervisor's
incident as counts, an admin creating an account; every page accessible in both languages."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By

from service.accounts import service as accounts
from tests.browser import assert_accessible, follow_link, screenshot
from tests.conftest import seed_agencies
from tests.factories import incident_body, report_planned
from tests.integration.planning_helpers import add_roster
from workers.relay import in_process_dispatch, relay_once

SUPERVISOR = "sup@north.example.org"
ADMIN = "admin@cism.example.org"


@pytest.fixture
def world(live):
    """Agencies, a roster, an incident with six people, and a supervisor's and an admin's accounts."""
    services = live.app.extensions["debrief"]
    with services.session_factory() as db:
        keys = seed_agencies(db)
        for address, role, agency in ((SUPERVISOR, "supervisor", "north"), (ADMIN, "admin", None)):
            accounts.create_account(db, email=address, role=role, agency_code=agency, now=services.clock())
    api = live.app.test_client()
    add_roster(api, keys)
    incident = report_planned(api, incident_body(people=6), keys.auth("dispatch"))
    return {"incident": incident, "services": services}


def follow(page, by: str, selector: str) -> None:
    """Click what leads to another page, and wait until that page has replaced this one."""
    follow_link(page, by, selector)


def both_languages_accessible(page, url: str) -> None:
    """The page at `url`, in French and in English, has no axe-core violation at 360 and 1280 px."""
    for lang in ("fr", "en"):
        page.get(f"{url}{'&' if '?' in url else '?'}lang={lang}")
        assert page.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
        assert_accessible(page)


def sign_in(page, live, sink, world, address: str) -> None:
    """Ask for a link on the sign-in page, read the email the SMTP server got, open it and press the button."""
    page.get(f"{live.url}/signin?lang=en")
    page.find_element(By.ID, "email").send_keys(address)
    follow(page, By.CSS_SELECTOR, "main form button[type=submit]")
    assert "a sign-in link is on its way" in page.find_element(By.TAG_NAME, "main").text
    relay_once(world["services"], in_process_dispatch(world["services"]))
    [email] = [m for m in sink.messages if m["To"] == address and "sign in" in m["Subject"]]
    link = re.search(r"http://127\.0\.0\.1:\d+/signin/[A-Za-z0-9_-]+", email.get_body(("plain",)).get_content()).group(0)
    page.get(link)
    assert_accessible(page)
    follow(page, By.CSS_SELECTOR, "main form button[type=submit]")
    assert f"Signed in as {address}" in page.find_element(By.TAG_NAME, "header").text


def test_a_supervisor_signs_in_from_the_emailed_link_and_sees_counts_and_no_name(page, live, sink, world):
    page.get(f"{live.url}/signin?lang=fr")
    assert page.find_element(By.TAG_NAME, "h1").text == "Se connecter"
    assert_accessible(page)
    screenshot(page, "console-signin-fr")
    page.get(f"{live.url}/signin?lang=en")
    follow(page, By.CSS_SELECTOR, "main form button[type=submit]")  # nothing typed
    assert page.find_element(By.CSS_SELECTOR, ".error-summary a").get_attribute("href").endswith("#email")
    assert_accessible(page)
    sign_in(page, live, sink, world, SUPERVISOR)
    assert page.current_url == f"{live.url}/"
    both_languages_accessible(page, f"{live.url}/")
    both_languages_accessible(page, f"{live.url}/incidents")
    both_languages_accessible(page, f"{live.url}/incidents?at_risk=1")
    page.get(f"{live.url}/incidents?lang=en")
    follow(page, By.PARTIAL_LINK_TEXT, "CAD-2026-0001")
    main = page.find_element(By.TAG_NAME, "main").text
    assert "Group debriefing (CISD)" in main and "People involved\n6" in main.replace(": ", "\n")
    assert "Not sent yet" in main
    source = page.page_source
    for n in range(1, 7):
        assert f"Number{n}" not in source and f"officer{n}@" not in source and f"B000{n}" not in source
    assert "555" not in source
    screenshot(page, "console-supervisor-incident-en")
    both_languages_accessible(page, f"{live.url}/incidents/{world['incident']['id']}/status")
    both_languages_accessible(page, f"{live.url}/accounts")  # a page the role may not see: the 403 page
    assert "Vous n’avez pas accès à cette page" in page.page_source.replace("&nbsp;", " ") or page.find_element(By.TAG_NAME, "h1")
    follow(page, By.CSS_SELECTOR, "header form button")  # sign out
    assert "You are signed out." in page.find_element(By.TAG_NAME, "main").text or "Vous êtes déconnecté." in page.page_source
    assert_accessible(page)


def test_an_admin_creates_an_account(page, live, sink, world):
    sign_in(page, live, sink, world, ADMIN)
    both_languages_accessible(page, f"{live.url}/accounts")
    both_languages_accessible(page, f"{live.url}/accounts/new")
    both_languages_accessible(page, f"{live.url}/agencies")
    both_languages_accessible(page, f"{live.url}/agencies/new")
    page.get(f"{live.url}/accounts/new?lang=en")
    page.find_element(By.ID, "email").send_keys("New.Coordinator@north.example.org")
    page.find_element(By.CSS_SELECTOR, "#role option[value=coordinator]").click()
    follow(page, By.CSS_SELECTOR, "form[action='/accounts/new'] button[type=submit]")
    # No agency for a coordinator: the error beside the field, what was typed kept.
    assert page.find_element(By.ID, "agency-error").is_displayed()
    assert page.find_element(By.ID, "email").get_attribute("value") == "New.Coordinator@north.example.org"
    assert_accessible(page)
    page.find_element(By.CSS_SELECTOR, "#agency option[value=north]").click()
    follow(page, By.CSS_SELECTOR, "form[action='/accounts/new'] button[type=submit]")
    assert page.current_url.endswith("/accounts")
    assert "The account of new.coordinator@north.example.org was created" in page.find_element(By.TAG_NAME, "main").text
    assert_accessible(page)
    follow(page, By.LINK_TEXT, "new.coordinator@north.example.org")
    assert_accessible(page)
    page.get(f"{live.url}/accounts/new?lang=fr")
    follow(page, By.CSS_SELECTOR, "form[action='/accounts/new'] button[type=submit]")
    assert "Il y a un problème" in page.find_element(By.TAG_NAME, "main").text
    assert_accessible(page)


def test_an_admin_issues_a_dispatch_key_and_revokes_it(page, live, sink, world):
    sign_in(page, live, sink, world, ADMIN)
    both_languages_accessible(page, f"{live.url}/keys")
    both_languages_accessible(page, f"{live.url}/keys/new")
    page.get(f"{live.url}/keys/new?lang=en")
    follow(page, By.CSS_SELECTOR, "form[action='/keys/new'] button[type=submit]")
    assert page.find_element(By.ID, "role-error").is_displayed()  # nothing chosen: the error beside the field
    assert_accessible(page)
    page.find_element(By.CSS_SELECTOR, "#role option[value=dispatch]").click()
    page.find_element(By.CSS_SELECTOR, "#agency option[value=north]").click()
    follow(page, By.CSS_SELECTOR, "form[action='/keys/new'] button[type=submit]")
    secret = page.find_element(By.CSS_SELECTOR, "code.secret").text
    assert secret.startswith("dbk_")
    key_id = page.find_element(By.CSS_SELECTOR, "dl.facts dd").text
    assert_accessible(page)
    api = live.app.test_client()
    assert api.get("/v1/incidents", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    page.get(f"{live.url}/keys?lang=en")
    assert "dbk_" not in page.page_source
    follow(page, By.CSS_SELECTOR, f"form[action='/keys/{key_id}/revoke'] button")
    assert "is revoked" in page.find_element(By.TAG_NAME, "main").text
    assert api.get("/v1/incidents", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
