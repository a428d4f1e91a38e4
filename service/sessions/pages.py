"""A session's page for a facilitator on its team, with "I cannot lead this session".

Reached from the link in each message about the session; the signed token in the URL is the
credential, as on the facilitator's own page (`service.facilitators.pages`): no cookie, hence no
CSRF token. The page shows time, place, agenda and team size, and counts of people, never a name.
Declining is a GET of its confirmation page, then a POST that calls the same `decline` as the API.
"""

from __future__ import annotations

import uuid

from flask import Response

from service.facilitators import service as facilitators
from service.facilitators.models import Facilitator
from service.facilitators.pages import facilitator_link
from service.sessions import service as sessions
from service.ui import page_blueprint, render
from service.web import db_session, now

blp = page_blueprint("session_pages", __name__, signed_link=True, url_prefix="/f")


def _session_page(facilitator: Facilitator, token: str, seen: sessions.TeamSession) -> Response:
    return render("sessions/session.html", facilitator=facilitator, token=token, seen=seen)


@blp.get("/<token>/sessions/<uuid:session_id>")
@facilitator_link
def session_page(facilitator: Facilitator, token: str, session_id: uuid.UUID) -> Response:
    """The session as its facilitator sees it; someone who was never on its team gets the 404 page."""
    seen = sessions.team_session(db_session(), facilitator_id=facilitator.id, session_id=session_id, now=now())
    return _session_page(facilitator, token, seen)


@blp.get("/<token>/sessions/<uuid:session_id>/decline")
@facilitator_link
def confirm_decline(facilitator: Facilitator, token: str, session_id: uuid.UUID) -> Response:
    """What declining does, and the button that does it; a session that can no longer be declined is shown as it is."""
    seen = sessions.team_session(db_session(), facilitator_id=facilitator.id, session_id=session_id, now=now())
    if not seen.can_decline:
        return _session_page(facilitator, token, seen)
    return render("sessions/decline.html", facilitator=facilitator, token=token, seen=seen)


@blp.post("/<token>/sessions/<uuid:session_id>/decline")
@facilitator_link
def decline(facilitator: Facilitator, token: str, session_id: uuid.UUID) -> Response:
    """Decline: a replacement is sought; declining again changes nothing and shows the same calm page."""
    seen = sessions.decline_once(db_session(), caller=facilitators.link_caller(facilitator), session_id=session_id, now=now())
    return _session_page(facilitator, token, seen)
