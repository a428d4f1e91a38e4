"""The coordinators' board and incident pages (registered on `service.incidents.pages.blp`).

Every action calls the service the API calls: re-plan (`POST /v1/incidents/{id}/replan`), add
personnel (`PATCH /v1/incidents/{id}`), reschedule, cancel and complete a session
(`/v1/sessions/{id}/...`), the participants' follow-ups (`GET /v1/incidents/{id}/followups`, audited).
Another agency's incident or session is a 404 page, as one that does not exist.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from werkzeug.wrappers import Response

from service.accounts.service import Person
from service.agencies.models import Agency
from service.auth.service import Principal
from service.console import form_page, save_form, signed_in
from service.errors import Conflict, InvalidInput, NotFound
from service.facilitators.models import Facilitator
from service.followups.service import followups_page
from service.i18n import N_
from service.incidents import service as incidents
from service.incidents import status as incident_status
from service.incidents.forms import PERSON_EXPOSURES, PERSON_LANGUAGES, PERSON_ROLES, PersonnelForm, RescheduleForm
from service.incidents.pages import (
    PAGE_SIZE, SESSION_KINDS, SESSION_STATUSES, STATUSES, TYPES, blp, coordinator_incident_url,
)
from service.sessions import service as sessions
from service.ui import render
from service.web import db_session, now

# Seconds between two refreshes of the board (a meta refresh: no script).
REFRESH_SECONDS = 60
FOLLOWUPS_PAGE = 50

# A planning problem's reason, in words, with what would fix it (one line each).
FIXES = {
    "window_closed": N_("No session time is left in the window (sessions start between 08:00 and 20:00, with an "
                        "hour’s notice): arrange support for these people directly."),
    "language_not_covered": N_("No facilitator speaks the group’s language: add one to the roster."),
    "region_not_covered": N_("No facilitator serves the region: add the region to a facilitator, or let one lead "
                             "sessions by video (roster)."),
    "all_candidates_conflicted": N_("Every candidate has a conflict of interest (same unit or involved): add a "
                                    "facilitator from another unit."),
    "no_clinician_available": N_("No clinician is free in the window: add one to the roster, or let one lead "
                                 "sessions by video (roster)."),
    "not_enough_peers": N_("Not enough peer supporters are free in the window: add peers to the roster or free "
                           "some of their time."),
    "no_common_slot": N_("The team has no common free time in the window: widen their availability or remove "
                         "time off, then re-plan."),
    "no_replacement": N_("A facilitator withdrew and no replacement was found: add one to the roster, then "
                         "re-plan."),
    "cancelled_by_coordinator": N_("A coordinator cancelled the session: re-plan to schedule it again."),
    "planning_contention": N_("Planning was interrupted by changes made at the same time: re-plan."),
    "planning_failed": N_("The planner could not plan this report: re-plan, and tell the service's administrators."),
}
FOLLOWUP_KINDS = {
    "invitation": N_("Invitation to the group session"), "offer": N_("Offer of an individual session"),
    "checkin": N_("Check-in two days after"), "screening": N_("Check-in 30 days after"),
}
FOLLOWUP_STATUSES = {
    "open": N_("No answer yet"), "accepted": N_("Said yes"), "declined": N_("Said no"), "answered": N_("Replied"),
    "cancelled": N_("Withdrawn"),
}
OFFER_CHOICES = {"peer": N_("with a peer supporter"), "clinician": N_("with a clinician")}
FACILITATOR_KINDS = {"clinician": N_("Clinician"), "peer": N_("Peer supporter")}


def caller(who: Person) -> Principal:
    """The signed-in coordinator as the services' caller: their agency, the coordinator's role."""
    return Principal(key_id=None, role="coordinator", agency_id=who.agency_id, facilitator_id=None)


def time_left(closes_at: datetime, moment: datetime) -> str:
    """How long the debriefing window stays open, in words ("closes in 5 h", "closed")."""
    left = closes_at - moment
    if left.total_seconds() <= 0:
        return _("Window closed")
    if left.total_seconds() < 3600:
        return _("Closes in less than an hour")
    hours = math.floor(left.total_seconds() / 3600)
    return ngettext("Closes in %(num)d h", "Closes in %(num)d h", hours)


def group_name(key: str | None) -> str:
    """A group's key ("direct-command-fr-2") in words: "Directly involved, Command staff, Français, group 2"."""
    if not key:
        return ""
    parts = key.split("-")
    if parts[0] not in PERSON_EXPOSURES:
        return key
    words = [str(PERSON_EXPOSURES[parts[0]])]
    if "command" in parts:
        words.append(str(PERSON_ROLES["command"]))
    words += [PERSON_LANGUAGES[p] for p in parts if p in PERSON_LANGUAGES]
    if parts[-1].isdigit():
        words.append(_("group %(num)d", num=int(parts[-1])))
    return ", ".join(words)


def problem_lines(problems: list[dict]) -> list[dict]:
    """Each problem: which session, and one line per reason (words, or the code when unknown)."""
    return [
        {"kind": p["kind"], "group": p["group"],
         "fixes": [_(FIXES[r]) if r in FIXES else r for r in p["reasons"]]}
        for p in problems
    ]


def board() -> Response:
    """A coordinator's incidents: those at risk first (the window closing soonest), then the others, newest first."""
    who, moment, db = signed_in(), now(), db_session()
    only_at_risk = request.args.get("at_risk") == "1"
    # Refreshing by itself is the coordinator's choice: a page that reloads unasked fails WCAG 2.2.1
    # (and axe-core) unless the person can turn it off; here they turn it on, and off again.
    auto = request.args.get("refresh") == "1"
    cursor = request.args.get("cursor") or None
    risky: list[incidents.IncidentView] = []
    if cursor is None:
        risky, _more = incidents.list_page(db=db, agency_id=who.agency_id, status=None, limit=100, cursor=None,
                                           at_risk=True, now=moment, role=who.role)
    others: list[incidents.IncidentView] = []
    next_cursor = None
    if not only_at_risk:
        page, next_cursor = incidents.list_page(db=db, agency_id=who.agency_id, status=None, limit=PAGE_SIZE,
                                                cursor=cursor, now=moment, role=who.role)
        shown = {i.id for i in risky}
        others = [i for i in page if i.id not in shown and not _at_risk(i, moment)]
    return render("incidents/board.html", at_risk_incidents=risky, others=others, at_risk=only_at_risk,
                  risky={i.id for i in risky}, next_cursor=next_cursor, types=TYPES, statuses=STATUSES,
                  session_kinds=SESSION_KINDS, link=coordinator_incident_url, time_left=time_left,
                  problem_lines=problem_lines, group_name=group_name, updated_at=moment, refresh=REFRESH_SECONDS, auto=auto,
                  zone=db.get(Agency, who.agency_id).timezone)  # type: ignore[union-attr]


def _at_risk(incident: incidents.IncidentView, moment: datetime) -> bool:
    return incident_status.is_at_risk(incident, incident.window.closes_at, moment)  # type: ignore[arg-type]


def _incident(incident_id: uuid.UUID) -> incidents.IncidentView:
    return incidents.get(db=db_session(), agency_id=signed_in().agency_id, incident_id=incident_id)


def _session_of(incident: incidents.IncidentView, session_id: uuid.UUID) -> sessions.SessionView:
    """A group session of the incident (another incident's, or an individual session: 404)."""
    for session in incident.sessions:
        if session.id == session_id:
            return session
    raise NotFound(f"No session {session_id}.")


def _team_names(incident: incidents.IncidentView) -> dict[int, str]:
    ids = {f["id"] for s in incident.sessions for f in s.facilitators}
    if not ids:
        return {}
    return dict(db_session().execute(select(Facilitator.id, Facilitator.name).where(Facilitator.id.in_(ids))).all())


def _back(incident_id: uuid.UUID) -> Response:
    return redirect(url_for("incident_pages.show", incident_id=incident_id), 303)


def _page_context(incident: incidents.IncidentView) -> dict:
    return {"incident": incident, "types": TYPES, "statuses": STATUSES, "session_kinds": SESSION_KINDS,
            "session_statuses": SESSION_STATUSES, "facilitator_kinds": FACILITATOR_KINDS,
            "zone": incident.window.closes_at.tzinfo.key, "group_name": group_name}  # type: ignore[union-attr]


@blp.get("/<uuid:incident_id>")
def show(incident_id: uuid.UUID) -> Response:
    """One incident: its facts, problems in words, group sessions with their team and agenda, and the actions."""
    incident, moment = _incident(incident_id), now()
    risky = {incident.id} if _at_risk(incident, moment) else set()
    return render("incidents/incident.html", **_page_context(incident), risky=risky, now=moment,
                  names=_team_names(incident), time_left=time_left, problems=problem_lines(incident.problems))


@blp.post("/<uuid:incident_id>/replan")
def replan(incident_id: uuid.UUID) -> Response:
    """Plan every group without a scheduled or held session (as POST /v1/incidents/{id}/replan)."""
    try:
        shown = incidents.replan(db=db_session(), agency_id=signed_in().agency_id, incident_id=incident_id, now=now())
    except Conflict:
        flash(_("This incident is cancelled: it cannot be planned again."), "error")
        return _back(incident_id)
    if shown.status == "planned":
        flash(_("Re-planned: every group has its session."))
    else:
        flash(_("Re-planned, but some sessions still could not be planned: see the problems below."), "error")
    return _back(incident_id)


@blp.route("/<uuid:incident_id>/sessions/<uuid:session_id>/reschedule", methods=["GET", "POST"])
def reschedule(incident_id: uuid.UUID, session_id: uuid.UUID) -> Response:
    """Move a session: a choice among the starts the planning rules allow for its whole team."""
    incident = _incident(incident_id)
    session = _session_of(incident, session_id)
    who = signed_in()
    starts = sessions.reschedule_starts(db_session(), caller=caller(who), session_id=session_id, now=now())
    form = RescheduleForm()
    form.set_choices(starts)

    def move() -> sessions.SessionView:
        try:
            return sessions.reschedule(db_session(), caller=caller(who), session_id=session_id,
                                       starts_at=form.chosen(), now=now())
        except InvalidInput as exc:
            raise Conflict(str(exc)) from exc

    moved = save_form(form, move, conflict=(form.starts_at, _("That time can no longer be offered. Choose one of the times.")))
    if moved is None:
        return form_page("incidents/reschedule.html", form, starts=starts, session=session, **_page_context(incident))
    flash(_("The session was moved. The team and the participants are told."))
    return _back(incident_id)


@blp.route("/<uuid:incident_id>/sessions/<uuid:session_id>/cancel", methods=["GET", "POST"])
def cancel(incident_id: uuid.UUID, session_id: uuid.UUID) -> Response:
    """Cancel a session after a confirmation page; the incident then needs attention until re-planned."""
    incident = _incident(incident_id)
    session = _session_of(incident, session_id)
    if request.method == "GET":
        return render("incidents/cancel.html", session=session, names=_team_names(incident), **_page_context(incident))
    try:
        sessions.cancel(db_session(), caller=caller(signed_in()), session_id=session_id, now=now())
    except Conflict:
        flash(_("This session can no longer be cancelled: it has started, or is already cancelled or held."), "error")
        return _back(incident_id)
    flash(_("The session was cancelled. The team and the participants are told."))
    return _back(incident_id)


@blp.post("/<uuid:incident_id>/sessions/<uuid:session_id>/complete")
def complete(incident_id: uuid.UUID, session_id: uuid.UUID) -> Response:
    """Mark a session that has started as held."""
    _session_of(_incident(incident_id), session_id)
    try:
        sessions.complete(db_session(), caller=caller(signed_in()), session_id=session_id, now=now())
    except Conflict:
        flash(_("Only a scheduled session that has started can be marked as held."), "error")
        return _back(incident_id)
    flash(_("The session is marked as held."))
    return _back(incident_id)


@blp.route("/<uuid:incident_id>/personnel", methods=["GET", "POST"])
def add_personnel(incident_id: uuid.UUID) -> Response:
    """Add a person to the incident (as PATCH /v1/incidents/{id} with add_personnel); the plan follows."""
    incident = _incident(incident_id)
    form = PersonnelForm()
    form.set_choices()

    def add() -> incidents.IncidentView:
        try:
            return incidents.update(db=db_session(), agency_id=signed_in().agency_id, incident_id=incident_id,
                                    changes={"add_personnel": [form.person()]}, now=now())
        except InvalidInput as exc:
            raise Conflict(str(exc)) from exc

    message = _("This person is already listed on the incident, or the incident can no longer change.")
    if incident.status == "cancelled":
        message = _("The incident is cancelled: it can no longer change.")
    added = save_form(form, add, conflict=(form.external_id, message))
    if added is None:
        return form_page("incidents/personnel.html", form, **_page_context(incident))
    flash(_("%(name)s was added. They will be invited with their group.", name=form.name.data))
    return _back(incident_id)


@blp.get("/<uuid:incident_id>/followups")
def followups(incident_id: uuid.UUID) -> Response:
    """Each participant's follow-ups, in words; every view is written to the audit log."""
    incident = _incident(incident_id)
    people, next_cursor = followups_page(db_session(), caller=caller(signed_in()), incident_id=incident_id,
                                         limit=FOLLOWUPS_PAGE, cursor=request.args.get("cursor") or None, now=now())
    return render("incidents/followups.html", people=people, next_cursor=next_cursor, kinds=FOLLOWUP_KINDS,
                  followup_statuses=FOLLOWUP_STATUSES, choices=OFFER_CHOICES, languages=PERSON_LANGUAGES,
                  roles=PERSON_ROLES, exposures=PERSON_EXPOSURES, **_page_context(incident))
