"""Participants' pages in a real Chromium, opened from the links of the emails the service sent.

An incident is reported through the live server's API, the outbox is delivered to the SMTP sink,
and each test follows a link out of a caught email. Every page is checked with axe-core in both
languages (at 360 and 1280 px); a few are saved as screenshots for the README.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import icalendar
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from service.followups.models import Escalation, Followup
from service.incidents.models import Personnel
from service.planner import plan_pending
from tests.browser import assert_accessible, follow_link, screenshot
from tests.conftest import seed_agencies
from tests.factories import facilitator_body, incident_body, person
from workers.relay import in_process_dispatch, relay_once


@dataclass
class World:
    """A live server with a roster, one reported incident and its delivered emails."""

    live: Any
    sink: Any
    keys: Any
    incident: dict[str, Any]
    clinicians: list[int]

    @property
    def services(self) -> Any:
        return self.live.app.extensions["debrief"]

    def api(self, method: str, path: str, body: Any = None, role: str = "dispatch") -> tuple[int, Any]:
        """One JSON request to the live server's API."""
        request = urllib.request.Request(self.live.url + path, method=method, headers={
            "Authorization": f"Bearer {getattr(self.keys, role)}", "Content-Type": "application/json"},
            data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def deliver(self) -> None:
        """Deliver every due message, as the embedded relay does."""
        relay_once(self.services, in_process_dispatch(self.services))

    def emails(self, to: str) -> list[EmailMessage]:
        return [m for m in self.sink.messages if m["To"] == to]

    def link(self, to: str, subject: str, label: str | None = None) -> str:
        """The link of a caught email (the one after `label`, else the first), as the person would click it."""
        [message] = [m for m in self.emails(to) if m["Subject"] == subject]
        body = message.get_body(("plain",)).get_content()
        pattern = (re.escape(label) + r": " if label else "") + re.escape(self.live.url) + r"/r/\S+"
        found = re.search(pattern, body)
        assert found, body
        return found.group(0).split(": ", 1)[-1]

    def followup(self, kind: str, n: int) -> Followup:
        with self.services.session_factory() as db:
            return db.scalars(select(Followup).join(Personnel, Personnel.id == Followup.personnel_id).where(
                Followup.kind == kind, Personnel.external_id == f"B{n:04d}").order_by(Followup.created_at)).first()


@pytest.fixture
def world(live, sink) -> World:
    """Four French-speaking officers in one debriefing; their first emails delivered."""
    with live.app.extensions["debrief"].session_factory() as db:
        keys = seed_agencies(db)
    here = World(live, sink, keys, {}, [])
    for n in range(1, 7):
        kind = "clinician" if n <= 2 else "peer"
        status, body = here.api("POST", "/v1/facilitators", facilitator_body(n, kind=kind, languages=["en", "fr"]),
                                role="coordinator")
        assert status == 201, body
        if kind == "clinician":
            here.clinicians.append(body["id"])
    people = [person(n, language="fr") for n in range(1, 5)]
    status, reported = here.api("POST", "/v1/incidents", incident_body(personnel=people))
    assert status == 201, reported
    plan_pending(live.app.extensions["debrief"])  # the planner's pass, as its process makes it
    status, here.incident = here.api("GET", f"/v1/incidents/{reported['id']}")
    assert status == 200 and here.incident["status"] == "planned", here.incident
    here.deliver()
    return here


def in_english(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}lang=en"


def h1(page) -> str:
    return page.find_element(By.TAG_NAME, "h1").text


def go(page, url: str) -> None:
    page.get(url)
    WebDriverWait(page, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")


def click(page, selector: str) -> None:
    """Press a button or link and wait for the page it leads to."""
    follow_link(page, By.CSS_SELECTOR, selector)
    WebDriverWait(page, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")


def lang(page) -> str:
    return page.find_element(By.TAG_NAME, "html").get_attribute("lang")


def switch(page) -> None:
    """Use the language switch of the page."""
    click(page, "a.top__switch")


def press(page, selector: str, heading: str) -> None:
    """Press a button or link, check the page it leads to says `heading`, and check it in both languages."""
    click(page, selector)
    assert h1(page) == heading
    checked_both_languages(page)


def checked_both_languages(page) -> None:
    """axe-core on the page shown, then on the same page in the other language (and back)."""
    assert_accessible(page)
    first = lang(page)
    switch(page)
    assert lang(page) != first
    assert_accessible(page)
    switch(page)
    assert lang(page) == first


OFFICER1 = "officer1@north.example.org"
OFFICER2 = "officer2@north.example.org"
OFFICER3 = "officer3@north.example.org"
OFFICER4 = "officer4@north.example.org"
OFFER = "Une rencontre individuelle, si vous le souhaitez"
INVITATION = "Invitation à une séance de soutien"


def test_a_participant_opens_the_invitation_in_french_switches_to_english_and_will_attend(world, page):
    go(page, world.link(OFFICER1, INVITATION, "J’y serai"))
    assert lang(page) == "fr" and h1(page) == "Invitation à un débriefing de groupe"
    assert "Personne n’est obligé de prendre la parole." in page.page_source
    assert_accessible(page)
    screenshot(page, "participant-invitation-fr")
    switch(page)
    assert lang(page) == "en" and h1(page) == "Invitation to a group debriefing"
    assert_accessible(page)
    click(page, "#action-accept")
    assert h1(page) == "Thank you: you will attend" and lang(page) == "en"
    assert world.followup("invitation", 1).status == "accepted"
    checked_both_languages(page)
    # The other officer says no, in French.
    go(page, world.link(OFFICER2, INVITATION))
    click(page, "button[value=decline]")
    assert h1(page) == "Merci: vous n’y serez pas"
    assert world.followup("invitation", 2).status == "declined"
    assert_accessible(page)


def test_a_participant_books_a_clinician_at_the_second_time_offered_gets_the_ics_and_can_cancel(world, page, clock):
    go(page, world.link(OFFICER1, OFFER, "Rencontrer un clinicien"))
    assert h1(page) == OFFER
    assert page.find_element(By.ID, "choice-clinician").is_selected()  # proposed by the link, nothing taken yet
    assert world.followup("offer", 1).status == "open"
    checked_both_languages(page)
    # Nothing chosen: the error beside the field, in the summary too.
    go(page, page.current_url.split("?")[0] + "?lang=fr")
    click(page, "button[value=choose]")
    assert page.find_elements(By.CSS_SELECTOR, ".error-summary a[href='#choice-peer']")
    assert_accessible(page)
    page.find_element(By.ID, "choice-clinician").click()
    click(page, "button[value=choose]")
    assert h1(page) == "Quand souhaitez-vous vous rencontrer?"
    times = page.find_elements(By.CSS_SELECTOR, "input[name=starts_at]:not([value=first])")
    assert len(times) >= 3
    second = times[1].get_attribute("value")
    checked_both_languages(page)
    screenshot(page, "participant-offer-times-fr")
    page.find_element(By.ID, "starts_at-1").click()
    click(page, "button[value=accept]")
    assert h1(page) == "Votre rencontre est réservée"
    screenshot(page, "participant-offer-booked-fr")
    checked_both_languages(page)

    offer = world.followup("offer", 1)
    assert offer.status == "accepted" and offer.choice == "clinician"
    world.deliver()
    [invitation] = [m for m in world.emails(OFFICER1) if m["Subject"] == "Votre rencontre individuelle est réservée"
                    and any(True for _ in m.iter_attachments())]
    [attachment] = [a for a in invitation.iter_attachments() if a.get_content_type() == "text/calendar"]
    [event] = icalendar.Calendar.from_ical(attachment.get_content()).walk("VEVENT")
    assert event.decoded("DTSTART") == datetime.fromisoformat(second)
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(hours=1)

    # The same link later: the booked session, and cancelling it.
    go(page, world.link(OFFICER1, OFFER, "Rencontrer un clinicien"))
    assert h1(page) == "Votre rencontre individuelle"
    checked_both_languages(page)
    press(page, "button[value=cancel]", "Votre rencontre est annulée")
    # The switch led back to the offer, open again (it was declined by the cancelling).
    assert h1(page) == OFFER and "a été annulée" in page.page_source
    assert not page.find_elements(By.CSS_SELECTOR, "button[value=decline]")

    # In English, another officer first says no, thank you, then changes their mind: a peer, the first time.
    go(page, in_english(world.link(OFFICER2, OFFER).split("?")[0]))
    click(page, "button[value=decline]")
    assert h1(page) == "Thank you for your answer"
    assert_accessible(page)
    go(page, in_english(world.link(OFFICER2, OFFER).split("?")[0]))
    assert "You said no, thank you." in page.page_source
    page.find_element(By.ID, "choice-peer").click()
    click(page, "button[value=choose]")
    page.find_element(By.ID, "starts_at-first").click()
    click(page, "button[value=accept]")
    assert h1(page) == "Your session is booked" and "A peer supporter" in page.page_source
    assert_accessible(page)
    click(page, "button[value=cancel]")
    assert h1(page) == "Your session is cancelled"
    assert_accessible(page)

    # In French, a third officer says no, thank you.
    go(page, world.link(OFFICER3, OFFER))
    click(page, "button[value=decline]")
    assert h1(page) == "Merci de votre réponse"
    assert_accessible(page)

    # No time free at all: the page says a coordinator will arrange it.
    for fid in world.clinicians:
        status, _ = world.api("PATCH", f"/v1/facilitators/{fid}", {"active": False}, role="coordinator")
        assert status == 200
    go(page, world.link(OFFICER3, OFFER).split("?")[0] + "?step=when&choice=clinician")
    assert page.find_elements(By.CSS_SELECTOR, "input[name=starts_at][value=first][type=hidden]")
    checked_both_languages(page)
    press(page, "button[value=accept]", "Nous organisons votre rencontre")


def test_check_ins_and_the_screening_thirty_days_later_reach_a_clinician(world, page, clock):
    # Before it is due, a check-in's link (from its queued message) says when it opens.
    with world.services.session_factory() as db:
        from service.outbox.models import OutboxMessage

        [queued] = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "checkin",
                                                          OutboxMessage.recipient == OFFICER1)).all()
    early = re.search(r"http\S+/r/[^?\s]+", queued.payload["text"]).group(0)
    go(page, early)
    assert h1(page) == "Ce suivi n’est pas encore ouvert"
    checked_both_languages(page)

    clock.now = world.followup("checkin", 1).due_at
    world.deliver()
    go(page, world.link(OFFICER1, "Comment allez-vous?"))
    assert h1(page) == "Comment allez-vous?"
    checked_both_languages(page)
    press(page, "#contact_requested-yes", "Quelqu’un vous contactera")
    go(page, in_english(world.link(OFFICER2, "Comment allez-vous?")))
    press(page, "button[value=no]", "Thank you")
    go(page, world.link(OFFICER2, "Comment allez-vous?"))
    assert h1(page) == "Votre réponse a été enregistrée"
    checked_both_languages(page)

    clock.advance(days=30)
    world.deliver()
    go(page, world.link(OFFICER3, "Un mois après l’événement\u00a0: cinq questions", "Répondre"))
    assert h1(page) == "Un mois après l’événement" and "traduction non validée" in page.page_source
    checked_both_languages(page)
    screenshot(page, "participant-screening-fr")
    # Two answers missing: errors beside them, the others kept.
    for name, answer in (("q1", "yes"), ("q2", "yes"), ("q3", "yes")):
        page.find_element(By.ID, f"{name}-{answer}").click()
    click(page, "button[value=answer]")
    assert page.find_element(By.ID, "q4-error").is_displayed() and page.find_element(By.ID, "q5-error").is_displayed()
    assert page.find_element(By.ID, "q1-yes").is_selected()
    assert_accessible(page)
    for name in ("q4", "q5"):
        page.find_element(By.ID, f"{name}-no").click()
    click(page, "button[value=answer]")
    assert h1(page) == "Merci de vos réponses"
    assert "Un clinicien de l’équipe vous contactera" in page.page_source and "988" in page.page_source
    screenshot(page, "participant-screening-result-fr")
    checked_both_languages(page)

    screening = world.followup("screening", 3)
    assert screening.positive is True and screening.screen_language == "fr" and screening.screen_validated is False
    with world.services.session_factory() as db:
        [escalation] = db.scalars(select(Escalation).where(Escalation.followup_id == screening.id)).all()
    [session] = world.incident["sessions"]
    [clinician] = [f["id"] for f in session["facilitators"] if f["kind"] == "clinician"]
    assert escalation.clinician_id == clinician
    world.deliver()
    [told] = [m for m in world.sink.messages if m["To"] == f"facilitator{clinician}@cism.example.org"
              and "Officer Number3" in m.get_body(("plain",)).get_content()]
    assert told["List-Unsubscribe"] is None  # a clinician's message, not the participant's

    # The link opened again shows no answer, only how to answer again; the clinician stays told whatever comes next.
    go(page, world.link(OFFICER3, "Un mois après l’événement\u00a0: cinq questions").split("?")[0])
    assert h1(page) == "Merci de vos réponses" and "Vous pouvez répondre de nouveau" in page.page_source
    checked_both_languages(page)
    press(page, "main a[href*='action=answer']", "Un mois après l’événement")
    assert not any(box.is_selected() for box in page.find_elements(By.CSS_SELECTOR, "input[type=radio]"))
    for n in range(1, 6):
        page.find_element(By.ID, f"q{n}-no").click()
    click(page, "button[value=answer]")
    assert h1(page) == "Merci de vos réponses" and "Un clinicien de l’équipe vous contactera" in page.page_source
    with world.services.session_factory() as db:
        assert db.scalar(select(Escalation).where(Escalation.followup_id == screening.id)).reason == "positive_screen"

    # A screening answered in English that asks for no one.
    go(page, in_english(world.link(OFFICER2, "Un mois après l’événement\u00a0: cinq questions")))
    assert h1(page) == "One month after the incident" and "not been validated" not in page.page_source
    for n in range(1, 6):
        page.find_element(By.ID, f"q{n}-no").click()
    press(page, "button[value=answer]", "Thank you for your answers")


def test_opting_out_on_the_page_and_with_a_one_click_post(world, page):
    go(page, world.link(OFFICER1, INVITATION, "Ne plus recevoir de messages"))
    assert h1(page) == "Ne plus recevoir de messages au sujet de cet événement?"
    checked_both_languages(page)
    press(page, "main button", "Vous ne recevrez plus de messages au sujet de cet événement")
    assert world.followup("offer", 1).status == "cancelled"
    go(page, in_english(world.link(OFFICER2, OFFER, "Ne plus recevoir de messages")))
    assert h1(page) == "Stop all messages about this incident?"
    click(page, "main button")
    assert h1(page) == "You will receive no more messages about this incident"
    assert_accessible(page)

    # A mail client's one-click unsubscribe: a bare POST to the List-Unsubscribe URL.
    [message] = [m for m in world.emails(OFFICER3) if m["Subject"] == INVITATION]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message["List-Unsubscribe"].strip("<>")
    request = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    assert world.followup("checkin", 3).status == "cancelled"

    # The incident is called off: the last officer's links say nothing more is needed.
    status, _ = world.api("PATCH", f"/v1/incidents/{world.incident['id']}", {"status": "cancelled"})
    assert status == 200
    go(page, world.link(OFFICER4, OFFER))
    assert h1(page) == "Rien d’autre n’est nécessaire"
    checked_both_languages(page)
