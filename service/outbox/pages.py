"""The demo's mailbox: the emails the service would send, readable in the browser.

Registered only by `debrief serve --demo` (config `demo`), so that a newcomer can click
through as a participant or a facilitator; it does not exist outside demo mode, since it
shows every message with its recipient and links.
"""

from __future__ import annotations

import uuid

from flask import abort

from service.outbox import service
from service.ui import page_blueprint, render, use_language
from service.web import db_session, services

blp = page_blueprint("demo_pages", __name__, url_prefix="/demo")


@blp.get("/messages")
def mailbox():
    """Every email owed or sent, newest first."""
    use_language(None)
    return render("outbox/mailbox.html", messages=service.recent_emails(db_session()), zone=services().config.default_timezone)


@blp.get("/messages/<uuid:message_id>")
def message(message_id: uuid.UUID):
    """One email as its recipient would read it."""
    use_language(None)
    found = service.email(db_session(), message_id)
    if found is None:
        abort(404)
    return render("outbox/message.html", message=found, zone=services().config.default_timezone)
