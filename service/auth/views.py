"""API keys, for admins: issue, list, revoke."""

from flask.views import MethodView

from service.api import Blueprint
from service.auth import service
from service.auth.schemas import KeyCreate, KeyIssuedRead, KeyPage
from service.fields import PageArgs
from service.web import db_session, now

blp = Blueprint("keys", __name__, url_prefix="/v1/keys", description="API keys: issued, listed and revoked by admins.")


@blp.route("")
class Keys(MethodView):
    """Every API key."""

    @blp.arguments(KeyCreate)
    @blp.response(201, KeyIssuedRead)
    @blp.alt_response(404, response="NOT_FOUND", description="No such agency or facilitator")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Issue a key; its secret is shown in this answer only."""
        return service.issue_key(db=db_session(), role=data["role"], agency_code=data.get("agency"),
                                 facilitator_id=data.get("facilitator_id"), expires_in_days=data.get("expires_in_days"),
                                 now=now()), 201

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, KeyPage)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """Keys newest first, with role, agency, creation, expiry, last use and revocation."""
        items, next_cursor = service.list_page(db=db_session(), limit=args["limit"], cursor=args.get("cursor"))
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/<int(max=2147483647):key_id>")
class KeyById(MethodView):
    """One API key."""

    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, key_id):
        """Revoke a key: its next request is a 401 (revoking it again changes nothing)."""
        service.revoke(db=db_session(), key_id=key_id, now=now())
