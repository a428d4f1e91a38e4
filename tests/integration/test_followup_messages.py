"""What the plan owes people: messages queued with every change, then delivered by the real relay and SMTP sink."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import icalendar
import pytest
from sqlalchemy import select

from service.followups.models import Followup
from service.outbox.models import CANCELLED, PENDING, SENT, OutboxMessage
from tests.factories import NOW, incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster, facilitator_key
from workers.channels import sign_webhook
from workers.relay import in_process_dispatch, relay_once


def report(client, keys, body):
    return report_planned(client, body, keys.auth("dispatch"))


def outbox(app, **where) -> list[OutboxMessage]:
    with app.extensions["debrief"].session_factory() as db:
        query = select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.kind, OutboxMessage.recipient)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return list(db.scalars(query))


def kinds(messages) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in messages:
        counts[m.kind] = counts.get(m.kind, 0) + 1
    return counts


def ics_of(message: OutboxMessage) -> icalendar.Calendar:
    [attachment] = message.payload["attachments"]
    return icalendar.Calendar.from_ical(base64.b64decode(attachment["data"]))


def deliver_due(app) -> int:
    """One relay pass delivering in process (the embedded mode of `debrief serve`)."""
    services = app.extensions["debrief"]
    return relay_once(services, in_process_dispatch(services))


@pytest.fixture
def mail(app, sink):
    """Deliver through the real SMTP sink."""
    services = app.extensions["debrief"]
    services.config = services.config.updated({"smtp_url": sink.url})
    return sink


def test_intake_owes_each_participant_an_invitation_offer_checkin_and_screening(client, keys, app):
    roster = add_roster(client, keys)
    incident = report(client, keys, incident_body(people=3))
    [session] = incident["sessions"]
    ends_at = datetime.fromisoformat(session["ends_at"])
    starts_at = datetime.fromisoformat(session["starts_at"])

    messages = outbox(app)
    assert kinds(messages) == {"invitation_new": 3, "offer": 3, "checkin": 3, "screening": 3, "assignment_new": 2}
    by_kind = {k: [m for m in messages if m.kind == k] for k in kinds(messages)}
    assert {m.recipient for m in by_kind["invitation_new"]} == {f"officer{n}@north.example.org" for n in (1, 2, 3)}
    assert all(m.due_at == NOW for m in by_kind["invitation_new"] + by_kind["offer"] + by_kind["assignment_new"])
    assert all(m.due_at == ends_at + timedelta(days=2) for m in by_kind["checkin"])
    occurred = datetime.fromisoformat(incident["occurred_at"])
    assert all(m.due_at == occurred + timedelta(days=30) for m in by_kind["screening"])
    # The session starts in less than 24 h: the assignment is the reminder.
    assert starts_at - timedelta(hours=24) < NOW and "reminder" not in by_kind

    team = {f["id"] for f in session["facilitators"]}
    assert {m.facilitator_id for m in by_kind["assignment_new"]} == team and team <= set(roster)
    for message in by_kind["assignment_new"] + by_kind["invitation_new"]:
        calendar = ics_of(message)
        [event] = calendar.walk("VEVENT")
        assert calendar["METHOD"] == "REQUEST" and event["SEQUENCE"] == 0
        assert event.decoded("DTSTART") == starts_at and event.decoded("DTEND") == ends_at
        assert str(event["ATTENDEE"]).lower() == f"mailto:{message.recipient}"
    for message in by_kind["invitation_new"] + by_kind["offer"] + by_kind["checkin"] + by_kind["screening"]:
        text = message.payload["text"]
        assert "/r/" in text and "action=opt_out" in text and "voluntary" in text
        assert "Officer Number" not in text  # no one's name, not even their own


def test_facilitators_get_a_reminder_24_hours_before_a_later_session(client, keys, app, clock):
    add_roster(client, keys)
    # At 19:00 Toronto time the window opens too late in the day: the session is the day after, over 24 h away.
    clock.advance(hours=9, minutes=30)
    incident = report(client, keys, incident_body(occurred_at=(NOW + timedelta(hours=9)).isoformat()))
    [session] = incident["sessions"]
    starts_at = datetime.fromisoformat(session["starts_at"])
    reminders = outbox(app, kind="reminder")
    assert len(reminders) == 2 and all(m.due_at == starts_at - timedelta(hours=24) for m in reminders)


def test_planning_again_owes_nothing_new(client, keys, app):
    add_roster(client, keys)
    body = incident_body()
    incident = report(client, keys, body)
    before = len(outbox(app))
    report(client, keys, body)  # a retry of the same report
    response = client.post(f"/v1/incidents/{incident['id']}/replan", headers=keys.auth("coordinator"))
    assert response.status_code == 200
    assert len(outbox(app)) == before


def test_a_rescheduled_session_sends_updates_and_moves_the_checkin(client, keys, app):
    add_roster(client, keys)
    incident = report(client, keys, incident_body(people=2))
    [session] = incident["sessions"]
    new_start = datetime.fromisoformat(session["starts_at"]) + timedelta(hours=3)
    response = client.post(f"/v1/sessions/{session['id']}/reschedule", json={"starts_at": new_start.isoformat()},
                           headers=keys.auth("coordinator"))
    assert response.status_code == 200, response.get_json()

    moved = outbox(app, kind="invitation_moved")
    assert len(moved) == 2
    [event] = ics_of(moved[0]).walk("VEVENT")
    assert event["SEQUENCE"] == 1 and event.decoded("DTSTART") == new_start
    assert len(outbox(app, kind="assignment_moved")) == 2
    new_end = new_start + timedelta(minutes=150)
    checkins = outbox(app, kind="checkin")
    assert {m.due_at for m in checkins if m.status == PENDING} == {new_end + timedelta(days=2)}
    assert len([m for m in checkins if m.status == CANCELLED]) == 2  # the old ones, links and all
    with app.extensions["debrief"].session_factory() as db:
        assert {f.due_at for f in db.scalars(select(Followup).where(Followup.kind == "checkin"))} == {new_end + timedelta(days=2)}


def test_a_declining_facilitator_gets_a_cancel_and_the_replacement_an_assignment(client, keys, app):
    add_roster(client, keys, clinicians=2, peers=4)
    incident = report(client, keys, incident_body())
    [session] = incident["sessions"]
    leaving = next(f["id"] for f in session["facilitators"] if f["kind"] == "peer")
    participants_before = len(outbox(app, kind="invitation_new"))

    response = client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, leaving))
    assert response.status_code == 200, response.get_json()
    after = response.get_json()
    [newcomer] = {f["id"] for f in after["facilitators"]} - {f["id"] for f in session["facilitators"]}

    [cancel] = outbox(app, kind="assignment_cancelled")
    assert cancel.facilitator_id == leaving
    calendar = ics_of(cancel)
    [event] = calendar.walk("VEVENT")
    assert calendar["METHOD"] == "CANCEL" and event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == after["sequence"]
    assert [m.facilitator_id for m in outbox(app, kind="assignment_new") if m.facilitator_id == newcomer] == [newcomer]
    # Same time, same place: participants are not bothered.
    assert len(outbox(app, kind="invitation_new")) == participants_before and outbox(app, kind="invitation_moved") == []


def test_cancelling_the_incident_voids_pending_messages_and_sends_cancellations(client, keys, app):
    add_roster(client, keys)
    incident = report(client, keys, incident_body(people=2))
    response = client.patch(f"/v1/incidents/{incident['id']}", json={"status": "cancelled"}, headers=keys.auth("dispatch"))
    assert response.status_code == 200, response.get_json()

    voided = [m for m in outbox(app) if m.status == CANCELLED]
    assert kinds(voided) == {"invitation_new": 2, "offer": 2, "checkin": 2, "screening": 2, "assignment_new": 2}
    pending = [m for m in outbox(app) if m.status == PENDING]
    assert kinds(pending) == {"invitation_cancelled": 2, "assignment_cancelled": 2}
    with app.extensions["debrief"].session_factory() as db:
        assert {f.status for f in db.scalars(select(Followup))} == {"cancelled"}


def test_a_person_added_later_is_invited_and_the_others_are_not_asked_again(client, keys, app):
    add_roster(client, keys)
    incident = report(client, keys, incident_body(people=2))
    response = client.patch(f"/v1/incidents/{incident['id']}", json={"add_personnel": [person(3)]}, headers=keys.auth("dispatch"))
    assert response.status_code == 200, response.get_json()
    invited = outbox(app, kind="invitation_new")
    assert sorted(m.recipient for m in invited) == [f"officer{n}@north.example.org" for n in (1, 2, 3)]
    assert len(outbox(app, kind="offer")) == 3 and len(outbox(app, kind="screening")) == 3


def test_coordinators_hear_of_a_plan_that_fails_and_the_agency_gets_signed_status_events(client, keys, app, receiver, mail):
    # The receiver listens on loopback: only the explicit setting lets webhooks go there.
    services = app.extensions["debrief"]
    services.config = services.config.updated({"webhook_allow_private_targets": True})
    secret = client.post("/v1/agencies/north/webhook-secret", headers=keys.auth("admin")).get_json()["webhook_secret"]
    response = client.patch("/v1/agencies/north", json={"coordinator_email": "cism@north.example.org",
                                                        "webhook_url": receiver.url}, headers=keys.auth("admin"))
    assert response.status_code == 200 and response.get_json()["webhook_secret_set"] is True
    add_roster(client, keys, clinicians=0, peers=3)
    incident = report(client, keys, incident_body())
    assert incident["status"] == "needs_attention"

    assert deliver_due(app) >= 2
    [alert] = [m for m in mail.messages if m["To"] == "cism@north.example.org"]
    body = alert.get_body(("plain",)).get_content()
    assert "CAD-2026-0001" in body and "no clinician is available" in body and "aucun clinicien" in body
    assert "Officer Number" not in body and "officer1@" not in body

    [hook] = receiver.requests
    assert hook.headers["webhook-signature"] == sign_webhook(
        secret, hook.headers["webhook-id"], int(hook.headers["webhook-timestamp"]), hook.body)
    event = json.loads(hook.body)
    assert event["type"] == "incident.status_changed" and event["data"]["status"] == "needs_attention"
    assert b"officer" not in hook.body.lower() and b"Number" not in hook.body

    add_roster(client, keys, clinicians=1, peers=0, start=10)
    client.post(f"/v1/incidents/{incident['id']}/replan", headers=keys.auth("coordinator"))
    deliver_due(app)
    assert [json.loads(r.body)["data"]["status"] for r in receiver.requests] == ["needs_attention", "planned"]


def test_the_30_day_screening_goes_out_when_the_clock_reaches_it_in_the_participants_language(client, keys, app, clock, mail):
    add_roster(client, keys, languages=["fr", "en"])
    incident = report(client, keys, incident_body(people=1, personnel=[person(1, language="fr")]))
    occurred = datetime.fromisoformat(incident["occurred_at"])
    deliver_due(app)
    first = {m["Subject"] for m in mail.messages}
    assert "Une rencontre individuelle, si vous le souhaitez" in first and "Invitation à une séance de soutien" in first

    clock.advance(days=29)
    deliver_due(app)
    assert not any("cinq questions" in m["Subject"] for m in mail.messages)
    clock.now = occurred + timedelta(days=30)
    assert deliver_due(app) == 1
    [screening] = [m for m in mail.messages if "cinq questions" in m["Subject"]]
    text = screening.get_body(("plain",)).get_content()
    assert "Au cours du dernier mois" in text and "/r/" in text
    [row] = outbox(app, kind="screening")
    assert row.status == SENT and screening["Message-ID"] == f"<{row.id}@debrief>"
    assert deliver_due(app) == 0 and sum("cinq questions" in m["Subject"] for m in mail.messages) == 1


def test_a_participants_messages_name_no_other_participant(client, keys, app):
    add_roster(client, keys)
    report(client, keys, incident_body(people=3))
    for message in outbox(app):
        if message.personnel_id is not None:
            others = {f"officer{n}@north.example.org" for n in (1, 2, 3)} - {message.recipient}
            assert not any(other in json.dumps(message.payload) for other in others)


def test_a_participant_moved_out_of_a_session_and_back_is_invited_again(client, keys, app, clock):
    add_roster(client, keys, clinicians=3, peers=6)
    assert client.patch("/v1/agencies/north", json={"policy": {"max_group_size": 4}}, headers=keys.auth("admin")).status_code == 200
    incident = report(client, keys, incident_body(personnel=[person(n) for n in range(2, 7)]))
    for n in (1, 7):  # the groups are split anew each time; B0004 leaves its group, then comes back
        clock.advance(minutes=1)  # so that messages sort in the order they were queued
        response = client.patch(f"/v1/incidents/{incident['id']}", json={"add_personnel": [person(n)]},
                                headers=keys.auth("dispatch"))
        assert response.status_code == 200, response.get_json()
    with app.extensions["debrief"].session_factory() as db:
        invitations = list(db.scalars(select(Followup).where(Followup.kind == "invitation")))
    for followup in invitations:
        told = [m.kind for m in outbox(app, followup_id=followup.id)]
        # What the person was last told matches what the plan says now.
        expected_on = followup.notified_state not in (None, "off")
        assert (told[-1] != "invitation_cancelled") == expected_on, (followup.dedup_key, told)


def test_a_planning_problem_that_comes_back_is_reported_again(client, keys, app):
    add_roster(client, keys, clinicians=1, peers=1)
    client.patch("/v1/agencies/north", json={"coordinator_email": "cism@north.example.org"}, headers=keys.auth("admin"))
    incident = report(client, keys, incident_body())
    [session] = incident["sessions"]
    first_peer = next(f["id"] for f in session["facilitators"] if f["kind"] == "peer")
    assert client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, first_peer)).status_code == 200
    assert len(outbox(app, kind="planning_problem")) == 1
    [second_peer] = add_roster(client, keys, clinicians=0, peers=1, start=10)
    replanned = client.post(f"/v1/incidents/{incident['id']}/replan", headers=keys.auth("coordinator")).get_json()
    assert replanned["status"] == "planned"
    [on_team] = [f["id"] for f in replanned["sessions"][0]["facilitators"] if f["kind"] == "peer"]
    other = second_peer if on_team != second_peer else first_peer
    client.patch(f"/v1/facilitators/{other}", json={"active": False}, headers=keys.auth("coordinator"))
    assert client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, on_team)).status_code == 200
    assert len(outbox(app, kind="planning_problem")) == 2
