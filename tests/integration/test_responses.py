"""Participants' response links, escalations to clinicians, and the coordinators' follow-up list."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import icalendar
import pytest
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.orm import selectinload

from service.audit.models import AuditEntry
from service.auth.models import ApiKey
from service.auth.service import hash_key
from service.facilitators.models import Facilitator
from service.followups import tokens
from service.followups.models import Escalation, Followup
from service.incidents.models import Personnel
from service.outbox.models import CANCELLED, PENDING, OutboxMessage
from service.sessions import service as sessions_service
from service.sessions.models import Assignment, Session
from service.sessions.service import PLANNING_LOCK
from tests.factories import facilitator_body, incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster, facilitator_key

LINK = re.compile(r"/r/([^?/\s]+)")
URL = re.compile(r"https?://\S+/r/\S+")
PROBLEM = "application/problem+json"
YES, NO = True, False
# Most tests accept offers off the 30-minute grid: booking must work from any minute, not only on the grid.
OFF_GRID = {"minutes": 10}


# -- helpers ------------------------------------------------------------------------------------------


def report(client, keys, body=None) -> dict:
    return report_planned(client, body or incident_body(), keys.auth("dispatch"))


def db(app):
    return app.extensions["debrief"].session_factory()


def followup(app, kind: str, n: int = 1, *, session_id: uuid.UUID | None = None) -> Followup:
    """Participant n's (external id B000n) follow-up of one kind; for an invitation, to its group session by default."""
    with db(app) as s:
        query = (select(Followup).join(Personnel, Personnel.id == Followup.personnel_id)
                 .where(Followup.kind == kind, Personnel.external_id == f"B{n:04d}"))
        if session_id is not None:
            query = query.where(Followup.session_id == session_id)
        return s.scalars(query.order_by(Followup.created_at)).first()


def personnel_id(app, n: int = 1) -> int:
    with db(app) as s:
        return s.scalars(select(Personnel.id).where(Personnel.external_id == f"B{n:04d}")).one()


def token_of(app, item: Followup) -> str:
    """The token in the links of the message the follow-up was sent with."""
    with db(app) as s:
        message = s.scalars(select(OutboxMessage).where(OutboxMessage.followup_id == item.id)
                            .order_by(OutboxMessage.created_at)).first()
    found = set(LINK.findall(message.payload["text"]))
    assert len(found) == 1, found
    return found.pop()


def token(app, kind: str, n: int = 1) -> str:
    return token_of(app, followup(app, kind, n))


def show(client, token: str, query: str = ""):
    return client.get(f"/v1/responses/{token}{query}")


def respond(client, token: str, **body):
    return client.post(f"/v1/responses/{token}", json=body)


def outbox(app, **where) -> list[OutboxMessage]:
    with db(app) as s:
        query = select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.kind, OutboxMessage.recipient)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return list(s.scalars(query))


def escalations(app) -> list[Escalation]:
    with db(app) as s:
        return list(s.scalars(select(Escalation).order_by(Escalation.id)))


def individual_sessions(app) -> list[Session]:
    """The individual sessions, with their assignments and facilitators."""
    with db(app) as s:
        return list(s.scalars(
            select(Session).where(Session.kind == "individual")
            .options(selectinload(Session.assignments).selectinload(Assignment.facilitator))
        ))


def snapshot(app) -> tuple:
    """Everything a response can change."""
    with db(app) as s:
        return (
            sorted((str(f.id), f.status, f.responded_at, f.choice, f.answers, f.positive, f.contact_requested,
                    str(f.booked_session_id)) for f in s.scalars(select(Followup))),
            sorted((str(m.id), m.status) for m in s.scalars(select(OutboxMessage))),
            len(list(s.scalars(select(Escalation)))),
            len(list(s.scalars(select(Session)))),
            sorted((p.id, p.opted_out_at) for p in s.scalars(select(Personnel))),
        )


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    assert response.content_type == PROBLEM
    return response.get_json()


def the_clinician(incident: dict) -> int:
    [session] = incident["sessions"]
    [clinician] = [f["id"] for f in session["facilitators"] if f["kind"] == "clinician"]
    return clinician


def ics_of(message: OutboxMessage) -> icalendar.Calendar:
    [attachment] = message.payload["attachments"]
    assert attachment["filename"].endswith(".ics")
    return icalendar.Calendar.from_ical(base64.b64decode(attachment["data"]))


def followups_list(client, keys, incident: dict, role: str = "coordinator", query: str = ""):
    return client.get(f"/v1/incidents/{incident['id']}/followups{query}", headers=keys.auth(role))


@pytest.fixture
def incident(client, keys) -> dict:
    """Three participants in one group debriefing on the 23rd, 08:00–10:30 Toronto time."""
    add_roster(client, keys)
    return report(client, keys)


# -- what a link shows --------------------------------------------------------------------------------


def test_an_invitation_link_shows_the_session_without_an_api_key(app, client, incident):
    [session] = incident["sessions"]
    response = show(client, token(app, "invitation"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "kind": "invitation", "status": "open", "language": "en", "actions": ["accept", "decline", "opt_out"],
        "expires_at": session["ends_at"], "choice": None, "questions": [], "opted_out": False,
        "session": {"kind": "debriefing", "status": "scheduled", "starts_at": session["starts_at"],
                    "ends_at": session["ends_at"], "location": session["location"]},
    }


def test_an_offer_link_shows_the_offer(app, client, incident, clock):
    response = show(client, token(app, "offer"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["kind"] == "offer" and body["status"] == "open" and body["language"] == "en"
    assert body["actions"] == ["accept", "decline", "opt_out"]
    assert body["session"] is None and body["choice"] is None and body["questions"] == []
    assert datetime.fromisoformat(body["expires_at"]) == clock() + timedelta(days=30)


def test_a_screening_link_shows_the_five_questions_in_the_participants_language(app, client, keys):
    add_roster(client, keys, languages=["en", "fr"])
    report(client, keys, incident_body(personnel=[person(1, language="fr"), person(2)]))

    french = show(client, token(app, "screening", 1)).get_json()
    assert french["kind"] == "screening" and french["status"] == "open" and french["language"] == "fr"
    assert french["actions"] == ["answer", "opt_out"] and french["session"] is None
    assert len(french["questions"]) == 5 and "cauchemars" in french["questions"][0]

    english = show(client, token(app, "screening", 2)).get_json()
    assert english["language"] == "en" and len(english["questions"]) == 5 and "nightmares" in english["questions"][0]
    # Only the screening has questions.
    for kind in ("invitation", "offer", "checkin"):
        assert show(client, token(app, kind, 1)).get_json()["questions"] == []


def test_a_link_shows_nothing_about_anyone(app, client, incident):
    for kind in ("invitation", "offer", "checkin", "screening"):
        response = show(client, token(app, kind, 1))
        assert response.status_code == 200
        # No one's name or email: not the other participants', not even the participant's own.
        assert b"Officer Number" not in response.data and b"@" not in response.data


def test_a_screening_link_shows_what_can_be_done_now_and_never_what_was_answered(app, client, incident, clock):
    first, second = followup(app, "screening", 1), followup(app, "screening", 2)
    clock.now = first.due_at
    positive = respond(client, token_of(app, first), action="answer", answers=[YES] * 5, contact_requested=True)
    negative = respond(client, token_of(app, second), action="answer", answers=[NO] * 5)
    assert positive.status_code == negative.status_code == 200
    assert len(escalations(app)) == 1
    shown = [show(client, token_of(app, item)).get_json() for item in (first, second)]
    # Someone who gets hold of either link learns the same: answered, and can be answered again until it expires.
    assert shown[0] == shown[1]
    assert set(shown[0]) == {"kind", "status", "language", "expires_at", "actions", "session", "choice", "questions",
                             "opted_out"}
    assert shown[0]["status"] == "answered" and shown[0]["actions"] == ["answer", "opt_out"]


def test_showing_a_link_changes_nothing(app, client, incident):
    before = snapshot(app)
    for kind in ("invitation", "offer", "checkin", "screening"):
        for query in ("", "?action=accept", "?action=opt_out", "?action=accept&choice=peer"):
            assert show(client, token(app, kind), query).status_code == 200
    assert snapshot(app) == before


# -- links that are not good ---------------------------------------------------------------------------


def _forged(app, clock, how: str) -> str:
    offer = followup(app, "offer")
    genuine = token_of(app, offer)
    if how == "tampered":
        i = len(genuine) // 3  # inside the payload: a flipped bit there never decodes to the same bytes
        return genuine[:i] + ("B" if genuine[i] == "A" else "A") + genuine[i + 1:]
    if how == "other_key":
        return tokens.sign(("not-this-services-key",), followup_id=offer.id, kind="offer", expires_at=offer.expires_at)
    if how == "garbage":
        return "not-a-token"
    if how == "too_long":
        return genuine + "A" * 500
    key = app.extensions["debrief"].signing_keys()
    if how == "other_kind":
        return tokens.sign(key, followup_id=offer.id, kind="screening", expires_at=offer.expires_at)
    assert how == "unknown_followup"
    return tokens.sign(key, followup_id=uuid.uuid4(), kind="offer", expires_at=offer.expires_at)


@pytest.mark.parametrize("how", ["tampered", "other_key", "garbage", "too_long", "other_kind", "unknown_followup"])
def test_a_link_this_service_did_not_sign_for_that_followup_is_404_and_changes_nothing(app, client, incident, clock, how):
    forged = _forged(app, clock, how)
    before = snapshot(app)
    assert_problem(show(client, forged), 404)
    assert_problem(respond(client, forged, action="opt_out"), 404)
    assert_problem(respond(client, forged, action="accept", choice="peer"), 404)
    assert snapshot(app) == before
    assert show(client, token(app, "offer")).get_json()["status"] == "open"


def test_an_expired_link_is_410_and_changes_nothing(app, client, incident, clock):
    offer = followup(app, "offer")
    link = token_of(app, offer)
    clock.now = offer.expires_at - timedelta(seconds=1)
    assert show(client, link).status_code == 200
    clock.now = offer.expires_at
    before = snapshot(app)
    assert_problem(show(client, link), 410)
    assert_problem(respond(client, link, action="decline"), 410)
    assert snapshot(app) == before  # opting out still works: see test_the_opt_out_link_works_after_the_link_expired


# -- invitations ------------------------------------------------------------------------------------


def test_an_invitation_can_be_accepted_then_declined(app, client, incident, clock):
    link = token(app, "invitation")
    accepted = respond(client, link, action="accept")
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["status"] == "accepted"
    # Still open to a change of mind until the session starts.
    assert accepted.get_json()["actions"] == ["accept", "decline", "opt_out"]
    clock.advance(hours=1)
    declined = respond(client, link, action="decline")
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    stored = followup(app, "invitation")
    assert stored.status == "declined" and stored.responded_at == clock()
    assert followup(app, "invitation", 2).status == "open"
    assert show(client, link).get_json()["status"] == "declined"


def test_an_invitation_cannot_be_answered_once_the_session_has_started(app, client, incident, clock):
    [session] = incident["sessions"]
    link = token(app, "invitation")
    clock.now = datetime.fromisoformat(session["starts_at"]) + timedelta(minutes=30)
    before = snapshot(app)
    assert_problem(respond(client, link, action="accept"), 409)
    assert_problem(respond(client, link, action="decline"), 409)
    assert snapshot(app) == before


# -- the individual-session offer ------------------------------------------------------------------------


def test_accepting_the_offer_with_a_peer_books_a_60_minute_individual_session_within_7_days(app, client, incident, clock):
    clock.advance(**OFF_GRID)
    accepted_at = clock()
    response = respond(client, token(app, "offer"), action="accept", choice="peer")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "accepted" and body["choice"] == "peer"
    shown = body["session"]
    assert shown["kind"] == "individual" and shown["status"] == "scheduled"
    starts_at, ends_at = datetime.fromisoformat(shown["starts_at"]), datetime.fromisoformat(shown["ends_at"])
    assert ends_at - starts_at == timedelta(minutes=60)
    assert accepted_at < starts_at and ends_at <= accepted_at + timedelta(days=7)

    [session] = individual_sessions(app)
    assert session.starts_at == starts_at and session.participant_count == 1
    [assignment] = session.assignments
    assert assignment.active and assignment.facilitator.kind == "peer"
    offer = followup(app, "offer")
    assert offer.status == "accepted" and offer.booked_session_id == session.id and offer.responded_at == accepted_at


def test_a_booked_session_sends_the_participant_a_calendar_invitation_and_the_facilitator_an_assignment(app, client, incident, clock):
    clock.advance(**OFF_GRID)
    assert respond(client, token(app, "offer"), action="accept", choice="peer").status_code == 200
    [session] = individual_sessions(app)
    [assignment] = session.assignments

    [invitation] = outbox(app, kind="invitation_new", session_id=session.id)
    assert invitation.recipient == "officer1@north.example.org" and invitation.personnel_id == personnel_id(app, 1)
    calendar = ics_of(invitation)
    [event] = calendar.walk("VEVENT")
    assert calendar["METHOD"] == "REQUEST"
    assert str(event["ATTENDEE"]).lower() == "mailto:officer1@north.example.org"
    assert event.decoded("DTSTART") == session.starts_at and event.decoded("DTEND") == session.ends_at
    # The link of that invitation opens the individual session.
    shown = show(client, token_of(app, followup(app, "invitation", session_id=session.id))).get_json()
    assert shown["kind"] == "invitation" and shown["session"]["kind"] == "individual"

    [told] = outbox(app, kind="assignment_new", session_id=session.id)
    with db(app) as s:
        facilitator = s.get(Facilitator, assignment.facilitator_id)
    assert told.facilitator_id == facilitator.id and told.recipient == facilitator.email
    assert "Officer Number" not in told.payload["text"]  # the facilitator's message names no one


def test_an_offer_accepted_at_a_grid_time_is_booked_ahead_and_the_participant_invited(app, client, incident, clock):
    accepted_at = clock()  # 15:00Z, 10:00 Toronto time: on the grid, inside 08:00–20:00
    assert respond(client, token(app, "offer"), action="accept", choice="peer").status_code == 200
    [session] = individual_sessions(app)
    assert session.starts_at > accepted_at
    assert len(outbox(app, kind="invitation_new", session_id=session.id)) == 1


def test_an_offer_cannot_be_accepted_twice(app, client, incident, clock):
    clock.advance(**OFF_GRID)
    link = token(app, "offer")
    assert respond(client, link, action="accept", choice="peer").status_code == 200
    before = snapshot(app)
    assert_problem(respond(client, link, action="accept", choice="clinician"), 409)
    assert_problem(respond(client, link, action="decline"), 409)
    assert snapshot(app) == before and len(individual_sessions(app)) == 1


def test_accepting_the_offer_needs_a_choice(app, client, incident):
    before = snapshot(app)
    problem = assert_problem(respond(client, token(app, "offer"), action="accept"), 422)
    assert "choice" in problem["errors"]
    problem = assert_problem(respond(client, token(app, "offer"), action="accept", choice="chaplain"), 422)
    assert "choice" in problem["errors"]
    assert snapshot(app) == before


def test_a_declined_offer_can_still_be_accepted(app, client, incident, clock):
    link = token(app, "offer")
    declined = respond(client, link, action="decline")
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    assert declined.get_json()["actions"] == ["accept", "decline", "opt_out"]
    assert_problem(respond(client, link, action="decline"), 409)
    clock.advance(**OFF_GRID)
    accepted = respond(client, link, action="accept", choice="clinician")
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "accepted"
    [session] = individual_sessions(app)
    assert session.assignments[0].facilitator.kind == "clinician"


def test_when_no_one_is_free_the_offer_is_accepted_and_the_participant_told_a_coordinator_will_call(app, client, keys, incident):
    agency = client.patch("/v1/agencies/north", json={"coordinator_email": "cism@north.example.org"}, headers=keys.auth("admin"))
    assert agency.status_code == 200, agency.get_json()
    with db(app) as s:
        clinicians = list(s.scalars(select(Facilitator.id).where(Facilitator.kind == "clinician")))
    for fid in clinicians:
        response = client.patch(f"/v1/facilitators/{fid}", json={"active": False}, headers=keys.auth("coordinator"))
        assert response.status_code == 200, response.get_json()

    response = respond(client, token(app, "offer"), action="accept", choice="clinician")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "accepted" and body["choice"] == "clinician" and body["session"] is None
    assert individual_sessions(app) == [] and followup(app, "offer").booked_session_id is None
    [pending] = outbox(app, kind="booking_pending")
    assert pending.recipient == "officer1@north.example.org" and pending.personnel_id == personnel_id(app, 1)
    assert "coordinator" in pending.payload["text"]
    [alert] = outbox(app, kind="booking_unassigned")
    assert alert.recipient == "cism@north.example.org" and "officer1@north.example.org" in alert.payload["text"]


# -- confidentiality of individual sessions ---------------------------------------------------------------


def test_an_individual_session_is_not_shown_with_the_incident(app, client, keys, incident, clock):
    clock.advance(**OFF_GRID)
    assert respond(client, token(app, "offer"), action="accept", choice="peer").status_code == 200
    assert len(individual_sessions(app)) == 1
    for role in ("dispatch", "coordinator"):
        shown = client.get(f"/v1/incidents/{incident['id']}", headers=keys.auth(role)).get_json()
        assert shown["sessions"] == incident["sessions"]
        assert shown["status"] == "planned" and shown["problems"] == []
        [listed] = client.get("/v1/incidents", headers=keys.auth(role)).get_json()["items"]
        assert listed["sessions"] == incident["sessions"]


def test_a_facilitator_leaving_an_individual_session_does_not_show_on_the_incident(app, client, keys, clock):
    add_roster(client, keys, clinicians=1, peers=2)
    incident = report(client, keys)
    clock.advance(**OFF_GRID)
    assert respond(client, token(app, "offer"), action="accept", choice="clinician").status_code == 200
    [session] = individual_sessions(app)
    [assignment] = session.assignments
    # The only clinician cannot take it after all: no one can replace them.
    declined = client.post(f"/v1/sessions/{session.id}/decline", headers=facilitator_key(app, assignment.facilitator_id))
    assert declined.status_code == 200, declined.get_json()
    shown = client.get(f"/v1/incidents/{incident['id']}", headers=keys.auth("dispatch")).get_json()
    assert shown["problems"] == [] and shown["status"] == "planned"
    # The session is off, the person is told so and that a coordinator will arrange another.
    [session] = individual_sessions(app)
    assert session.status == "cancelled"
    assert len(outbox(app, kind="invitation_cancelled", session_id=session.id)) == 1
    assert len(outbox(app, kind="booking_pending")) == 1


# -- check-ins, the screening and escalations ------------------------------------------------------------


def test_the_checkin_is_due_2_days_after_the_group_session(app, client, incident):
    [session] = incident["sessions"]
    ends_at = datetime.fromisoformat(session["ends_at"])
    assert followup(app, "checkin").due_at == ends_at + timedelta(days=2)


def test_a_screening_cannot_be_answered_before_it_is_due(app, client, incident, clock):
    link = token(app, "screening")
    clock.advance(days=29)
    before = snapshot(app)
    assert_problem(respond(client, link, action="answer", answers=[YES, YES, YES, NO, NO]), 409)
    assert snapshot(app) == before


def test_a_positive_screen_escalates_to_the_clinician_of_the_group_session(app, client, incident, clock):
    clinician = the_clinician(incident)
    link = token(app, "screening")
    clock.advance(days=30)
    response = respond(client, link, action="answer", answers=[YES, NO, YES, NO, YES])
    assert response.status_code == 200, response.get_json()
    # Answered, and still open to new answers until it expires.
    assert response.get_json()["status"] == "answered" and response.get_json()["actions"] == ["answer", "opt_out"]
    screening = followup(app, "screening")
    assert screening.answers == [YES, NO, YES, NO, YES] and screening.positive is True
    assert screening.responded_at == clock()

    [escalation] = escalations(app)
    assert escalation.reason == "positive_screen" and escalation.clinician_id == clinician
    assert escalation.personnel_id == personnel_id(app, 1) and escalation.followup_id == screening.id
    with db(app) as s:
        email = s.get(Facilitator, clinician).email
    [message] = outbox(app, kind="escalation")
    assert message.recipient == email and message.status == PENDING and message.due_at == clock()
    assert "Officer Number1" in message.payload["text"] and "officer1@north.example.org" in message.payload["text"]
    assert "Officer Number2" not in message.payload["text"]


def test_two_yes_answers_are_a_negative_screen_and_escalate_nothing(app, client, incident, clock):
    link = token(app, "screening")
    clock.advance(days=30)
    response = respond(client, link, action="answer", answers=[YES, YES, NO, NO, NO])
    assert response.status_code == 200 and response.get_json()["status"] == "answered"
    assert followup(app, "screening").positive is False
    assert escalations(app) == [] and outbox(app, kind="escalation") == []


def test_a_negative_screen_asking_for_contact_escalates(app, client, incident, clock):
    link = token(app, "screening")
    clock.advance(days=30)
    response = respond(client, link, action="answer", answers=[NO] * 5, contact_requested=True)
    assert response.status_code == 200
    [escalation] = escalations(app)
    assert escalation.reason == "contact_requested" and escalation.clinician_id == the_clinician(incident)


def test_a_checkin_asking_for_contact_escalates_to_the_clinician(app, client, incident, clock):
    checkin = followup(app, "checkin")
    link = token_of(app, checkin)
    clock.now = checkin.due_at
    response = respond(client, link, action="answer", contact_requested=True)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "answered"
    [escalation] = escalations(app)
    assert escalation.reason == "contact_requested" and escalation.clinician_id == the_clinician(incident)
    assert escalation.followup_id == checkin.id
    [message] = outbox(app, kind="escalation")
    assert "Officer Number1" in message.payload["text"]


def test_a_checkin_without_a_request_for_contact_escalates_nothing(app, client, incident, clock):
    checkin = followup(app, "checkin")
    clock.now = checkin.due_at
    assert respond(client, token_of(app, checkin), action="answer", contact_requested=False).status_code == 200
    assert followup(app, "checkin").status == "answered" and escalations(app) == []


def test_a_checkin_cannot_be_answered_before_it_is_due_or_twice(app, client, incident, clock):
    checkin = followup(app, "checkin")
    link = token_of(app, checkin)
    clock.now = checkin.due_at - timedelta(minutes=1)
    assert_problem(respond(client, link, action="answer", contact_requested=True), 409)
    clock.now = checkin.due_at
    assert respond(client, link, action="answer", contact_requested=True).status_code == 200
    before = snapshot(app)
    assert_problem(respond(client, link, action="answer", contact_requested=True), 409)
    assert_problem(respond(client, link, action="answer", contact_requested=False), 409)
    assert snapshot(app) == before and len(escalations(app)) == 1


def test_a_screening_can_be_answered_again_until_it_expires_and_a_positive_answer_is_never_taken_back(
        app, client, keys, incident, clock):
    screening = followup(app, "screening")
    link = token_of(app, screening)
    clock.now = screening.due_at
    assert respond(client, link, action="answer", answers=[NO] * 5).status_code == 200
    assert escalations(app) == []
    clock.advance(days=3)
    again = respond(client, link, action="answer", answers=[YES] * 4 + [NO])
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["actions"] == ["answer", "opt_out"]
    [escalation] = escalations(app)
    assert escalation.reason == "positive_screen" and escalation.followup_id == screening.id
    [told] = outbox(app, kind="escalation")

    # Better a week later: the latest answers stand, the clinician stays told.
    clock.advance(days=7)
    latest = respond(client, link, action="answer", answers=[NO] * 5, contact_requested=False)
    assert latest.status_code == 200, latest.get_json()
    stored = followup(app, "screening")
    assert stored.answers == [NO] * 5 and stored.positive is False and stored.contact_requested is False
    assert stored.responded_at == clock() and stored.status == "answered"
    assert [(e.id, e.reason) for e in escalations(app)] == [(escalation.id, "positive_screen")]
    assert [(m.id, m.status) for m in outbox(app, kind="escalation")] == [(told.id, PENDING)]
    [first] = followups_list(client, keys, incident).get_json()["items"][:1]
    assert first["needs_clinical_followup"] is True

    # Until the link expires: then nothing changes any more.
    clock.now = screening.expires_at
    before = snapshot(app)
    assert_problem(respond(client, link, action="answer", answers=[YES] * 5), 410)
    assert_problem(show(client, link), 410)
    assert snapshot(app) == before


def test_a_positive_screen_after_a_request_for_contact_tells_the_same_clinician_why_once(app, client, incident, clock):
    clinician = the_clinician(incident)
    screening = followup(app, "screening")
    link = token_of(app, screening)
    clock.now = screening.due_at
    assert respond(client, link, action="answer", contact_requested=True).status_code == 200
    [asked] = outbox(app, kind="escalation")
    clock.advance(hours=2)
    assert respond(client, link, action="answer", answers=[YES] * 5).status_code == 200
    [escalation] = escalations(app)
    assert escalation.reason == "positive_screen" and escalation.clinician_id == clinician
    first, update = outbox(app, kind="escalation")
    assert first.id == asked.id and update.recipient == asked.recipient and update.facilitator_id == clinician
    text = update.payload["text"]
    assert "updates an earlier message" in text and "positive PC-PTSD-5 screen" in text
    assert "Officer Number1" in text and "officer1@north.example.org" in text
    # What the clinician needs to call, never the answers themselves.
    assert "true" not in text.lower() and "answers: " not in text.lower()
    # Positive again, or asking again: the clinician already knows.
    assert respond(client, link, action="answer", answers=[YES] * 5, contact_requested=True).status_code == 200
    assert len(outbox(app, kind="escalation")) == 2 and len(escalations(app)) == 1


@pytest.mark.parametrize("answers", [
    [YES, YES, YES, NO],
    [YES, YES, YES, NO, NO, NO],
    [],
    ["yes", "yes", "yes", "no", "no"],
    [YES, YES, YES, NO, None],
    "yes",
    [1, 1, 1, 0, 0],
])
def test_a_screening_needs_five_yes_no_answers(app, client, incident, clock, answers):
    link = token(app, "screening")
    clock.advance(days=30)
    before = snapshot(app)
    problem = assert_problem(respond(client, link, action="answer", answers=answers), 422)
    assert any(field.startswith("answers") for field in problem["errors"])
    assert snapshot(app) == before


def test_a_screening_with_neither_answers_nor_a_request_for_contact_is_422(app, client, incident, clock):
    link = token(app, "screening")
    clock.advance(days=30)
    for body in ({}, {"contact_requested": False}):
        problem = assert_problem(respond(client, link, action="answer", **body), 422)
        assert "answers" in problem["errors"]
    assert followup(app, "screening").status == "open" and escalations(app) == []


def test_a_request_for_contact_without_answers_escalates(app, client, incident, clock):
    link = token(app, "screening")
    clock.advance(days=30)
    response = respond(client, link, action="answer", contact_requested=True)
    assert response.status_code == 200, response.get_json()
    [escalation] = escalations(app)
    assert escalation.reason == "contact_requested" and followup(app, "screening").positive is None


def test_a_checkin_takes_a_request_for_contact_and_no_answers(app, client, incident, clock):
    checkin = followup(app, "checkin")
    link = token_of(app, checkin)
    clock.now = checkin.due_at
    assert "contact_requested" in assert_problem(respond(client, link, action="answer"), 422)["errors"]
    problem = assert_problem(respond(client, link, action="answer", answers=[NO] * 5, contact_requested=False), 422)
    assert "answers" in problem["errors"]
    problem = assert_problem(respond(client, link, action="answer", contact_requested="yes"), 422)
    assert "contact_requested" in problem["errors"]
    assert followup(app, "checkin").status == "open"


def test_every_action_a_message_proposes_is_one_its_link_takes(app, client, incident):
    for kind in ("invitation", "offer", "checkin", "screening"):
        item = followup(app, kind)
        [message] = outbox(app, followup_id=item.id)
        offered = set(show(client, token_of(app, item)).get_json()["actions"])
        for url in URL.findall(message.payload["text"]):
            proposed = parse_qs(urlsplit(url).query).get("action", [])
            assert set(proposed) <= offered, (kind, url)


# -- opting out ------------------------------------------------------------------------------------------


def test_opting_out_cancels_every_open_followup_and_pending_message_of_that_person(app, client, incident, clock):
    me, other = personnel_id(app, 1), personnel_id(app, 2)
    others_before = [(m.id, m.status) for m in outbox(app, personnel_id=other)]
    clock.advance(hours=1)
    response = respond(client, token(app, "checkin"), action="opt_out")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["opted_out"] is True and response.get_json()["actions"] == []

    with db(app) as s:
        mine = list(s.scalars(select(Followup).where(Followup.personnel_id == me)))
        theirs = list(s.scalars(select(Followup).where(Followup.personnel_id != me)))
        assert s.get(Personnel, me).opted_out_at == clock()
    assert {f.kind for f in mine} == {"invitation", "offer", "checkin", "screening"}
    assert {f.status for f in mine} == {"cancelled"} and {f.status for f in theirs} == {"open"}
    assert {m.status for m in outbox(app, personnel_id=me)} == {CANCELLED}
    assert [(m.id, m.status) for m in outbox(app, personnel_id=other)] == others_before
    # Every link of the person now says so.
    for kind in ("invitation", "offer", "screening"):
        shown = show(client, token(app, kind)).get_json()
        assert shown["opted_out"] is True and shown["actions"] == [] and shown["status"] == "cancelled"


@pytest.mark.parametrize("clinicians", [1, 0])
def test_opting_out_never_cancels_an_escalation_already_raised(app, client, keys, clock, clinicians):
    """Safety first: a clinician (or, without one, the coordinators) asked to reach someone still is."""
    add_roster(client, keys, clinicians=clinicians)
    client.patch("/v1/agencies/north", json={"coordinator_email": "cism@north.example.org"}, headers=keys.auth("admin"))
    incident = report(client, keys)
    me = personnel_id(app, 1)
    clock.advance(days=30)
    assert respond(client, token(app, "screening"), action="answer", answers=[YES] * 5).status_code == 200
    [raised] = [m for m in outbox(app, personnel_id=me) if m.kind in ("escalation", "escalation_unassigned")]
    assert raised.status == PENDING
    opted_out = respond(client, token(app, "screening"), action="opt_out")
    assert opted_out.status_code == 200, opted_out.get_json()
    assert opted_out.get_json()["opted_out"] is True
    assert outbox(app, id=raised.id)[0].status == PENDING
    assert {m.status for m in outbox(app, personnel_id=me) if m.id != raised.id} == {CANCELLED}
    [escalation] = escalations(app)
    assert escalation.personnel_id == me
    [first] = followups_list(client, keys, incident).get_json()["items"][:1]
    assert first["opted_out_at"] is not None and first["needs_clinical_followup"] is True


def test_opting_out_keeps_what_was_already_answered(app, client, incident):
    assert respond(client, token(app, "invitation"), action="accept").status_code == 200
    assert respond(client, token(app, "offer"), action="opt_out").status_code == 200
    assert followup(app, "invitation").status == "accepted"
    assert {followup(app, kind).status for kind in ("offer", "checkin", "screening")} == {"cancelled"}


def test_after_opting_out_no_link_of_that_person_takes_an_answer(app, client, incident, clock):
    assert respond(client, token(app, "screening"), action="opt_out").status_code == 200
    before = snapshot(app)
    assert_problem(respond(client, token(app, "invitation"), action="accept"), 409)
    assert_problem(respond(client, token(app, "offer"), action="accept", choice="peer"), 409)
    assert_problem(respond(client, token(app, "offer"), action="opt_out"), 409)
    clock.advance(days=30)
    assert_problem(respond(client, token(app, "screening"), action="answer", answers=[YES] * 5), 409)
    assert snapshot(app) == before and escalations(app) == []


def test_after_opting_out_later_changes_queue_nothing_for_that_person(app, client, keys, incident):
    [session] = incident["sessions"]
    me = personnel_id(app, 1)
    assert respond(client, token(app, "offer"), action="opt_out").status_code == 200
    before = {m.id for m in outbox(app)}

    added = client.patch(f"/v1/incidents/{incident['id']}", json={"add_personnel": [person(4)]}, headers=keys.auth("dispatch"))
    assert added.status_code == 200, added.get_json()
    new_start = datetime.fromisoformat(session["starts_at"]) + timedelta(hours=3)
    moved = client.post(f"/v1/sessions/{session['id']}/reschedule", json={"starts_at": new_start.isoformat()},
                        headers=keys.auth("coordinator"))
    assert moved.status_code == 200, moved.get_json()

    new = [m for m in outbox(app) if m.id not in before]
    assert {m.kind for m in new} >= {"invitation_new", "invitation_moved", "assignment_moved"}  # the others are told
    assert [m for m in new if m.personnel_id == me or m.recipient == "officer1@north.example.org"] == []
    assert {m.status for m in outbox(app, personnel_id=me)} == {CANCELLED}
    with db(app) as s:
        assert {f.status for f in s.scalars(select(Followup).where(Followup.personnel_id == me))} == {"cancelled"}


# -- the pool's planning lock ---------------------------------------------------------------------------


def test_a_link_takes_the_planning_lock_only_to_book_an_individual_session(app, client, incident, clock, monkeypatch):
    """A public link must not make every planner wait: only accepting the offer books from the pool."""
    taken: list[str] = []
    plan_alone = sessions_service._plan_alone
    monkeypatch.setattr(sessions_service, "_plan_alone", lambda db: taken.append("lock") or plan_alone(db))
    clock.advance(**OFF_GRID)
    booked = respond(client, token(app, "offer"), action="accept", choice="peer")
    assert booked.status_code == 200, booked.get_json()
    assert taken
    taken.clear()

    cancelled = client.post(f"/r/{token(app, 'offer')}", data={"action": "cancel"})  # the page's button
    assert cancelled.status_code == 200 and individual_sessions(app)[0].status == "cancelled"
    for answer in ({"action": "accept"}, {"action": "decline"}):
        assert respond(client, token(app, "invitation", 2), **answer).status_code == 200
    assert respond(client, token(app, "offer", 2), action="decline").status_code == 200
    checkin = followup(app, "checkin", 2)
    clock.now = checkin.due_at
    assert respond(client, token_of(app, checkin), action="answer", contact_requested=True).status_code == 200
    clock.now = followup(app, "screening", 2).due_at
    assert respond(client, token(app, "screening", 2), action="answer", answers=[YES] * 5).status_code == 200
    assert respond(client, token(app, "screening", 3), action="opt_out").status_code == 200
    assert taken == [] and len(escalations(app)) == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_answer_goes_through_while_a_planner_holds_the_pool(app, client, incident, clock, postgres_url):
    screening = followup(app, "screening")
    clock.now = screening.due_at
    other = create_engine(postgres_url)
    with other.begin() as conn:
        conn.execute(select(func.pg_advisory_xact_lock(PLANNING_LOCK)))  # a planner at work
        answered = respond(client, token_of(app, screening), action="answer", answers=[YES] * 5)
        opted_out = respond(client, token(app, "offer", 2), action="opt_out")
    other.dispose()
    assert answered.status_code == 200, answered.get_json()
    assert opted_out.status_code == 200, opted_out.get_json()
    assert len(escalations(app)) == 1


# -- the coordinators' follow-up list ---------------------------------------------------------------------


def test_coordinators_see_each_participants_followups(app, client, keys, incident):
    [session] = incident["sessions"]
    response = followups_list(client, keys, incident)
    assert response.status_code == 200, response.get_json()
    page = response.get_json()
    assert page["next_cursor"] is None
    assert [p["external_id"] for p in page["items"]] == ["B0001", "B0002", "B0003"]
    first = page["items"][0]
    assert first["name"] == "Officer Number1" and first["email"] == "officer1@north.example.org"
    assert first["language"] == "en" and first["opted_out_at"] is None and first["needs_clinical_followup"] is False
    by_kind = {f["kind"]: f for f in first["followups"]}
    assert set(by_kind) == {"invitation", "offer", "checkin", "screening"}
    assert {f["status"] for f in first["followups"]} == {"open"}
    assert by_kind["invitation"]["session_id"] == session["id"]
    ends_at = datetime.fromisoformat(session["ends_at"])
    assert datetime.fromisoformat(by_kind["checkin"]["due_at"]) == ends_at + timedelta(days=2)
    occurred_at = datetime.fromisoformat(incident["occurred_at"])
    assert datetime.fromisoformat(by_kind["screening"]["due_at"]) == occurred_at + timedelta(days=30)
    assert by_kind["offer"]["delivered"] is False
    # What participants answered to the check-ins is not the coordinators' to see: only that a clinician follows up.
    assert set(by_kind["screening"]) == {"id", "kind", "session_id", "due_at", "status", "delivered", "delivery_failed",
                                         "responded_at", "choice", "booked_session_id"}


def test_the_followup_list_shows_answers_and_escalations(app, client, keys, incident, clock):
    clock.advance(**OFF_GRID)
    assert respond(client, token(app, "offer"), action="accept", choice="peer").status_code == 200
    assert respond(client, token(app, "invitation", 2), action="decline").status_code == 200
    assert respond(client, token(app, "offer", 3), action="opt_out").status_code == 200
    clock.advance(days=30)
    assert respond(client, token(app, "screening"), action="answer", answers=[YES] * 5).status_code == 200

    first, second, third = followups_list(client, keys, incident).get_json()["items"]
    offer = next(f for f in first["followups"] if f["kind"] == "offer")
    [booked] = individual_sessions(app)
    assert offer["status"] == "accepted" and offer["choice"] == "peer" and offer["booked_session_id"] == str(booked.id)
    screening = next(f for f in first["followups"] if f["kind"] == "screening")
    assert screening["status"] == "answered" and first["needs_clinical_followup"] is True
    assert not {"screen_positive", "contact_requested", "answers", "positive", "escalated"} & set(screening)
    assert second["needs_clinical_followup"] is False and third["needs_clinical_followup"] is False
    # The individual session's invitation is listed with the person's other follow-ups.
    assert str(booked.id) in {f["session_id"] for f in first["followups"] if f["kind"] == "invitation"}
    assert [f["status"] for f in second["followups"] if f["kind"] == "invitation"] == ["declined"]
    assert third["opted_out_at"] is not None and {f["status"] for f in third["followups"]} == {"cancelled"}


def test_every_read_of_the_followups_is_audited(app, client, keys, incident):
    with db(app) as s:
        key_id = s.scalars(select(ApiKey.id).where(ApiKey.key_hash == hash_key(keys.coordinator))).one()
    for expected in (1, 2):
        assert followups_list(client, keys, incident).status_code == 200
        with db(app) as s:
            entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        assert len(entries) == expected
    for entry in entries:
        assert entry.api_key_id == key_id and entry.actor_role == "coordinator"
        assert entry.action == "followups.read" and entry.incident_id == uuid.UUID(incident["id"])


@pytest.mark.parametrize(("role", "status"), [("dispatch", 403), ("supervisor", 403), ("other_coordinator", 404)])
def test_only_the_agencys_coordinators_see_the_followups(app, client, keys, incident, role, status):
    problem = assert_problem(followups_list(client, keys, incident, role), status)
    assert "Officer" not in str(problem)
    with db(app) as s:
        assert list(s.scalars(select(AuditEntry))) == []


def test_the_followups_of_an_unknown_incident_are_404(client, keys):
    assert_problem(client.get(f"/v1/incidents/{uuid.uuid4()}/followups", headers=keys.auth("coordinator")), 404)


def test_the_followup_list_is_paged(app, client, keys, incident):
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = followups_list(client, keys, incident, query=query).get_json()
        pages += 1
        assert len(page["items"]) == 1 and page["items"][0]["followups"]
        seen.append(page["items"][0]["external_id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 5
    assert seen == ["B0001", "B0002", "B0003"]
    with db(app) as s:
        assert len(list(s.scalars(select(AuditEntry)))) == 3
    assert_problem(followups_list(client, keys, incident, query="?cursor=garbage"), 422)
    assert_problem(followups_list(client, keys, incident, query="?limit=0"), 422)


# -- bad requests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "action"), [
    ("invitation", "answer"), ("offer", "answer"), ("checkin", "accept"), ("checkin", "decline"),
    ("screening", "accept"),
])
def test_an_action_that_does_not_fit_the_link_is_422(app, client, incident, kind, action):
    before = snapshot(app)
    problem = assert_problem(respond(client, token(app, kind), action=action), 422)
    assert "action" in problem["errors"]
    assert snapshot(app) == before


@pytest.mark.parametrize("body", [
    {},
    {"action": "maybe"},
    {"action": "accept", "choice": "peer", "note": "hello"},
    {"action": "accept", "personnel_id": 2},
    {"action": ["accept"]},
])
def test_a_malformed_answer_is_422(app, client, incident, body):
    before = snapshot(app)
    problem = assert_problem(client.post(f"/v1/responses/{token(app, 'invitation')}", json=body), 422)
    assert problem["errors"]
    assert snapshot(app) == before


def test_unknown_fields_are_named_in_the_errors(app, client, incident):
    problem = assert_problem(respond(client, token(app, "offer"), action="decline", reason="busy"), 422)
    assert "reason" in problem["errors"]
    assert followup(app, "offer").status == "open"


@pytest.mark.parametrize(("data", "content_type"), [
    ("action=accept", "application/x-www-form-urlencoded"),
    ('{"action": "accept"}', "text/plain"),
])
def test_a_body_that_is_not_json_is_415(app, client, incident, data, content_type):
    before = snapshot(app)
    response = client.post(f"/v1/responses/{token(app, 'invitation')}", data=data, content_type=content_type)
    assert_problem(response, 415)
    assert snapshot(app) == before


def test_invalid_json_is_400(app, client, incident):
    response = client.post(f"/v1/responses/{token(app, 'invitation')}", data="{not json", content_type="application/json")
    assert_problem(response, 400)
    assert followup(app, "invitation").status == "open"


def test_opting_out_cancels_a_booked_individual_session_and_frees_its_facilitator(app, client, incident, clock):
    clock.advance(**OFF_GRID)
    assert respond(client, token(app, "offer"), action="accept", choice="peer").status_code == 200
    [session] = individual_sessions(app)
    assert respond(client, token(app, "checkin"), action="opt_out").status_code == 200
    [session] = individual_sessions(app)
    assert session.status == "cancelled" and not any(a.active for a in session.assignments)
    [cancelled] = outbox(app, kind="assignment_cancelled", session_id=session.id)
    assert ics_of(cancelled)["METHOD"] == "CANCEL"
    assert outbox(app, kind="invitation_cancelled", session_id=session.id) == []  # they asked for no contact


def test_cancelling_the_incident_keeps_an_escalation_on_its_way_to_the_clinician(app, client, keys, incident, clock):
    clock.advance(days=30)
    assert respond(client, token(app, "screening"), action="answer", answers=[YES] * 5).status_code == 200
    response = client.patch(f"/v1/incidents/{incident['id']}", json={"status": "cancelled"}, headers=keys.auth("dispatch"))
    assert response.status_code == 200, response.get_json()
    [escalation] = outbox(app, kind="escalation")
    assert escalation.status == "pending"


# -- found in review ----------------------------------------------------------------------------------------


def test_an_escalation_never_goes_to_a_clinician_with_a_conflict_of_interest(app, client, keys, clock):
    # The agency's only clinician works in the involved unit: never planned, and never told either.
    conflicted = facilitator_body(1, kind="clinician", unit="patrol-3", email="dr.colleague@north.example.org")
    assert client.post("/v1/facilitators", json=conflicted, headers=keys.auth("coordinator")).status_code == 201
    client.patch("/v1/agencies/north", json={"coordinator_email": "cism@north.example.org"}, headers=keys.auth("admin"))
    report(client, keys)
    clock.advance(days=30)
    assert respond(client, token(app, "screening"), action="answer", answers=[YES] * 3 + [NO] * 2).status_code == 200
    [escalation] = escalations(app)
    assert escalation.clinician_id is None
    assert outbox(app, kind="escalation") == []
    [to_coordinators] = outbox(app, kind="escalation_unassigned")
    assert to_coordinators.recipient == "cism@north.example.org"


def test_a_coordinator_cancelling_an_individual_session_does_not_show_on_the_incident(app, client, keys, incident, clock):
    clock.advance(**OFF_GRID)
    assert respond(client, token(app, "offer"), action="accept", choice="peer").status_code == 200
    [session] = individual_sessions(app)
    assert client.post(f"/v1/sessions/{session.id}/cancel", headers=keys.auth("coordinator")).status_code == 200
    shown = client.get(f"/v1/incidents/{incident['id']}", headers=keys.auth("dispatch")).get_json()
    assert shown["status"] == "planned" and shown["problems"] == []
    assert len(outbox(app, kind="booking_pending")) == 1


def test_declining_an_individual_session_cancels_it_and_tells_its_facilitator(app, client, incident, clock):
    clock.advance(**OFF_GRID)
    assert respond(client, token(app, "offer"), action="accept", choice="peer").status_code == 200
    [session] = individual_sessions(app)
    invitation = followup(app, "invitation", session_id=session.id)
    assert respond(client, token_of(app, invitation), action="decline").status_code == 200
    [session] = individual_sessions(app)
    assert session.status == "cancelled"
    assert len(outbox(app, kind="assignment_cancelled", session_id=session.id)) == 1
    assert {m.status for m in outbox(app, kind="reminder", session_id=session.id)} <= {"cancelled"}


def test_the_checkin_is_withdrawn_when_the_group_session_is_cancelled_and_owed_again_when_replanned(app, client, keys, incident):
    [session] = incident["sessions"]
    assert client.post(f"/v1/sessions/{session['id']}/cancel", headers=keys.auth("coordinator")).status_code == 200
    assert {m.status for m in outbox(app, kind="checkin")} == {"cancelled"}
    assert followup(app, "checkin").status == "cancelled"
    assert client.post(f"/v1/incidents/{incident['id']}/replan", headers=keys.auth("coordinator")).status_code == 200
    assert followup(app, "checkin").status == "open"
    assert len([m for m in outbox(app, kind="checkin") if m.status == "pending"]) == 3


def test_the_opt_out_link_works_after_the_link_expired(app, client, incident, clock):
    link = token(app, "invitation")
    clock.advance(days=2)  # the session is over; its invitation link has expired
    assert respond(client, link, action="decline").status_code == 410
    response = respond(client, link, action="opt_out")
    assert response.status_code == 200 and response.get_json()["opted_out"] is True
    assert {m.status for m in outbox(app, personnel_id=personnel_id(app, 1)) if m.kind in ("checkin", "screening")} == {"cancelled"}


def test_an_individual_session_booked_late_can_be_moved_within_7_days_of_the_acceptance(app, client, keys, incident, clock):
    clock.advance(days=10, minutes=10)  # well past the incident's own windows
    assert respond(client, token(app, "offer"), action="accept", choice="peer").status_code == 200
    [session] = individual_sessions(app)
    later = session.starts_at + timedelta(hours=1)
    moved = client.post(f"/v1/sessions/{session.id}/reschedule", json={"starts_at": later.isoformat()},
                        headers=keys.auth("coordinator"))
    assert moved.status_code == 200, moved.get_json()
    too_late = clock() + timedelta(days=8)
    refused = client.post(f"/v1/sessions/{session.id}/reschedule", json={"starts_at": too_late.replace(minute=0).isoformat()},
                          headers=keys.auth("coordinator"))
    assert refused.status_code == 422


def test_a_message_that_could_not_be_delivered_shows_in_the_coordinators_list(app, client, keys, incident):
    with db(app) as s:
        offer = s.scalars(select(Followup).where(Followup.kind == "offer")).first()
        s.execute(update(OutboxMessage).where(OutboxMessage.followup_id == offer.id).values(status="dead", attempts=6))
        s.commit()
    items = followups_list(client, keys, incident).get_json()["items"]
    shown = {f["id"]: f for person in items for f in person["followups"]}
    assert shown[str(offer.id)]["delivery_failed"] is True and shown[str(offer.id)]["delivered"] is False
    assert not any(f["delivery_failed"] for id, f in shown.items() if id != str(offer.id))
