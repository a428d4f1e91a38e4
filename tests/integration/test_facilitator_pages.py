"""Facilitators' pages, opened from the links of their emails: a session's page, declining it, their own page."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlsplit

import icalendar
import pytest
from sqlalchemy import select

from service.calendars.render import event_uid
from service.facilitators import links
from service.facilitators.models import Facilitator
from service.incidents.models import Personnel
from service.outbox.models import OutboxMessage
from tests.factories import NOW, facilitator_body, incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster
from tests.integration.test_followup_messages import outbox

PAGE_LINK = re.compile(r"https?://[^\s\"<>]+/f/[^\s\"<>]+")
RESPONSE_LINK = re.compile(r"/r/([^?\s/]+)")
FEED_ADDRESS = re.compile(r'<textarea id="feed-address"[^>]*>(https?://[^<]+\.ics)</textarea>')
WEBCAL = re.compile(r'href="(webcal://[^"]+\.ics)"')


# -- helpers ----------------------------------------------------------------------------------------------


def report(client, keys, body=None) -> dict:
    return report_planned(client, body or incident_body(), keys.auth("dispatch"))


def page_links(message: OutboxMessage) -> list[str]:
    """The paths of the facilitator-page links of an email, in order."""
    return [urlsplit(url).path for url in PAGE_LINK.findall(message.payload["text"])]


def session_link(app, session_id: str, facilitator_id: int) -> str:
    """The session page's path, from the facilitator's assignment email."""
    [message] = outbox(app, kind="assignment_new", facilitator_id=facilitator_id)
    found = [path for path in page_links(message) if path.endswith(f"/sessions/{session_id}")]
    assert len(found) == 1, message.payload["text"]
    return found[0]


def own_link(app, facilitator_id: int) -> str:
    """The own page's path, from the facilitator's first email."""
    message = outbox(app, facilitator_id=facilitator_id)[0]
    return page_links(message)[-1]


def signed(app, facilitator_id: int, *, expires_at=NOW + timedelta(days=30)) -> str:
    """A link token signed with the app's key, as a message would carry it."""
    return links.sign(app.extensions["debrief"].signing_keys(), facilitator_id=facilitator_id, expires_at=expires_at)


def team_of(session: dict, kind: str) -> int:
    return next(f["id"] for f in session["facilitators"] if f["kind"] == kind)


def api_session(client, keys, session_id: str) -> dict:
    return client.get(f"/v1/sessions/{session_id}", headers=keys.auth("coordinator")).get_json()


def exceptions_of(client, keys, facilitator_id: int) -> list[dict]:
    return client.get(f"/v1/facilitators/{facilitator_id}", headers=keys.auth("coordinator")).get_json()["availability"]["exceptions"]


def feed_path(client, keys, facilitator_id: int) -> str:
    """A fresh feed URL of the facilitator (rotated through the API: only a hash is stored)."""
    response = client.post(f"/v1/facilitators/{facilitator_id}/calendar-token", headers=keys.auth("coordinator"))
    assert response.status_code == 200
    return urlsplit(response.get_json()["calendar_url"]["https"]).path


def feed_status(client, path: str, session_id: str, facilitator_id: int) -> str | None:
    """The STATUS of the session's event in a feed, or None when it is not there."""
    response = client.get(path)
    assert response.status_code == 200
    calendar = icalendar.Calendar.from_ical(response.get_data())
    uid = event_uid(session_id, facilitator_id)
    found = [str(e["STATUS"]) for e in calendar.walk("VEVENT") if str(e["UID"]) == uid]
    return found[0] if found else None


def text_of(response) -> str:
    """The page's text, entities decoded and CLDR's narrow and no-break spaces as plain spaces."""
    return html.unescape(response.get_data(as_text=True)).replace("\u202f", " ").replace("\u00a0", " ")


def assert_page(response, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
    return text_of(response)


def outbox_size(app) -> int:
    return len(outbox(app))


@pytest.fixture
def planned(client, keys):
    """A roster with spare people and a planned debriefing for three officers: (roster, session)."""
    roster = add_roster(client, keys)
    [session] = report(client, keys)["sessions"]
    return roster, session


# -- the links of the emails -----------------------------------------------------------------------------------


def test_each_assignment_email_links_to_the_session_page_and_the_own_page(app, client, planned):
    _roster, session = planned
    for fid in (f["id"] for f in session["facilitators"]):
        [message] = outbox(app, kind="assignment_new", facilitator_id=fid)
        text = message.payload["text"]
        session_path, own_path = page_links(message)
        assert session_path == own_path + f"/sessions/{session['id']}"
        assert f"See this session, or say you cannot lead it: http://127.0.0.1:8000{session_path}" in text
        assert f"Your page (upcoming sessions, time off, calendar): http://127.0.0.1:8000{own_path}" in text
        assert "say so on its page (link below)" in text
        assert f'href="http://127.0.0.1:8000{session_path}"' in message.payload["html"]
        assert client.get(session_path).status_code == 200 and client.get(own_path).status_code == 200


def test_a_reminder_links_to_the_session_and_a_cancellation_only_to_the_own_page(app, client, keys, clock):
    add_roster(client, keys)
    clock.advance(hours=9, minutes=30)  # the session is then more than 24 h away: a reminder is queued
    [session] = report(client, keys, incident_body(occurred_at=(NOW + timedelta(hours=9)).isoformat()))["sessions"]
    peer = team_of(session, "peer")
    [reminder] = outbox(app, kind="reminder", facilitator_id=peer)
    assert [p.rsplit("/", 2)[-1] for p in page_links(reminder)][0] == session["id"]
    assert len(page_links(reminder)) == 2

    assert client.post(f"/v1/sessions/{session['id']}/cancel", headers=keys.auth("coordinator")).status_code == 200
    [cancelled] = outbox(app, kind="assignment_cancelled", facilitator_id=peer)
    [own] = page_links(cancelled)
    assert "/sessions/" not in own and client.get(own).status_code == 200


def test_a_french_speaking_facilitator_gets_french_links_and_pages(app, client, keys):
    add_roster(client, keys, languages=["fr", "en"])
    [session] = report(client, keys)["sessions"]
    peer = team_of(session, "peer")
    [message] = outbox(app, kind="assignment_new", facilitator_id=peer)
    assert "Voir cette séance, ou indiquer que vous ne pouvez pas l’animer: http" in message.payload["text"]
    page = assert_page(client.get(session_link(app, session["id"], peer)))
    assert '<html lang="fr">' in page and "Débriefing de groupe (CISD)" in page
    assert "lundi 23 novembre 2026, de 8 h à 10 h 30" in page
    assert '<html lang="en">' in text_of(client.get(session_link(app, session["id"], peer) + "?lang=en"))


# -- the session's page --------------------------------------------------------------------------------------


def test_the_session_page_shows_the_session_and_no_one_by_name(app, client, keys, planned):
    _roster, session = planned
    clinician = team_of(session, "clinician")
    page = assert_page(client.get(session_link(app, session["id"], clinician)))
    assert "<h1>Group debriefing (CISD)</h1>" in page
    assert "Monday, November 23, 2026, 8:00 a.m. to 10:30 a.m." in page
    assert "America/Toronto" in page and "In person, region north-east" in page
    assert "150 minutes" in page and "2 facilitators" in page and "3 people" in page
    for at, phase, minutes in [("8:00 a.m.", "Introduction", 15), ("8:15 a.m.", "Facts", 20), ("10:10 a.m.", "Re-entry", 20)]:
        assert re.search(rf'<td class="nowrap">{re.escape(at)}</td>\s*<td>{phase}</td>\s*<td class="nowrap">{minutes} min</td>', page)
    assert "I cannot lead this session" in page
    with app.extensions["debrief"].session_factory() as db:
        people = list(db.scalars(select(Personnel)))
        facilitators = list(db.scalars(select(Facilitator)))
    assert len(people) == 3
    for someone in people:
        for detail in (someone.name, someone.email, someone.external_id, someone.unit):
            assert detail not in page
    # Nor the rest of the team: the page counts facilitators.
    for other in facilitators:
        if other.id != clinician:
            assert other.name not in page and other.email not in page


def test_a_get_never_changes_anything(app, client, keys, planned):
    _roster, session = planned
    peer = team_of(session, "peer")
    path = session_link(app, session["id"], peer)
    before = (api_session(client, keys, session["id"]), outbox_size(app), exceptions_of(client, keys, peer))
    for url in (path, path + "/decline", own_link(app, peer), own_link(app, peer) + "/time-off",
                own_link(app, peer) + "/calendar", own_link(app, peer) + "/time-off/remove"):
        assert client.get(url).status_code in (200, 303)
    assert (api_session(client, keys, session["id"]), outbox_size(app), exceptions_of(client, keys, peer)) == before


def test_someone_not_on_the_session_gets_the_404_page(app, client, planned):
    roster, session = planned
    outsider = next(fid for fid in roster if fid not in {f["id"] for f in session["facilitators"]})
    for path in (f"/f/{signed(app, outsider)}/sessions/{session['id']}",
                 f"/f/{signed(app, outsider)}/sessions/{session['id']}/decline"):
        page = assert_page(client.get(path), 404)
        assert "This link is not valid" in page
    assert assert_page(client.post(f"/f/{signed(app, outsider)}/sessions/{session['id']}/decline"), 404)
    unknown = f"/f/{signed(app, team_of(session, 'peer'))}/sessions/00000000-0000-4000-8000-000000000000"
    assert "This link is not valid" in assert_page(client.get(unknown), 404)


# -- declining -----------------------------------------------------------------------------------------------


def test_declining_on_the_page_finds_a_replacement_and_both_feeds_change(app, client, keys, planned):
    _roster, session = planned
    peer = team_of(session, "peer")
    path = session_link(app, session["id"], peer)
    decliner_feed = feed_path(client, keys, peer)
    assert feed_status(client, decliner_feed, session["id"], peer) == "CONFIRMED"

    confirm = assert_page(client.get(path + "/decline"))
    assert "Decline this session?" in confirm and "What happens next" in confirm
    assert f'action="{path}/decline?lang=en"' in confirm
    done = assert_page(client.post(path + "/decline?lang=en"))
    assert "You have declined this session" in done and "I cannot lead this session" not in done

    after = api_session(client, keys, session["id"])
    team = {f["id"] for f in after["facilitators"]}
    assert peer not in team and sorted(f["kind"] for f in after["facilitators"]) == ["clinician", "peer"]
    assert after["starts_at"] == session["starts_at"] and after["sequence"] == 1
    [replacement] = team - {f["id"] for f in session["facilitators"]}
    assert feed_status(client, feed_path(client, keys, replacement), session["id"], replacement) == "CONFIRMED"
    assert feed_status(client, decliner_feed, session["id"], peer) == "CANCELLED"
    assert len(outbox(app, kind="assignment_cancelled", facilitator_id=peer)) == 1
    assert len(outbox(app, kind="assignment_new", facilitator_id=replacement)) == 1

    # Declining again (a second click, an old message): the same calm page, and nothing changes.
    count = outbox_size(app)
    again = assert_page(client.post(path + "/decline"))
    assert "You have declined this session" in again
    assert "You have declined this session" in assert_page(client.get(path + "/decline"))
    assert api_session(client, keys, session["id"]) == after and outbox_size(app) == count


def test_a_started_session_cannot_be_declined_on_the_page(app, client, keys, clock, planned):
    _roster, session = planned
    peer = team_of(session, "peer")
    path = session_link(app, session["id"], peer)
    clock.advance(hours=22, minutes=30)  # 08:30 Toronto time on the 23rd: under way
    before = (api_session(client, keys, session["id"]), outbox_size(app))
    page = assert_page(client.get(path))
    assert "I cannot lead this session" not in page and "can no longer be declined" in page
    assert "I cannot lead this session" not in assert_page(client.get(path + "/decline"))
    assert_page(client.post(path + "/decline"), 409)
    assert (api_session(client, keys, session["id"]), outbox_size(app)) == before


# -- time off ----------------------------------------------------------------------------------------------


def test_time_off_added_on_the_page_replans_a_booked_session(app, client, keys, planned):
    _roster, session = planned
    clinician = team_of(session, "clinician")
    own = own_link(app, clinician)
    page = assert_page(client.get(own))
    assert "Upcoming sessions" in page and f"/sessions/{session['id']}" in page

    added = assert_page(client.post(own + "/time-off?lang=en", data={"start_date": "2026-11-23", "end_date": "2026-11-23"}))
    assert "Time off added" in added
    assert "Monday, November 23, 2026 (the whole day)" in added
    assert f"/sessions/{session['id']}" not in added and "You have no upcoming sessions." in added
    assert exceptions_of(client, keys, clinician) == [{"start": "2026-11-23T00:00:00-05:00", "end": "2026-11-24T00:00:00-05:00"}]
    # The same re-planning as PUT /v1/facilitators/{id}/availability: replaced at the same time.
    after = api_session(client, keys, session["id"])
    assert clinician not in {f["id"] for f in after["facilitators"]}
    assert sorted(f["kind"] for f in after["facilitators"]) == ["clinician", "peer"]
    assert after["sequence"] == 1 and after["starts_at"] == session["starts_at"]
    assert len(outbox(app, kind="assignment_cancelled", facilitator_id=clinician)) == 1

    # The same period again is kept once.
    assert_page(client.post(own + "/time-off", data={"start_date": "2026-11-23", "end_date": "2026-11-23"}))
    assert len(exceptions_of(client, keys, clinician)) == 1


def test_time_off_is_removed_on_the_page(app, client, keys, planned):
    _roster, session = planned
    peer = team_of(session, "peer")
    own = own_link(app, peer)
    form = {"start_date": "2026-12-24", "start_time": "08:30", "end_date": "2026-12-26", "end_time": "17:00"}
    page = assert_page(client.post(own + "/time-off", data=form))
    assert "From Thursday, December 24, 2026 at 8:30 a.m. to Saturday, December 26, 2026 at 5:00 p.m." in page
    assert peer in {f["id"] for f in api_session(client, keys, session["id"])["facilitators"]}
    [period] = exceptions_of(client, keys, peer)

    removed = assert_page(client.post(own + "/time-off/remove", data={"start": period["start"], "end": period["end"]}))
    assert "Time off removed" in removed and "You have no time off planned." in removed
    assert exceptions_of(client, keys, peer) == []
    # Removing it again changes nothing.
    assert "Time off removed" in assert_page(client.post(own + "/time-off/remove", data={"start": period["start"], "end": period["end"]}))
    assert_page(client.post(own + "/time-off/remove", data={"start": "junk"}), 400)
    assert exceptions_of(client, keys, peer) == []


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"start_date": "2026-12-26", "end_date": "2026-12-24"}, "end", "The end must be after the start."),
    ({"start_date": "2026-12-24", "start_time": "10:00", "end_date": "2026-12-24", "end_time": "09:00"}, "end",
     "The end must be after the start."),
    ({"start_date": "24/12/2026", "end_date": "2026-12-26"}, "start_date", "Enter a date, for example 2026-12-24."),
    ({"start_date": "2026-12-24", "end_date": "9999-12-31"}, "end_date", "Enter a date, for example 2026-12-24."),
    ({"start_date": "2026-12-24", "end_date": "2026-12-26", "end_time": "25:99"}, "end_time",
     "Enter a time, for example 08:30, or leave it empty."),
    ({"start_date": "", "end_date": ""}, "start_date", "Enter a date."),
    ({}, "end_date", "Enter a date."),
    ({"start_date": "2026-11-20", "end_date": "2026-11-30"}, "start", "The start cannot be before today."),
    ({"start_date": "2026-11-22", "start_time": "08:00", "end_date": "2026-11-22", "end_time": "09:00"}, "end",
     "The end must be in the future."),
    ({"start_date": "2026-12-01", "end_date": "2028-01-01"}, "end", "A period of time off can last at most 366 days."),
])
def test_bad_time_off_is_shown_beside_its_field_keeping_what_was_typed(app, client, keys, planned, form, field, message):
    _roster, session = planned
    peer = team_of(session, "peer")
    before = (exceptions_of(client, keys, peer), outbox_size(app), api_session(client, keys, session["id"]))
    page = assert_page(client.post(own_link(app, peer) + "/time-off?lang=en", data=form), 422)
    assert f'<span class="error-message" id="{field}-error"><span class="visually-hidden">Error: </span>{message}</span>' in page
    assert f'<a href="#{ {"start": "start_date", "end": "end_date"}.get(field, field) }">{message}</a>' in page
    for name, value in form.items():
        assert f'name="{name}" value="{value}"' in page
    assert page.count("<title>Error: ") == 1
    assert (exceptions_of(client, keys, peer), outbox_size(app), api_session(client, keys, session["id"])) == before


def test_a_huge_form_is_the_413_page(app, client, keys, planned):
    _roster, session = planned
    peer = team_of(session, "peer")
    page = assert_page(client.post(own_link(app, peer) + "/time-off", data={"start_date": "x" * (3 * 1024 * 1024)}), 413)
    assert "What you sent is too long" in page and exceptions_of(client, keys, peer) == []


# -- the calendar subscription ---------------------------------------------------------------------------------


def test_a_new_subscription_link_replaces_the_old_one(app, client, keys, planned):
    _roster, session = planned
    peer = team_of(session, "peer")
    old = feed_path(client, keys, peer)
    own = own_link(app, peer)
    assert "Get a new subscription link" in assert_page(client.get(own))
    page = assert_page(client.post(own + "/calendar?lang=en"))
    [https] = FEED_ADDRESS.findall(page)
    [webcal] = WEBCAL.findall(page)
    assert webcal == "webcal://" + https.split("://", 1)[1]
    assert "Google Calendar" in page and "Outlook" in page and "Apple Calendar" in page
    assert client.get(old).status_code == 404
    assert feed_status(client, urlsplit(https).path, session["id"], peer) == "CONFIRMED"
    # The links are shown once: the own page does not show them.
    assert urlsplit(https).path not in text_of(client.get(own))


# -- links that do not open a page ---------------------------------------------------------------------------


def test_a_tampered_token_is_the_404_page(app, client, planned):
    _roster, session = planned
    path = session_link(app, session["id"], team_of(session, "peer"))
    token = path.split("/")[2]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (path.replace(token, tampered), f"/f/{tampered}", "/f/not-a-token", "/f/" + "x" * 500):
        page = assert_page(client.get(bad), 404)
        assert "This link is not valid" in page and "Traceback" not in page
    assert_page(client.post(f"/f/{tampered}/time-off", data={"start_date": "2026-12-24", "end_date": "2026-12-24"}), 404)


def test_an_expired_link_is_the_410_page(app, client, clock, planned):
    _roster, session = planned
    peer = team_of(session, "peer")
    path = session_link(app, session["id"], peer)
    own = own_link(app, peer)
    clock.now = NOW + timedelta(days=32)  # 30 days after the session ended
    for url in (path, own):
        page = assert_page(client.get(url), 410)
        assert "This link has expired" in page
    assert_page(client.post(path + "/decline"), 410)
    assert "This link has expired" in assert_page(client.get(f"/f/{signed(app, peer, expires_at=NOW - timedelta(seconds=1))}"), 410)


def test_participant_and_facilitator_tokens_do_not_open_each_others_pages(app, client, planned):
    _roster, session = planned
    [invitation] = outbox(app, kind="invitation_new", recipient="officer1@north.example.org")
    participant_token = RESPONSE_LINK.search(invitation.payload["text"]).group(1)
    assert client.get(f"/v1/responses/{participant_token}").status_code == 200
    assert "This link is not valid" in assert_page(client.get(f"/f/{participant_token}"), 404)
    assert_page(client.get(f"/f/{participant_token}/sessions/{session['id']}"), 404)

    facilitator_token = session_link(app, session["id"], team_of(session, "peer")).split("/")[2]
    refused = client.get(f"/v1/responses/{facilitator_token}")
    assert refused.status_code == 404 and refused.mimetype == "application/problem+json"
    assert client.post(f"/v1/responses/{facilitator_token}", json={"action": "opt_out"}).status_code == 404


def test_a_deactivated_facilitators_link_is_the_404_page(app, client, keys, planned):
    _roster, session = planned
    peer = team_of(session, "peer")
    path = session_link(app, session["id"], peer)
    own = own_link(app, peer)
    assert client.patch(f"/v1/facilitators/{peer}", json={"active": False}, headers=keys.auth("coordinator")).status_code == 200
    for url in (path, own):
        assert "This link is not valid" in assert_page(client.get(url), 404)
    assert_page(client.post(own + "/calendar"), 404)


def test_a_facilitator_from_the_provincial_pool_uses_the_pages_too(app, client, keys):
    """A facilitator without an agency (created by an admin) declines from the page like anyone."""
    add_roster(client, keys, clinicians=2, peers=0)
    for n in (10, 11, 12):
        body = facilitator_body(n, kind="peer", agency=None)
        assert client.post("/v1/facilitators", json=body, headers=keys.auth("admin")).status_code == 201
    [session] = report(client, keys, incident_body(personnel=[person(1), person(2)]))["sessions"]
    peer = team_of(session, "peer")
    path = session_link(app, session["id"], peer)
    assert "You have declined this session" in assert_page(client.post(path + "/decline"))
    assert peer not in {f["id"] for f in api_session(client, keys, session["id"])["facilitators"]}
