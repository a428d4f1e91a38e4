"""Job functions: plain module functions that take ids and open their own session.

`deliver` is what RQ runs; it uses the app the worker process built once (the worker
pushes its app context, see workers.worker). `deliver_message` is the same work given the
services explicitly, which the in-process mode of `debrief serve` calls directly.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Mapping

from flask import current_app
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from service.agencies.models import Agency, signing_secrets
from service.db import db_now
from service.outbox.models import DEAD, EMAIL, ERASED_PAYLOAD, PENDING, QUEUED, SENDING, SENT, WEBHOOK, OutboxMessage
from service.sessions.models import Session
from workers.channels import Channel, Delivery, DeliveryFailed, channels_for

if TYPE_CHECKING:
    from service.app import Services

log = logging.getLogger("workers.jobs")

# Waits after the 1st, 2nd, ... failed attempt; the last one repeats until the attempts run out.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6))

# Messages that must reach their person: retried past DELIVERY_MAX_ATTEMPTS while they matter,
# and the coordinators are told when they die.
LONG_LIVED = frozenset({"escalation", "escalation_unassigned", "invitation_new", "invitation_moved"})
ESCALATION_PATIENCE = timedelta(days=3)
# Three days of attempts at the longest back-off (6 h): the bound for a message that kills its workers.
LONG_LIVED_EXTRA_ATTEMPTS = 12


def attempt_limit(kind: str, max_attempts: int) -> int:
    """How many attempts a message of this kind may have."""
    return max_attempts + LONG_LIVED_EXTRA_ATTEMPTS if kind in LONG_LIVED else max_attempts

SKIPPED = "skipped"
RETRYING = "retrying"

# How long a worker keeps trying to record a delivery the receiver took, through a database outage
# (at most half the visibility timeout, so that the relay cannot have handed the message out again).
RECORD_PATIENCE = 60.0
RECORD_RETRY_PAUSE = 0.5


def backoff(attempt: int) -> timedelta:
    """How long to wait after the `attempt`-th failed attempt."""
    return BACKOFF[min(attempt, len(BACKOFF)) - 1]


def deliver(message_id: str) -> str:
    """RQ job: deliver one outbox message by its id (idempotent)."""
    return deliver_message(current_app.extensions["debrief"], uuid.UUID(message_id))


def deliver_message(services: Services, message_id: uuid.UUID, channels: Mapping[str, Channel] | None = None) -> str:
    """Claim the message, send it through its channel, and record the outcome; returns the new status.

    One connection for the whole job, and the claim in one statement: a job runs in a fresh
    work horse, where every extra checkout or round trip is paid again for each message.
    """
    channels = channels if channels is not None else channels_for(services.config, services.clock)
    max_attempts = services.config.delivery_max_attempts
    with services.engine.connect() as conn:
        # Only a queued row is claimed: a duplicate job, or one for a row already sent,
        # cancelled or dead, updates nothing (the row lock makes concurrent claims queue up).
        claimed = conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == QUEUED)
            # The database's clock: the relay times the claim against it (see workers.relay).
            .values(status=SENDING, attempts=OutboxMessage.attempts + 1, claimed_at=db_now())
            .returning(OutboxMessage.kind, OutboxMessage.channel, OutboxMessage.recipient, OutboxMessage.payload,
                       OutboxMessage.attempts, OutboxMessage.agency_id)
        ).one_or_none()
        if claimed is None:
            conn.rollback()
            log.info("message %s: nothing to deliver", message_id)
            return SKIPPED
        attempt = claimed.attempts
        if attempt > attempt_limit(claimed.kind, max_attempts):
            # Only workers dying mid-delivery get here (failures stop at max_attempts below).
            conn.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                         .values(status=DEAD, last_error="worker lost the message on every attempt"))
            conn.commit()
            log.warning("message %s (%s) dead after %d attempts", message_id, claimed.kind, attempt - 1)
            return DEAD
        secrets: tuple[str, ...] = ()
        if claimed.channel == WEBHOOK and claimed.agency_id is not None:
            agency = conn.execute(
                select(Agency.webhook_secret, Agency.webhook_previous_secret, Agency.webhook_previous_until)
                .where(Agency.id == claimed.agency_id)
            ).one_or_none()
            if agency is not None:
                secrets = signing_secrets(*agency, services.clock())
        conn.commit()  # the claim is short; no transaction stays open while we talk to the receiver
        record_by = time.monotonic() + min(RECORD_PATIENCE, services.config.delivery_visibility_seconds / 2)
        delivery = Delivery(message_id, claimed.kind, claimed.recipient, dict(claimed.payload), secrets)

        try:
            channels[claimed.channel].send(delivery)
        except Exception as exc:  # noqa: BLE001 - any but a permanent failure is retried; its text may hold personal data
            failed = exc if isinstance(exc, DeliveryFailed) else DeliveryFailed(f"error {type(exc).__name__}")
            return _record_failure(conn, services, message_id, attempt, failed, max_attempts, delivery.kind)

        _record_sent(conn, services, message_id, attempt, record_by)
    log.info("message %s (%s) sent, attempt %d", message_id, delivery.kind, attempt)
    return SENT


def _record_sent(conn: Connection, services: Services, message_id: uuid.UUID, attempt: int, give_up_at: float) -> None:
    """Mark a message the receiver took as sent, riding out a short database outage.

    Giving up at the first error would leave the row `sending`: the relay hands it out again
    after the visibility timeout and the receiver gets it twice.
    """
    # Sent, the body has done its work: its links (each a person's credential), names and escalation
    # details go, in the same statement. What the audit and operations need stays in the row: kind,
    # recipient, what it was about, status, times, attempts. The demo's mailbox shows sent emails.
    erased = {} if services.config.demo else {"payload": ERASED_PAYLOAD}
    while True:
        try:
            conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.status == SENDING, OutboxMessage.attempts == attempt)
                .values(status=SENT, sent_at=services.clock(), last_error=None, **erased)
            )
            conn.commit()
            return
        except DBAPIError as exc:
            if not (isinstance(exc, OperationalError) or exc.connection_invalidated) or time.monotonic() >= give_up_at:
                raise
            # A commit that reached the server before the connection broke is found sent: the retry updates nothing.
            log.warning("message %s sent but not yet recorded (%s); retrying", message_id, type(exc).__name__)
            conn.rollback()
            time.sleep(RECORD_RETRY_PAUSE)


def matters_until(conn: Connection, message_id: uuid.UUID, kind: str) -> datetime | None:
    """Until when a message that must reach its person is worth retrying; None for the others.

    An escalation matters for 3 days (then a coordinator must act), an invitation until its session
    starts: an overnight SMTP outage must not kill either after DELIVERY_MAX_ATTEMPTS (about 8.6 h).
    """
    if kind not in LONG_LIVED:
        return None
    created_at, session_id = conn.execute(
        select(OutboxMessage.created_at, OutboxMessage.session_id).where(OutboxMessage.id == message_id)).one()
    horizon = created_at + ESCALATION_PATIENCE
    if kind.startswith("invitation") and session_id is not None:
        starts_at = conn.scalar(select(Session.starts_at).where(Session.id == session_id))
        horizon = starts_at if starts_at is not None else horizon
    return horizon


LAST_ERROR_LENGTH = OutboxMessage.__table__.c.last_error.type.length


def _record_failure(conn: Connection, services: Services, message_id: uuid.UUID, attempt: int, failed: DeliveryFailed,
                    max_attempts: int, kind: str) -> str:
    now = services.clock()
    reason = failed.reason[:LAST_ERROR_LENGTH]  # what the column holds: a longer one would fail the update on PostgreSQL
    retry_at = now + backoff(attempt)
    horizon = matters_until(conn, message_id, kind)
    # A permanent failure (a refused webhook address) dies at once: no later attempt can succeed.
    if not failed.permanent and (attempt < max_attempts or (
            horizon is not None and retry_at < horizon and attempt < attempt_limit(kind, max_attempts))):
        values: dict = {"status": PENDING, "due_at": retry_at, "last_error": reason}
        outcome = RETRYING
    else:
        values = {"status": DEAD, "last_error": reason}
        outcome = DEAD
    changed = conn.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == SENDING, OutboxMessage.attempts == attempt)
        .values(**values)
    ).rowcount
    if changed and outcome == DEAD and horizon is not None:
        _tell_coordinators(conn, services, message_id, kind, now)
    conn.commit()
    log.warning("message %s (%s) attempt %d failed (%s): %s", message_id, kind, attempt, reason, outcome)
    return outcome


def _tell_coordinators(conn: Connection, services: Services, message_id: uuid.UUID, kind: str, now: datetime) -> None:
    """Queue, in the caller's transaction, the coordinators' alert that a person was never reached."""
    from service.followups.messages import as_html, as_text, undelivered
    from service.incidents.models import Incident, Personnel
    from service.outbox.service import email_payload, queue_messages

    with services.session_factory(bind=conn) as db:
        message = db.get(OutboxMessage, message_id)
        incident = db.get(Incident, message.incident_id) if message and message.incident_id else None
        person = db.get(Personnel, message.personnel_id) if message and message.personnel_id else None
        coordinators = incident.agency.coordinator_email if incident is not None else None
        if person is None or not coordinators:
            log.warning("message %s (%s) dead and no coordinator to tell", message_id, kind)
            return
        letter = undelivered(what="escalation" if kind.startswith("escalation") else "invitation", name=person.name,
                             email=person.email, phone=person.phone, external_id=incident.external_id)
        queue_messages(db, [dict(
            dedup_key=f"undelivered:{message_id}", kind="delivery_failed", channel=EMAIL, recipient=coordinators,
            payload=email_payload(subject=letter.subject, text=as_text(letter), html=as_html(letter)), due_at=now,
            incident_id=incident.id, agency_id=incident.agency_id, personnel_id=person.id,
        )], now=now)
        db.flush()
