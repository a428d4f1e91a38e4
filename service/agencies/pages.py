"""Agencies in the console, for admins: the list, and a new agency."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import InputRequired, Length, Regexp, ValidationError

from service.accounts.forms import ConsoleForm
from service.agencies import service as agencies
from service.agencies.models import Agency
from service.console import console_blueprint, form_page, save_form
from service.ui import render
from service.web import db_session

blp = console_blueprint("agency_pages", __name__, url_prefix="/agencies")


def time_zone(_form: ConsoleForm, field: StringField) -> None:
    """An IANA time zone name."""
    if field.data and field.data not in available_timezones():
        raise ValidationError(_l("Enter a time zone name such as America/Toronto."))


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class AgencyForm(ConsoleForm):
    """A new agency (the same rules as POST /v1/agencies)."""

    name = StringField(_l("Name"), filters=[_strip], validators=[
        InputRequired(message=_l("Enter the agency’s name.")),
        Length(max=200, message=_l("A name has at most 200 characters.")),
    ])
    code = StringField(_l("Code"), filters=[_strip], validators=[
        InputRequired(message=_l("Enter a code.")),
        Length(min=2, max=32, message=_l("A code has 2 to 32 characters.")),
        Regexp(r"^[a-z0-9][a-z0-9-]*$", message=_l("Use lower-case letters, digits and hyphens, starting with a letter or digit.")),
    ])
    timezone = StringField(_l("Time zone"), filters=[_strip], default="America/Toronto", validators=[
        InputRequired(message=_l("Enter a time zone.")), time_zone,
    ])


@blp.get("")
def index() -> Response:
    """Every agency."""
    return render("agencies/list.html", agencies=db_session().scalars(select(Agency).order_by(Agency.name)).all())


@blp.route("/new", methods=["GET", "POST"])
def create() -> Response:
    """Create an agency."""
    form = AgencyForm()
    agency = save_form(form, lambda: agencies.create(db=db_session(), data={
        "code": form.code.data, "name": form.name.data, "timezone": form.timezone.data,
    }), conflict=(form.code, _("There is already an agency with this code.")))
    if agency is None:
        return form_page("agencies/create.html", form)
    flash(_("The agency %(name)s was created.", name=agency.name))
    return redirect(url_for("agency_pages.index"), 303)
