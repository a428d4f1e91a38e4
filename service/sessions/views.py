"""Session endpoints."""

from flask.views import MethodView

from service.api import Blueprint
from service.sessions import service
from service.sessions.schemas import RescheduleArgs, SessionRead
from service.web import db_session, now, principal

blp = Blueprint("sessions", __name__, url_prefix="/v1/sessions", description="Planned sessions and their teams.")


@blp.route("/<uuid:session_id>")
class SessionById(MethodView):
    """One session."""

    @blp.response(200, SessionRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, session_id):
        """Read a session."""
        return service.get(db_session(), caller=principal(), session_id=session_id)


@blp.route("/<uuid:session_id>/cancel")
class SessionCancel(MethodView):
    """Cancel a session."""

    @blp.response(200, SessionRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, session_id):
        """Cancel a scheduled session; its facilitators are released."""
        return service.cancel(db_session(), caller=principal(), session_id=session_id, now=now())


@blp.route("/<uuid:session_id>/reschedule")
class SessionReschedule(MethodView):
    """Move a session."""

    @blp.arguments(RescheduleArgs)
    @blp.response(200, SessionRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, args, session_id):
        """Move a session to a new start, checked by the planning rules."""
        return service.reschedule(db_session(), caller=principal(), session_id=session_id, starts_at=args["starts_at"], now=now())


@blp.route("/<uuid:session_id>/complete")
class SessionComplete(MethodView):
    """Record that a session was held."""

    @blp.response(200, SessionRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, session_id):
        """Mark the session as held."""
        return service.complete(db_session(), caller=principal(), session_id=session_id, now=now())


@blp.route("/<uuid:session_id>/decline")
class SessionDecline(MethodView):
    """A facilitator declines an assignment."""

    @blp.response(200, SessionRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, session_id):
        """Decline the assignment; a replacement is found automatically."""
        return service.decline(db_session(), caller=principal(), session_id=session_id, now=now())
