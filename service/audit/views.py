"""The audit log, for admins."""

from flask.views import MethodView

from service.api import Blueprint
from service.audit import service
from service.audit.schemas import AuditListArgs, AuditPage
from service.web import db_session

blp = Blueprint("audit", __name__, url_prefix="/v1/audit", description="Who read participant-level data, and when.")


@blp.route("")
class AuditLog(MethodView):
    """The append-only audit log."""

    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, AuditPage)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """Reads of participant-level data, newest first."""
        items, next_cursor = service.page(db_session(), limit=args["limit"], cursor=args.get("cursor"),
                                          incident_id=args.get("incident_id"))
        return {"items": items, "next_cursor": next_cursor}
