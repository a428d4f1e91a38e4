"""Facilitators' pages in a real Chromium, opened from the links of the emails the live server sent."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import icalendar
import pytest

from service.calendars.render import event_uid
from service.planner import plan_pending
from tests.browser import assert_accessible, follow_link, screenshot
from tests.conftest import Keys, seed_agencies
from tests.factories import facilitator_body, incident_body
from workers.relay import in_process_dispatch, relay_once

LINK = re.compile(r"(https?://\S+/f/\S+)")
FRENCH = {"fr": "Français", "en": "English"}


@dataclass
class Desk:
    """The live server seen from outside: its API with the agencies' keys, and the emails it sent."""

    live: Any
    sink: Any
    keys: Keys

    def api(self, method: str, path: str, body: Any = None, role: str = "coordinator") -> Any:
        request = urllib.request.Request(
            self.live.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {getattr(self.keys, role)}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def deliver(self) -> None:
        """One pass of the relay: every message due goes to the SMTP sink."""
        services = self.live.app.extensions["debrief"]
        relay_once(services, in_process_dispatch(services))

    def emails_to(self, address: str, subject: str) -> list[str]:
        """The plain-text bodies of the emails one person got with a subject."""
        return [m.get_body(preferencelist=("plain",)).get_content() for m in self.sink.messages
                if m["To"] == address and m["Subject"] == subject]

    def email_of(self, facilitator_id: int) -> str:
        return self.api("GET", f"/v1/facilitators/{facilitator_id}")["email"]

    def feed_url(self, facilitator_id: int) -> str:
        """A new feed URL of the facilitator (only its hash is stored, so it is rotated to be known)."""
        return self.api("POST", f"/v1/facilitators/{facilitator_id}/calendar-token")["calendar_url"]["https"]

    def feed_status(self, url: str, session_id: str, facilitator_id: int) -> str | None:
        with urllib.request.urlopen(url, timeout=30) as answer:
            calendar = icalendar.Calendar.from_ical(answer.read())
        uid = event_uid(session_id, facilitator_id)
        return next((str(e["STATUS"]) for e in calendar.walk("VEVENT") if str(e["UID"]) == uid), None)


@pytest.fixture
def desk(live, sink) -> Desk:
    """The live server with agencies, keys and a roster with spare people, and an incident planned and told."""
    with live.app.extensions["debrief"].session_factory() as db:
        keys = seed_agencies(db)
    desk = Desk(live, sink, keys)
    for n in range(1, 7):
        desk.api("POST", "/v1/facilitators", facilitator_body(n, kind="clinician" if n <= 2 else "peer"))
    desk.api("POST", "/v1/incidents", incident_body(), role="dispatch")
    plan_pending(live.app.extensions["debrief"])  # the planner's pass, as its process makes it
    desk.deliver()
    return desk


def links_in(body: str) -> list[str]:
    return LINK.findall(body)


def both_languages_accessible(page, lang: str = "en") -> None:
    """No axe-core violation in the page's language, then in the other one (through its switch)."""
    assert_accessible(page)
    other = "fr" if lang == "en" else "en"
    click_text(page, FRENCH[other])
    assert page.find_element("tag name", "html").get_attribute("lang") == other
    assert_accessible(page)


def click_text(page, text: str) -> None:
    """Click the link or button that says `text`, and wait for the page it opens."""
    follow_link(page, "xpath", f"//*[self::a or self::button][normalize-space()={json.dumps(text, ensure_ascii=False)}]")


def heading(page) -> str:
    return page.find_element("tag name", "h1").text


def test_a_facilitator_declines_from_their_email_and_a_replacement_takes_the_session(desk, page):
    [session] = desk.api("GET", "/v1/incidents?limit=10", role="dispatch")["items"][0]["sessions"]
    peer = next(f["id"] for f in session["facilitators"] if f["kind"] == "peer")
    address = desk.email_of(peer)
    [email] = desk.emails_to(address, "New assignment")
    session_url, own_url = links_in(email)
    assert urlsplit(session_url).path.endswith(f"/sessions/{session['id']}")
    decliner_feed = desk.feed_url(peer)
    assert desk.feed_status(decliner_feed, session["id"], peer) == "CONFIRMED"

    page.get(session_url)
    assert heading(page) == "Group debriefing (CISD)"
    assert "Officer Number" not in page.page_source and "officer1@" not in page.page_source
    screenshot(page, "facilitator-session-en")
    both_languages_accessible(page)
    assert heading(page) == "Débriefing de groupe (CISD)"
    click_text(page, "English")

    click_text(page, "I cannot lead this session")
    assert heading(page) == "Decline this session?"
    both_languages_accessible(page)
    click_text(page, "English")
    click_text(page, "Yes, I cannot lead this session")
    assert heading(page) == "You have declined this session"
    both_languages_accessible(page)

    after = desk.api("GET", f"/v1/sessions/{session['id']}")
    [replacement] = {f["id"] for f in after["facilitators"]} - {f["id"] for f in session["facilitators"]}
    assert peer not in {f["id"] for f in after["facilitators"]} and after["starts_at"] == session["starts_at"]
    assert desk.feed_status(desk.feed_url(replacement), session["id"], replacement) == "CONFIRMED"
    assert desk.feed_status(decliner_feed, session["id"], peer) == "CANCELLED"

    desk.deliver()
    [cancelled] = desk.emails_to(address, "Session cancelled")
    [own_page] = links_in(cancelled)  # no link to a session they are no longer on
    page.get(own_page)
    assert "You have no upcoming sessions." in page.page_source


def test_a_facilitator_keeps_their_time_off_and_calendar_on_their_page(desk, page):
    [session] = desk.api("GET", "/v1/incidents?limit=10", role="dispatch")["items"][0]["sessions"]
    clinician = next(f["id"] for f in session["facilitators"] if f["kind"] == "clinician")
    address = desk.email_of(clinician)
    [email] = desk.emails_to(address, "New assignment")
    own_url = links_in(email)[-1]

    page.get(own_url + "?lang=fr")
    assert heading(page) == "Vos séances et vos congés"
    both_languages_accessible(page, "fr")

    # A period that ends before it starts: the error beside the field, what was typed kept.
    fill(page, start_date="2026-12-26", end_date="2026-12-24")
    click_text(page, "Add time off")
    assert "The end must be after the start." in page.find_element("id", "end-error").text
    assert page.find_element("id", "start_date").get_attribute("value") == "2026-12-26"
    both_languages_accessible(page)

    page.get(own_url + "?lang=fr")
    fill(page, start_date="2026-12-24", start_time="08:00", end_date="2026-12-26", end_time="")
    click_text(page, "Ajouter un congé")
    assert "Congé ajouté" in page.page_source
    assert "Du jeudi 24 décembre 2026 à 8 h jusqu’à la fin du samedi 26 décembre 2026" in page.page_source.replace("\u202f", " ").replace("\u00a0", " ").replace("&nbsp;", " ")
    screenshot(page, "facilitator-own-page-fr")
    assert_accessible(page)
    assert desk.api("GET", f"/v1/facilitators/{clinician}")["availability"]["exceptions"] == [
        {"start": "2026-12-24T08:00:00-05:00", "end": "2026-12-27T00:00:00-05:00"}]

    click_text(page, "Retirer")
    assert "Congé retiré" in page.page_source and "Vous n’avez aucun congé prévu." in page.page_source
    assert desk.api("GET", f"/v1/facilitators/{clinician}")["availability"]["exceptions"] == []
    assert_accessible(page)

    old_feed = desk.feed_url(clinician)
    click_text(page, "Obtenir un nouveau lien d’abonnement")
    assert heading(page) == "Votre nouveau lien d’abonnement"
    assert_accessible(page)
    new_feed = page.find_element("id", "feed-address").get_attribute("value")
    webcal = page.find_element("partial link text", "M’abonner").get_attribute("href")
    assert webcal == "webcal://" + new_feed.split("://", 1)[1]
    assert desk.feed_status(new_feed, session["id"], clinician) == "CONFIRMED"
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(old_feed, timeout=30)
    # Closed here: an HTTPError holds its response's socket, else left for the collector to find
    # during a later test, whose filterwarnings = error then fails on its ResourceWarning.
    gone.value.close()
    assert gone.value.code == 404
    page.get(own_url + "?lang=en")
    click_text(page, "Get a new subscription link")
    assert heading(page) == "Your new subscription link"
    assert_accessible(page)


def fill(page, **values: str) -> None:
    """Fill the form's fields; date and time fields as their picker sets them (typing into one depends on the locale)."""
    for name, value in values.items():
        field = page.find_element("id", name)
        page.execute_script("arguments[0].value = arguments[1];", field, value)
        assert field.get_attribute("value") == value, (name, field.get_attribute("value"))
