"""Incidents in the console: the coordinators' board and incident pages; supervisors' counts.

A supervisor's pages show what `GET /v1/incidents/{id}/status` shows, from the same function
(`service.incidents.status.status_of`): no person's name, no count that could single one out,
nothing clinical. Coordinators get a board (at risk first, planning problems in words with what
would fix them) and a page per incident whose actions call the same services as the API:
re-plan, reschedule, cancel and complete a session, add personnel, and the participants'
follow-ups (every view audited).
"""

from __future__ import annotations

import uuid

from flask import request, url_for
from werkzeug.wrappers import Response

from service.accounts.models import COORDINATOR, SUPERVISOR
from service.console import console_blueprint, signed_in
from service.i18n import N_
from service.incidents import service as incidents
from service.incidents import status as incident_status
from service.ui import render
from service.web import db_session, now

blp = console_blueprint("incident_pages", __name__, url_prefix="/incidents")
PAGE_SIZE = 50

TYPES = {
    "officer_involved_shooting": N_("Officer-involved shooting"), "line_of_duty_death": N_("Line-of-duty death"),
    "member_serious_injury": N_("Serious injury of a member"), "member_suicide": N_("Suicide of a member"),
    "child_death": N_("Death of a child"), "mass_casualty": N_("Mass-casualty event"),
    "hostage_barricade": N_("Hostage taking or barricade"), "violent_assault": N_("Violent assault"),
    "prolonged_rescue": N_("Prolonged rescue"), "other": N_("Other critical incident"),
}
STATUSES = {
    "received": N_("Being planned"), "planned": N_("Planned"), "needs_attention": N_("Needs attention"),
    "cancelled": N_("Cancelled"),
}
SESSION_KINDS = {"debriefing": N_("Group debriefing (CISD)"), "defusing": N_("Defusing"), "individual": N_("Individual session")}
SESSION_STATUSES = {"scheduled": N_("Scheduled"), "cancelled": N_("Cancelled"), "completed": N_("Held")}
OFFER_COUNTS = {
    "scheduled": N_("Not sent yet"), "sent": N_("Sent, no answer yet"), "accepted": N_("Accepted"),
    "declined": N_("Declined"), "closed": N_("Withdrawn without an answer"),
}
CHECKIN_COUNTS = {
    "scheduled": N_("Not sent yet"), "sent": N_("Sent, no answer yet"), "completed": N_("Answered"),
    "closed": N_("Withdrawn without an answer"),
}


def coordinator_incident_url(incident: incidents.IncidentView) -> str | None:
    """The coordinators' page of an incident."""
    return url_for("incident_pages.show", incident_id=incident.id)


@blp.get("")
def index() -> Response:
    """The agency's incidents, newest first (or those at risk, the window closing first), a page at a time."""
    who = signed_in()
    if who.role == COORDINATOR:
        return board.board()
    at_risk = request.args.get("at_risk") == "1"
    cursor = request.args.get("cursor") or None
    items, next_cursor = incidents.list_page(db=db_session(), agency_id=who.agency_id, status=None, limit=PAGE_SIZE,
                                             cursor=cursor, at_risk=at_risk, now=now(), role=who.role)
    template = "incidents/supervisor_list.html" if who.role == SUPERVISOR else "incidents/list.html"
    risky = {i.id for i in items if incident_status.is_at_risk(i, i.window.closes_at, now())}
    return render(template, incidents=items, at_risk=at_risk, risky=risky, next_cursor=next_cursor, types=TYPES,
                  statuses=STATUSES, link=coordinator_incident_url)


@blp.get("/<uuid:incident_id>/status")
def status(incident_id: uuid.UUID) -> Response:
    """One incident's plan as counts, masked as in GET /v1/incidents/{id}/status (another agency's: 404)."""
    shown = incident_status.status_of(db_session(), agency_id=signed_in().agency_id, incident_id=incident_id, now=now())
    incident = incidents.get(db=db_session(), agency_id=signed_in().agency_id, incident_id=incident_id)
    return render("incidents/status.html", plan=shown, incident=incident, types=TYPES, statuses=STATUSES,
                  session_kinds=SESSION_KINDS, session_statuses=SESSION_STATUSES, offer_counts=OFFER_COUNTS,
                  checkin_counts=CHECKIN_COUNTS, masked=incident_status.MASK)


from service.incidents import board  # noqa: E402  (the coordinators' pages register on this blueprint)
