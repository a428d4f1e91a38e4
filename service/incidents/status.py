"""What a supervisor may know of an incident: the plan's state and counts, never people.

Counts of offers and check-ins are about people. Each set of counts splits every offer (or
check-in) of the incident into states, so it sums to a total a supervisor can know (the number
of people involved): a count that would single out one or two people is masked, and so are
enough others that no masked count can be worked out from the total and the counts shown
(complementary suppression; see `mask_counts`). Every masked cell reads the same ("masked"),
whatever it hides: a cell marked apart, or "<3" on a cell masked only to protect another, would
give the hidden values away. Screening outcomes and escalations are clinical and are not
counted here at all.
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
from service.followups.models import ACCEPTED, ANSWERED, CANCELLED, CHECKIN, DECLINED, OFFER, OPEN, SCREENING, Followup
from service.incidents.models import Incident
from service.outbox.models import SENT, OutboxMessage
from service.sessions import service as sessions
from service.sessions.models import Assignment, Session

SMALL = 3  # the fewest people a count may single out
MASK = "masked"
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


def mask_counts(counts: dict[str, int]) -> dict[str, Count]:
    """One set of counts that sums to a known total, with every cell that could single out people masked.

    A count of 1 or 2 is masked, and with it every 0 (an unmasked 0 beside it would narrow it
    down). Then, when the masked cells could still be worked out from the total, more are masked:
    when only one cell is masked (the total minus the others gives it), or when the masked cells
    add up to (nearly) as much as counts under 3 can (all of them would be 2). The cells added are
    the smallest shown, all of them when several are equal, so that which one was picked says
    nothing. tests/integration/test_supervisor_status.py checks every combination of small counts
    against a reader who knows this rule.
    """
    if not any(0 < n < SMALL for n in counts.values()):
        return dict(counts)
    masked = {name for name, n in counts.items() if n < SMALL}
    most = (SMALL - 1) * len(masked)
    if len(masked) == 1 or sum(counts[name] for name in masked) >= most - 1:
        shown = [n for name, n in counts.items() if name not in masked]
        if shown:
            smallest = min(shown)
            masked |= {name for name, n in counts.items() if n == smallest}
    return {name: MASK if name in masked else n for name, n in counts.items()}


def _sessions_as_counts(rows: list[Session], team: dict[Any, int], zone: ZoneInfo) -> list[dict[str, Any]]:
    """The group sessions with their people counted; the sessions of one kind share out the people
    involved (a group each), so each kind's counts are masked as one set."""
    counts: dict[Any, Count] = {}
    for kind in {s.kind for s in rows}:
        counts.update(mask_counts({s.id: s.participant_count for s in rows if s.kind == kind}))
    return [
        {"id": s.id, "kind": s.kind, "starts_at": s.starts_at.astimezone(zone), "ends_at": s.ends_at.astimezone(zone),
         "status": s.status, "participant_count": counts[s.id], "facilitator_count": team.get(s.id, 0)}
        for s in rows
    ]


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
        sessions=_sessions_as_counts(list(session_rows), team, zone),
        **_followup_counts(db, incident.id),
    )


def _followup_counts(db: DbSession, incident_id: uuid.UUID) -> dict[str, dict[str, Count]]:
    """Offers and check-ins by state; each set counts every one ever owed, so its total is fixed."""
    delivered = select(OutboxMessage.followup_id).where(
        OutboxMessage.incident_id == incident_id, OutboxMessage.status == SENT, OutboxMessage.followup_id.is_not(None))
    rows = db.execute(
        select(Followup.kind, Followup.status, Followup.id.in_(delivered), func.count())
        .where(Followup.incident_id == incident_id, Followup.kind.in_((OFFER, CHECKIN, SCREENING)))
        .group_by(Followup.kind, Followup.status, Followup.id.in_(delivered))
    ).all()
    offers = {"scheduled": 0, "sent": 0, "accepted": 0, "declined": 0, "closed": 0}
    checkins = {"scheduled": 0, "sent": 0, "completed": 0, "closed": 0}
    for kind, status, was_delivered, n in rows:
        counts = offers if kind == OFFER else checkins
        if status == OPEN:
            counts["sent" if was_delivered else "scheduled"] += n
        elif status == CANCELLED:
            # Opted out, or the session or incident was cancelled. Counted, or the total people
            # involved minus the counts shown would tell how many opted out.
            counts["closed"] += n
        elif kind == OFFER:
            counts[{ACCEPTED: "accepted", DECLINED: "declined"}.get(status, "closed")] += n
        else:
            counts["completed" if status == ANSWERED else "closed"] += n
    return {"offers": mask_counts(offers), "checkins": mask_counts(checkins)}
