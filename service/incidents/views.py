"""Incident endpoints."""

import re
import threading
from datetime import timedelta

from flask import url_for
from flask.views import MethodView

from service.api import Blueprint

from service.incidents import service
from service.incidents import status as incident_status
from service.incidents.schemas import (
    IncidentCreate, IncidentListArgs, IncidentPage, IncidentPatch, IncidentRead, IncidentStatusRead,
    IntakeHeaders,
)
from service.web import admitted, caller, db_session, now, principal, services

MAX_WAIT_SECONDS = 30
# Requests of one process that may wait for a plan at once: half of the threads gunicorn gives each
# process (service.cli), so that the others keep answering; a request that may not wait is answered
# at once, without Preference-Applied.
_WAITERS = threading.BoundedSemaphore(4)
_WAIT = re.compile(r'\s*wait\s*=\s*"?(\d{1,9})"?\s*(?:;.*)?', re.IGNORECASE)
ANSWER_HEADERS = {
    "Location": {"description": "The incident's URL", "schema": {"type": "string"}},
    "Preference-Applied": {"description": "`wait=N` when the answer waited for the plan (RFC 7240)",
                           "schema": {"type": "string"}},
}
RECEIVED_EXAMPLE = {
    "id": "0b7c4f0e-3f7a-4c8e-9d7e-2f1a4b6c8d90", "external_id": "CAD-2026-0001", "agency_code": "north",
    "type": "officer_involved_shooting", "severity": 4, "occurred_at": "2026-12-07T08:15:00-05:00", "region": "north",
    "status": "received", "window": {"opens_at": "2026-12-08T08:15:00-05:00", "closes_at": "2026-12-10T08:15:00-05:00"},
    "personnel_count": 2, "created_at": "2026-12-07T10:15:03-05:00", "updated_at": "2026-12-07T10:15:03-05:00",
    "sessions": [], "problems": [],
}


def preferred_wait(prefer: str | None) -> int | None:
    """The seconds of a `Prefer: wait=N` (RFC 7240), at most 30; None when the client prefers no wait."""
    for preference in (prefer or "").split(","):
        match = _WAIT.fullmatch(preference)
        if match:
            return min(int(match.group(1)), MAX_WAIT_SECONDS)
    return None


blp = Blueprint("incidents", __name__, url_prefix="/v1/incidents", description="Critical incidents reported by dispatch.")


@blp.route("")
class Incidents(MethodView):
    """The incidents of the caller's agency."""

    @blp.arguments(IncidentCreate)
    @blp.arguments(IntakeHeaders, location="headers")
    @blp.response(201, IncidentRead, headers=ANSWER_HEADERS, example=RECEIVED_EXAMPLE,
                  description="The incident was recorded (`received`); the planner plans it within seconds")
    @blp.alt_response(200, schema=IncidentRead, headers=ANSWER_HEADERS,
                      description="The same report was already recorded: the incident as it now stands")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, headers):
        """Report an incident (idempotent on external_id and Idempotency-Key); `Prefer: wait=N` waits for its plan."""
        db = db_session()
        incident, created, reporter = service.report(
            db=db, caller=caller(), data=data, idempotency_key=headers.get("idempotency_key"), now=now(),
            clock_skew=timedelta(seconds=services().config.clock_skew_seconds),
        )
        admitted(reporter)
        answer_headers = {"Location": url_for("incidents.IncidentById", incident_id=incident.id)}
        wait = preferred_wait(headers.get("prefer"))
        if wait is not None and _WAITERS.acquire(blocking=False):
            # Bounded: waiting requests hold a gunicorn thread each, and must leave some for the others.
            try:
                if incident.status == "received":
                    incident = service.await_plan(db=db, agency_id=reporter.agency_id, incident_id=incident.id, seconds=wait)
            finally:
                _WAITERS.release()
            answer_headers["Preference-Applied"] = f"wait={wait}"
        return incident, 201 if created else 200, answer_headers

    @blp.arguments(IncidentListArgs, location="query")
    @blp.response(200, IncidentPage)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """List incidents, newest first (at risk: the window closing first); a supervisor gets their status only."""
        items, next_cursor = service.list_page(
            db=db_session(), agency_id=principal().agency_id, status=args.get("status"),
            limit=args["limit"], cursor=args.get("cursor"), at_risk=args.get("at_risk", False), now=now(),
            role=principal().role,
        )
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/<uuid:incident_id>")
class IncidentById(MethodView):
    """One incident."""

    @blp.response(200, IncidentRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, incident_id):
        """Read an incident."""
        return service.get(db=db_session(), agency_id=principal().agency_id, incident_id=incident_id)

    @blp.arguments(IncidentPatch)
    @blp.response(200, IncidentRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def patch(self, changes, incident_id):
        """Add personnel, change severity, or cancel the incident."""
        return service.update(
            db=db_session(), agency_id=principal().agency_id, incident_id=incident_id, changes=changes, now=now(),
        )


@blp.route("/<uuid:incident_id>/replan")
class IncidentReplan(MethodView):
    """A coordinator's re-plan."""

    @blp.response(200, IncidentRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, incident_id):
        """Plan every group that has no scheduled or held session, including those cancelled by a coordinator."""
        return service.replan(db=db_session(), agency_id=principal().agency_id, incident_id=incident_id, now=now())


@blp.route("/<uuid:incident_id>/status")
class IncidentStatus(MethodView):
    """The plan's state for supervisors."""

    @blp.response(200, IncidentStatusRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, incident_id):
        """Sessions, offers and check-ins of an incident, as counts (small ones masked)."""
        return incident_status.status_of(db_session(), agency_id=principal().agency_id, incident_id=incident_id, now=now())
