"""The admins' API keys pages: the keys of dispatch systems and other API clients, issued and revoked.

A key's secret is shown once, on the page that answers its creation (never stored, never shown
again); the list shows each key's role, scope and dates, as `debrief keys list` does.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange, Optional

from service.accounts.forms import ConsoleForm, one_of_the_choices
from service.agencies.models import Agency
from service.auth import service as keys
from service.console import console_blueprint, form_page
from service.errors import InvalidInput, NotFound
from service.ui import render
from service.web import db_session, now, services

blp = console_blueprint("key_pages", __name__, url_prefix="/keys")

# The roles a key may be issued for here; a facilitator's key is bound to one facilitator (`debrief keys create`).
KEY_ROLES = ("dispatch", "coordinator", "supervisor", "admin")
LISTED = 500


def role_words() -> dict[str, str]:
    """The API roles in words."""
    return {"dispatch": _("Dispatch system (reports incidents)"), "coordinator": _("Coordinator (CISM team)"),
            "supervisor": _("Supervisor (counts only)"), "admin": _("Administrator"),
            "facilitator": _("Facilitator")}


class KeyCreateForm(ConsoleForm):
    """Issue an API key."""

    role = SelectField(_l("Role"), validate_choice=False,
                       validators=[InputRequired(message=_l("Choose a role.")), one_of_the_choices])
    agency = SelectField(_l("Agency"), validate_choice=False, validators=[one_of_the_choices])
    expires_in_days = IntegerField(_l("Expires after (days, optional)"), validators=[
        Optional(), NumberRange(min=1, max=keys.MAX_EXPIRY_DAYS, message=_l("From 1 to 3650 days, or leave it empty."))])

    def set_choices(self) -> None:
        """The roles and the agencies to choose from."""
        words = role_words()
        self.role.choices = [("", _("Choose a role"))] + [(role, words[role]) for role in KEY_ROLES]
        agencies = db_session().execute(select(Agency.code, Agency.name).order_by(Agency.name)).all()
        self.agency.choices = [("", _("None (administrators only)"))] + [(code, name) for code, name in agencies]


@blp.get("")
def index() -> Response:
    """Every API key, newest first: role, agency, dates; never a secret."""
    listed, _more = keys.list_page(db=db_session(), limit=LISTED, cursor=None)
    return render("keys/list.html", keys=listed, roles=role_words(), zone=services().config.default_timezone,
                  now=now())


@blp.route("/new", methods=["GET", "POST"])
def create() -> Response:
    """Issue a key; its secret is on the answer's page only."""
    form = KeyCreateForm()
    form.set_choices()
    if form.is_submitted() and form.validate():
        try:
            issued = keys.issue_key(db=db_session(), role=form.role.data, agency_code=form.agency.data or None,
                                    expires_in_days=form.expires_in_days.data, now=now())
        except InvalidInput as refused:
            field = form.expires_in_days if "expires_in_days" in (refused.errors or {}) else form.agency
            field.errors.append(_("An administrator's key has no agency; every other key needs one.")
                                if field is form.agency else _("From 1 to 3650 days, or leave it empty."))
        except NotFound:
            form.agency.errors.append(_("Choose one of the options."))
        else:
            return render("keys/issued.html", issued=issued, role=role_words()[form.role.data],
                          agency=form.agency.data, zone=services().config.default_timezone)
    return form_page("keys/create.html", form)


@blp.post("/<int:key_id>/revoke")
def revoke(key_id: int) -> Response:
    """Revoke a key for good: its next request is refused."""
    keys.revoke(db=db_session(), key_id=key_id, now=now())
    flash(_("Key %(id)s is revoked: its next request will be refused.", id=key_id))
    return redirect(url_for("key_pages.index"), 303)
