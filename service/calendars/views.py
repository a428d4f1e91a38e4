"""The facilitators' iCalendar feeds: public, the secret in the URL is the credential."""

from flask import Response, request
from flask.views import MethodView

from service.api import Blueprint
from service.calendars import service
from service.web import db_session, now, services

blp = Blueprint(
    "calendars", __name__, url_prefix="/v1/calendars",
    description="Facilitators' iCalendar feeds. No API key: the secret in the URL is the credential.",
)

FEED_HEADERS = {
    "ETag": {"description": "Strong validator of the feed's bytes", "schema": {"type": "string"}},
    "Last-Modified": {"description": "When the data shown last changed", "schema": {"type": "string"}},
    "Cache-Control": {"description": "private, no-cache: revalidate with If-None-Match", "schema": {"type": "string"}},
}
IF_NONE_MATCH = {
    "name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "The ETag of the copy the client has; when it is current the answer is 304 without a body.",
}


@blp.route("/<string:token>.ics")
class CalendarFeed(MethodView):
    """A facilitator's feed."""

    @blp.doc(parameters=[IF_NONE_MATCH])
    @blp.response(
        200, {"type": "string", "description": "An iCalendar object (RFC 5545)"}, content_type="text/calendar",
        description="The feed (RFC 5545, METHOD:PUBLISH, UTF-8, CRLF, folded at 75 octets): the facilitator's "
                    "sessions that ended at most 30 days ago and later ones; a cancelled session, or one taken "
                    "away from the facilitator, stays 14 days as STATUS:CANCELLED. Refresh hourly.",
        headers=FEED_HEADERS,
    )
    @blp.alt_response(304, description="The client's copy (If-None-Match) is current", headers=FEED_HEADERS)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, token):
        """The facilitator's sessions as an iCalendar feed; an unknown or rotated token is 404."""
        etags = request.if_none_match
        feed = service.feed(
            db=db_session(), token=token, now=now(), mail_from=services().config.mail_from,
            client_etags=frozenset(["*"] if etags.star_tag else etags.as_set(include_weak=True)),
        )
        if feed.body is None:
            response = Response(status=304)
        else:
            response = Response(feed.body, content_type="text/calendar; charset=utf-8")
        response.set_etag(feed.etag)
        response.last_modified = feed.last_modified
        response.headers["Cache-Control"] = "private, no-cache"
        return response
