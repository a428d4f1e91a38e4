"""Participants' response links, and the coordinators' follow-up list."""

from flask.views import MethodView

from service.api import Blueprint
from service.followups import service
from service.followups.schemas import (
    FollowupListArgs, FollowupPage, ResponseCreate, ResponsePreviewArgs, ResponseRead,
)
from service.web import db_session, now, principal

blp = Blueprint("followups", __name__, url_prefix="/v1", description="Invitations, offers and check-ins of participants.")

@blp.route("/responses/<token>")
class Response(MethodView):
    """A participant's link to one invitation, offer or check-in (the signed token is the credential)."""

    @blp.arguments(ResponsePreviewArgs, location="query")
    @blp.response(200, ResponseRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(410, response="GONE")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, _preview, token):
        """See the follow-up and what can be done with it now (never past answers); a GET never changes anything."""
        return service.view(db_session(), token=token, now=now())

    @blp.arguments(ResponseCreate)
    @blp.response(200, ResponseRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(410, response="GONE")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, answer, token):
        """Accept or decline, answer a check-in, or opt out of all contact about this incident.

        The screening can be answered again until it expires: the latest answers stand, but a clinician
        already asked to contact the person stays asked, even after an opt-out (which cancels all else).
        """
        return service.respond(db_session(), token=token, answer=answer, now=now())


@blp.route("/incidents/<uuid:incident_id>/followups")
class IncidentFollowups(MethodView):
    """Participant-level follow-ups of an incident (every read is audited)."""

    @blp.arguments(FollowupListArgs, location="query")
    @blp.response(200, FollowupPage)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args, incident_id):
        """Each participant's invitations, offer and check-ins with due time and status."""
        items, next_cursor = service.followups_page(
            db_session(), caller=principal(), incident_id=incident_id, limit=args["limit"], cursor=args.get("cursor"),
            now=now(),
        )
        return {"items": items, "next_cursor": next_cursor}
