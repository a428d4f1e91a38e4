"""Retention: the personal data of incidents closed long ago is erased, leaving only counts.

An incident is closed when nothing more can happen to it: its last session has ended and the
last link of its follow-ups has expired (or it was cancelled). `RETENTION_DAYS` (90) after
that, its participants' names, emails, phones, agency ids, units and roles, their check-in
answers, and the recipients and bodies of its messages are erased, and the incident's CAD
number is replaced by a keyed hash. Clinical outcomes (screens, requests for contact,
escalations) are kept as counts on the incident only: a person's row no longer says how they
screened, so the unit, role or date of an incident cannot lead back to anyone's result.
Sessions and follow-up statuses stay: the supervisor's counts and the programme's statistics
survive, the people do not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import String, cast, delete, func, literal, select, update
from sqlalchemy.orm import Session as DbSession

from service.db import truncate_wal
from service.followups.models import ANSWERED, SCREENING, Escalation, Followup
from service.incidents.models import IdempotencyRecord, Incident, Personnel
from service.outbox.models import CANCELLED, ERASED_PAYLOAD, PENDING, QUEUED, OutboxMessage
from service.sessions.models import Session

if TYPE_CHECKING:
    from service.app import Services

log = logging.getLogger("service.retention")

ERASED = "(erased)"
ERASED_ROLE = "erased"


def closed_at(db: DbSession, incident: Incident) -> datetime:
    """When nothing more could happen to the incident: its last session end or link expiry."""
    last_session = db.scalar(select(func.max(Session.ends_at)).where(Session.incident_id == incident.id))
    last_link = db.scalar(select(func.max(Followup.expires_at)).where(Followup.incident_id == incident.id))
    return max(moment for moment in (incident.occurred_at, incident.updated_at, last_session, last_link) if moment is not None)


def keyed_hash(key: str, external_id: str) -> str:
    """What stands for an erased incident's CAD number: equal numbers still match, none can be read back."""
    return "erased-" + hmac.new(key.encode(), external_id.encode(), hashlib.sha256).hexdigest()[:57]


def outcome_counts(db: DbSession, incident: Incident) -> dict[str, int]:
    """The incident's clinical outcomes as counts."""
    followups = list(db.scalars(select(Followup).where(Followup.incident_id == incident.id)))
    reasons = list(db.scalars(select(Escalation.reason).where(Escalation.incident_id == incident.id)))
    return {
        "screens_answered": sum(1 for f in followups if f.kind == SCREENING and f.status == ANSWERED),
        "screens_positive": sum(1 for f in followups if f.positive),
        "contact_requested": sum(1 for f in followups if f.contact_requested),
        "escalations": len(reasons),
        **{f"escalations_{reason}": reasons.count(reason) for reason in sorted(set(reasons))},
    }


def erase_incident(db: DbSession, incident: Incident, now: datetime) -> None:
    """Erase the personal data of one incident (the caller commits)."""
    from service.followups.outgoing import context

    incident.retained_outcomes = outcome_counts(db, incident)
    db.execute(update(Personnel).where(Personnel.incident_id == incident.id).values(
        name=ERASED, email="", phone=None, unit=None, role=ERASED_ROLE,
        external_id=literal("erased-", String) + cast(Personnel.id, String)))
    db.execute(update(Followup).where(Followup.incident_id == incident.id).values(
        answers=None, positive=None, contact_requested=False))
    db.execute(delete(Escalation).where(Escalation.incident_id == incident.id))
    # An Idempotency-Key is the client's own text, which may name the report.
    db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.incident_id == incident.id))
    incident.external_id = keyed_hash(context(db).keys[0], incident.external_id)
    # Nothing is owed any more (see closed_at); what still says so would go to an erased address.
    db.execute(update(OutboxMessage).where(OutboxMessage.incident_id == incident.id,
                                           OutboxMessage.status.in_((PENDING, QUEUED))).values(status=CANCELLED))
    db.execute(update(OutboxMessage).where(OutboxMessage.incident_id == incident.id).values(recipient="", payload=ERASED_PAYLOAD))
    incident.erased_at = now


def erase_due(services: Services, *, retention: timedelta | None = None) -> list[uuid.UUID]:
    """Erase every incident closed more than the retention period ago; returns their ids."""
    now = services.clock()
    keep = retention if retention is not None else timedelta(days=services.config.retention_days)
    erased: list[uuid.UUID] = []
    with services.session_factory() as db:
        # Closing comes after occurring: only incidents that occurred before the cutoff can be due.
        candidates = list(db.scalars(
            select(Incident).where(Incident.erased_at.is_(None), Incident.occurred_at < now - keep)
            .order_by(Incident.occurred_at)
        ))
        for incident in candidates:
            if closed_at(db, incident) < now - keep:
                erase_incident(db, incident, now)
                erased.append(incident.id)
        db.commit()
    # What was erased (this pass's incidents, and the bodies of messages sent since the last pass)
    # leaves SQLite's write-ahead log too.
    truncate_wal(services.engine)
    if erased:
        log.info("retention: erased the personal data of %d incidents", len(erased))
    return erased
