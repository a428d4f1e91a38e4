"""Facilitator roster endpoints."""

from flask.views import MethodView

from service.api import Blueprint
from service.calendars.schemas import CalendarTokenRead
from service.facilitators import service
from service.facilitators.schemas import (
    AvailabilitySchema, FacilitatorCreate, FacilitatorCreated, FacilitatorListArgs, FacilitatorPage, FacilitatorPatch,
    FacilitatorRead,
)
from service.web import db_session, now, principal, services

blp = Blueprint("facilitators", __name__, url_prefix="/v1/facilitators", description="The roster of peers and clinicians.")


@blp.route("")
class Facilitators(MethodView):
    """The roster."""

    @blp.arguments(FacilitatorCreate)
    @blp.response(201, FacilitatorCreated)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Add a facilitator; the answer carries their calendar feed URL, shown this once."""
        return service.create(db=db_session(), caller=principal(), data=data, base_url=services().config.public_base_url)

    @blp.arguments(FacilitatorListArgs, location="query")
    @blp.response(200, FacilitatorPage)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """List the roster the caller manages."""
        items, next_cursor = service.list_page(db=db_session(), caller=principal(), limit=args["limit"], cursor=args.get("cursor"))
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/<int(max=2147483647):facilitator_id>")
class FacilitatorById(MethodView):
    """One facilitator."""

    @blp.response(200, FacilitatorRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, facilitator_id):
        """Read a facilitator."""
        return service.get(db=db_session(), caller=principal(), facilitator_id=facilitator_id)

    @blp.arguments(FacilitatorPatch)
    @blp.response(200, FacilitatorRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def patch(self, changes, facilitator_id):
        """Change a facilitator; sessions they can no longer take are re-staffed."""
        return service.update(db=db_session(), caller=principal(), facilitator_id=facilitator_id, changes=changes, now=now())


@blp.route("/<int(max=2147483647):facilitator_id>/availability")
class FacilitatorAvailability(MethodView):
    """A facilitator's availability."""

    @blp.arguments(AvailabilitySchema)
    @blp.response(200, FacilitatorRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def put(self, availability, facilitator_id):
        """Replace weekly windows and exceptions; sessions that no longer fit are re-staffed."""
        return service.set_availability(db=db_session(), caller=principal(), facilitator_id=facilitator_id, availability=availability, now=now())


@blp.route("/<int(max=2147483647):facilitator_id>/calendar-token")
class FacilitatorCalendarToken(MethodView):
    """A facilitator's calendar feed token."""

    @blp.response(200, CalendarTokenRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, facilitator_id):
        """Rotate the feed token: the answer carries the new feed URL (shown this once); the old URL answers 404."""
        return service.rotate_calendar_token(
            db=db_session(), caller=principal(), facilitator_id=facilitator_id, base_url=services().config.public_base_url,
        )
