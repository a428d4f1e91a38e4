"""Incident endpoints."""

from datetime import timedelta

from flask.views import MethodView
from service.api import Blueprint

from service.incidents import service
from service.incidents import status as incident_status
from service.incidents.schemas import (
    IdempotencyHeaders, IncidentCreate, IncidentListArgs, IncidentPage, IncidentPatch, IncidentRead, IncidentStatusRead,
)
from service.web import db_session, now, principal, services

blp = Blueprint("incidents", __name__, url_prefix="/v1/incidents", description="Critical incidents reported by dispatch.")


@blp.route("")
class Incidents(MethodView):
    """The incidents of the caller's agency."""

    @blp.arguments(IncidentCreate)
    @blp.arguments(IdempotencyHeaders, location="headers")
    @blp.response(201, IncidentRead, description="The incident was recorded")
    @blp.alt_response(200, schema=IncidentRead, description="The same report was already recorded: the same incident")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, headers):
        """Report an incident (idempotent on external_id and Idempotency-Key)."""
        incident, created = service.report(
            db=db_session(), agency_id=principal().agency_id, data=data,
            idempotency_key=headers.get("idempotency_key"), now=now(),
            clock_skew=timedelta(seconds=services().config.clock_skew_seconds),
        )
        return incident, 201 if created else 200

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
