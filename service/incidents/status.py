"""What a supervisor may know of an incident: the plan's state and counts, never people.

Counts of offers and check-ins are about people, so a count that would single out one or two
of them is shown as "<3"; zeros next to such a count are masked too, or the masked count could
be worked out from the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from service.errors import NotFound
from service.followups.models import ACCEPTED, ANSWERED, CANCELLED, CHECKIN, DECLINED, OFFER, OPEN, SCREENING, Escalation, Followup
from service.incidents.models import Incident
from service.outbox.models import SENT, OutboxMessage
from service.sessions import service as sessions
from service.sessions.models import Assignment, Session

SMALL = 3  # the fewest people a count may single out
MASK = "<3"
AT_RISK_BEFORE_CLOSE = timedelta(hours=12)

Count = int | str


@dataclass(frozen=True, slots=True)
class IncidentStatus:
    """The supervisor's view of one incident."""

    id: uuid.UUID
    status: str
    window: dict[str, datetime]
    at_risk: bool
    sessions: list[dict[str, Any]]
    offers: dict[str, Count]
    checkins: dict[str, Count]


def mask_small(counts: dict[str, int]) -> dict[str, Count]:
    """Counts of people with 1 or 2 shown as "<3" (and zeros beside them, which would give them away)."""
    if not any(0 < n < SMALL for n in counts.values()):
        return dict(counts)
    return {name: MASK if n < SMALL else n for name, n in counts.items()}


def is_at_risk(incident: Incident, closes_at: datetime, now: datetime) -> bool:
    """needs_attention, or not planned yet with its window closing within 12 hours."""
    if incident.status == "needs_attention":
        return True
    return incident.status == "received" and closes_at - now <= AT_RISK_BEFORE_CLOSE


def status_of(db: DbSession, *, agency_id: int | None, incident_id: uuid.UUID, now: datetime) -> IncidentStatus:
    """The plan's state of an incident of the caller's agency, as counts."""
    from service.incidents.service import debriefing_window  # the incident service builds on this module's peers

    incident = db.scalar(select(Incident).where(Incident.id == incident_id, Incident.agency_id == agency_id))
    if incident is None:
        raise NotFound(f"No incident {incident_id}.")
    zone = ZoneInfo(incident.agency.timezone)
    window = debriefing_window(incident.occurred_at, sessions.policy_for(incident.agency))
    team = dict(db.execute(
        select(Assignment.session_id, func.count()).join(Session, Session.id == Assignment.session_id)
        .where(Session.incident_id == incident.id, Assignment.active).group_by(Assignment.session_id)
    ).all())
    session_rows = db.scalars(
        select(Session).where(Session.incident_id == incident.id, Session.kind.in_(sessions.GROUP_KINDS))
        .order_by(Session.starts_at, Session.kind, Session.group_key)
    )
    return IncidentStatus(
        id=incident.id, status=incident.status,
        window={"opens_at": window.opens_at.astimezone(zone), "closes_at": window.closes_at.astimezone(zone)},
        at_risk=is_at_risk(incident, window.closes_at, now),
        sessions=[
            {"id": s.id, "kind": s.kind, "starts_at": s.starts_at.astimezone(zone), "ends_at": s.ends_at.astimezone(zone),
             "status": s.status, "participant_count": s.participant_count, "facilitator_count": team.get(s.id, 0)}
            for s in session_rows
        ],
        **_followup_counts(db, incident.id),
    )


def _followup_counts(db: DbSession, incident_id: uuid.UUID) -> dict[str, dict[str, Count]]:
    delivered = select(OutboxMessage.followup_id).where(
        OutboxMessage.incident_id == incident_id, OutboxMessage.status == SENT, OutboxMessage.followup_id.is_not(None))
    rows = db.execute(
        select(Followup.kind, Followup.status, Followup.id.in_(delivered), func.count())
        .where(Followup.incident_id == incident_id, Followup.kind.in_((OFFER, CHECKIN, SCREENING)), Followup.status != CANCELLED)
        .group_by(Followup.kind, Followup.status, Followup.id.in_(delivered))
    ).all()
    offers = {"sent": 0, "accepted": 0, "declined": 0, "pending": 0}
    checkins = {"scheduled": 0, "sent": 0, "completed": 0, "escalated": 0}
    for kind, status, was_delivered, n in rows:
        if kind == OFFER:
            offers["sent"] += n if was_delivered or status != OPEN else 0
            offers[{ACCEPTED: "accepted", DECLINED: "declined"}.get(status, "pending")] += n
        elif status == ANSWERED:
            checkins["completed"] += n
        else:
            checkins["sent" if was_delivered else "scheduled"] += n
    checkins["escalated"] = db.scalar(select(func.count()).select_from(Escalation).where(Escalation.incident_id == incident_id)) or 0
    return {"offers": mask_small(offers), "checkins": mask_small(checkins)}
