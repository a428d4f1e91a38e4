"""Messages that must reach a person outlive an outage, and the coordinators hear of those that never do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from service.incidents.models import Personnel
from service.outbox.models import DEAD, PENDING, OutboxMessage
from service.outbox.service import email_payload, queue_message
from tests.factories import incident_body, report_planned
from tests.integration.planning_helpers import add_roster
from workers.relay import in_process_dispatch, relay_once


@pytest.fixture
def services(app, sink):
    """The app's services delivering to the sink, giving up after 3 attempts for ordinary messages."""
    services = app.extensions["debrief"]
    services.config = services.config.updated({"smtp_url": sink.url, "delivery_max_attempts": 3})
    return services


@pytest.fixture
def person(client, keys, services):
    """A participant of a planned incident of agency north, whose coordinators have a mailbox."""
    client.patch("/v1/agencies/north", json={"coordinator_email": "cism@north.example.org"}, headers=keys.auth("admin"))
    add_roster(client, keys)
    report_planned(client, incident_body(people=1), keys.auth("dispatch"))
    with services.session_factory() as db:
        return db.scalar(select(Personnel))


def queue(services, person, kind: str) -> str:
    with services.session_factory() as db:
        id = queue_message(db, dedup_key=f"{kind}:test", kind=kind, channel="email", recipient=person.email,
                           payload=email_payload(subject="Clinical follow-up needed", text="Please call."), now=services.clock(),
                           incident_id=person.incident_id, personnel_id=person.id, agency_id=None)
        db.commit()
    return id


def deliver(services) -> int:
    return relay_once(services, in_process_dispatch(services))


def message(services, id) -> OutboxMessage:
    with services.session_factory() as db:
        return db.get(OutboxMessage, id)


def test_an_escalation_is_retried_for_three_days_then_the_coordinators_are_told(services, person, sink, clock):
    sink.refuse_rcpt = "451 4.3.0 mailbox busy"
    id = queue(services, person, "escalation")
    attempts = 0
    while message(services, id).status == PENDING:
        clock.now = max(clock.now, message(services, id).due_at)
        attempts += deliver(services) and 1
        assert attempts < 50
    dead = message(services, id)
    # Far past the 3 attempts of an ordinary message, and not one attempt after the third day.
    assert dead.status == DEAD and dead.attempts > 3
    assert clock.now - dead.created_at <= timedelta(days=3)
    with services.session_factory() as db:
        alert = db.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == f"undelivered:{id}"))
    assert alert.recipient == "cism@north.example.org" and alert.status == PENDING
    assert person.name in alert.payload["text"] and person.email in alert.payload["text"]
    sink.refuse_rcpt = None
    deliver(services)
    assert "cism@north.example.org" in [m["To"] for m in sink.messages]


def test_an_ordinary_message_still_dies_after_its_attempts_and_alerts_no_one(services, person, sink, clock):
    sink.refuse_rcpt = "451 4.3.0 mailbox busy"
    id = queue(services, person, "checkin")
    for _ in range(3):
        clock.now = max(clock.now, message(services, id).due_at)
        deliver(services)
    assert message(services, id).status == DEAD and message(services, id).attempts == 3
    with services.session_factory() as db:
        assert db.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == f"undelivered:{id}")) is None


def test_metrics_show_what_the_outbox_still_owes(client, services, person, clock):
    with services.session_factory() as db:
        owed = db.scalar(select(OutboxMessage.id).where(OutboxMessage.status == PENDING).order_by(OutboxMessage.due_at).limit(1))
        due_at = db.get(OutboxMessage, owed).due_at
    clock.now = due_at + timedelta(minutes=5)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'debrief_outbox_messages{state="pending"}' in text
    assert 'debrief_outbox_messages{state="dead"} 0.0' in text
    age = float(next(line.split()[-1] for line in text.splitlines() if line.startswith("debrief_outbox_oldest_due_age_seconds")))
    assert age >= 300.0
