"""The roster in the console, for coordinators: the list with filters, a facilitator's form, time off, deactivation.

The rules are the API's: what a form sends is loaded through `FacilitatorCreate` (the schema of
POST /v1/facilitators), and changes go through `service.facilitators.service`, which re-plans the
sessions a change breaks. The roster is the one the API lists to the coordinator (their agency's).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response
from wtforms import BooleanField, FieldList, Form, FormField, SelectField, SelectMultipleField, StringField

from service.accounts.forms import ConsoleForm
from service.auth.service import Principal
from service.console import console_blueprint, signed_in
from service.errors import InvalidInput
from service.facilitators import service as facilitators
from service.facilitators.schemas import DAYS, FACILITATOR_KINDS, FacilitatorCreate, TimeOffForm, TimeOffRemoveForm
from service import i18n
from service.ui import current_language, render
from service.vocabulary import LANGUAGES
from service.web import db_session, now

blp = console_blueprint("roster_pages", __name__, url_prefix="/roster")

EXPIRING_WITHIN = timedelta(days=30)
CERTIFICATION_ROWS = 4
# The zones offered (Newfoundland to the Yukon), with the agency's and the facilitator's own added.
CANADIAN_ZONES = ("America/St_Johns", "America/Halifax", "America/Moncton", "America/Toronto", "America/Winnipeg",
                  "America/Regina", "America/Edmonton", "America/Vancouver", "America/Whitehorse")
ROSTER_PAGES = 50  # of 100 facilitators each, as the API lists them

KIND_NAMES = {"peer": _l("Peer"), "clinician": _l("Clinician")}
LANGUAGE_NAMES = {"fr": _l("French"), "en": _l("English")}
DAY_NAMES = {"mon": _l("Monday"), "tue": _l("Tuesday"), "wed": _l("Wednesday"), "thu": _l("Thursday"),
             "fri": _l("Friday"), "sat": _l("Saturday"), "sun": _l("Sunday")}

# What to say beside a field the API's schema refused (its own messages are the API's, in English).
FIELD_ERRORS = {
    "name": _l("Enter the name (at most 200 characters)."),
    "email": _l("Enter an email address in the form name@example.org."),
    "kind": _l("Choose peer or clinician."),
    "unit": _l("A unit has at most 64 characters."),
    "external_id": _l("Use letters, digits, '.', '_' or '-' (at most 64)."),
    "languages": _l("Choose at least one language."),
    "regions": _l("Enter at most 50 regions separated by commas, each once and of at most 64 characters."),
    "virtual_ok": _l("Choose one of the options."),
    "timezone": _l("Choose one of the time zones."),
    "certifications": _l("Enter at most 20 certifications."),
    "cert_name": _l("Enter an upper-case code such as GCI or LICENSE."),
    "cert_expires_on": _l("Enter a date, for example 2026-12-24."),
    "day_time": _l("Enter a time such as 08:00 (24:00 for midnight)."),
    "weekly": _l("Enter at most 70 windows."),
    "license": _l("A clinician needs a LICENSE certification: add it with its expiry date."),
}


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class CertificationRow(Form):
    """One certification: its code and the last day it is valid."""

    name = StringField(_l("Certification"), filters=[_strip])
    expires_on = StringField(_l("Valid until"), filters=[_strip])


class DayRow(Form):
    """One day of the week: available or not, from when to when (local time)."""

    available = BooleanField(_l("Available"))
    start = StringField(_l("From"), filters=[_strip])
    end = StringField(_l("To"), filters=[_strip])


class FacilitatorForm(ConsoleForm):
    """A facilitator as the roster keeps them. The fields check nothing: the API's schema does."""

    name = StringField(_l("Name"), filters=[_strip])
    email = StringField(_l("Email address"), filters=[_strip])
    kind = SelectField(_l("Kind"), validate_choice=False)
    unit = StringField(_l("Unit (optional)"), filters=[_strip])
    external_id = StringField(_l("Personnel id (optional)"), filters=[_strip])
    languages = SelectMultipleField(_l("Languages"), validate_choice=False)
    regions = StringField(_l("Regions served"), filters=[_strip])
    virtual_ok = BooleanField(_l("Can lead sessions by video"))
    timezone = SelectField(_l("Time zone"), validate_choice=False)
    certifications = FieldList(FormField(CertificationRow), min_entries=CERTIFICATION_ROWS, max_entries=20)
    weekly = FieldList(FormField(DayRow), min_entries=len(DAYS), max_entries=len(DAYS))

    def set_choices(self, zones: list[str]) -> None:
        """The kinds, languages and time zones to choose from."""
        self.kind.choices = [(k, str(KIND_NAMES[k])) for k in FACILITATOR_KINDS]
        self.languages.choices = [(code, str(LANGUAGE_NAMES[code])) for code in LANGUAGES]
        self.timezone.choices = [(z, z) for z in dict.fromkeys([*CANADIAN_ZONES, *zones])]

    def schema_input(self, kind: str) -> dict[str, Any]:
        """What the form says, as the API's POST body."""
        certifications = [{"name": row.form.name.data, "expires_on": row.form.expires_on.data}
                          for row in self.certifications if row.form.name.data or row.form.expires_on.data]
        weekly = [{"day": day, "start": row.form.start.data, "end": row.form.end.data}
                  for day, row in zip(DAYS, self.weekly) if row.form.available.data]
        return {
            "name": self.name.data, "email": self.email.data, "kind": kind, "unit": self.unit.data or None,
            "external_id": self.external_id.data or None, "languages": self.languages.data or [],
            "regions": [r.strip() for r in (self.regions.data or "").split(",") if r.strip()],
            "virtual_ok": bool(self.virtual_ok.data), "timezone": self.timezone.data, "certifications": certifications,
            "availability": {"weekly": weekly, "exceptions": []},
        }

    def load(self, kind: str) -> dict[str, Any] | None:
        """The API's schema's reading of the form; None, with the errors beside their fields, when it refuses it."""
        self.validate()  # nothing to check: it makes each field's error list
        data = self.schema_input(kind)
        try:
            return FacilitatorCreate().load(data)
        except ma.ValidationError as error:
            self.show_errors(error.normalized_messages())
            return None

    def show_errors(self, errors: dict[str, Any]) -> None:
        """Put the schema's errors beside the fields they are about."""
        typed_rows = [row for row in self.certifications if row.form.name.data or row.form.expires_on.data]
        available_days = [row for row in self.weekly if row.form.available.data]
        for name, messages in errors.items():
            if name == "certifications" and isinstance(messages, list) and "LICENSE" in str(messages):
                self.certifications[0].form.name.errors.append(str(FIELD_ERRORS["license"]))
            elif name == "certifications" and isinstance(messages, dict):
                for index, fields in messages.items():
                    for field in fields:
                        row = typed_rows[int(index)].form
                        getattr(row, field).errors.append(str(FIELD_ERRORS[f"cert_{field}"]))
            elif name == "availability" and isinstance(messages, dict):
                weekly = messages.get("weekly", {})
                if isinstance(weekly, dict):
                    for index, fields in weekly.items():
                        row = available_days[int(index)].form
                        for field in fields:
                            getattr(row, field if field in ("start", "end") else "start").errors.append(
                                str(FIELD_ERRORS["day_time"]))
            elif name in FIELD_ERRORS and hasattr(self, name):
                getattr(self, name).errors.append(str(FIELD_ERRORS[name]))
            else:
                self.name.errors.append(_("This form could not be read: check every field."))

    def problems(self) -> Iterator[tuple[str, str]]:
        """(field id, first error) of every field in error, in the order of the page."""
        for field in self:
            if isinstance(field, FieldList):
                for row in field:
                    for inner in row.form:
                        if inner.errors:
                            yield inner.id, inner.errors[0]
            elif field.errors:
                yield field.id, field.errors[0]


def caller() -> Principal:
    """The signed-in coordinator as the roster's use cases know callers."""
    who = signed_in()
    return Principal(key_id=None, role=who.role, agency_id=who.agency_id, facilitator_id=None)


def _agency_zone() -> str:
    from service.agencies.models import Agency

    agency = db_session().get(Agency, signed_in().agency_id)
    return agency.timezone if agency is not None else "America/Toronto"


def roster() -> list[facilitators.FacilitatorView]:
    """Every facilitator the API lists to the coordinator, by name."""
    found: list[facilitators.FacilitatorView] = []
    cursor = None
    for _page in range(ROSTER_PAGES):
        items, cursor = facilitators.list_page(db=db_session(), caller=caller(), limit=100, cursor=cursor)
        found.extend(items)
        if cursor is None:
            break
    # The provincial pool serves this agency too: shown, read-only (its members are no one agency's to edit).
    found.extend(facilitators.provincial_pool(db=db_session()))
    return sorted(found, key=lambda f: (not f.active, f.name.casefold(), f.id))


def certification_flags(view: facilitators.FacilitatorView, today: date) -> list[tuple[str, date, bool]]:
    """(name, last valid day, expired) of the certifications that expired or expire within 30 days."""
    return [(c["name"], c["expires_on"], c["expires_on"] < today) for c in view.certifications
            if c["expires_on"] <= today + EXPIRING_WITHIN]


@blp.get("")
def index() -> Response:
    """The roster, filtered by kind, language and region (a GET form)."""
    everyone = roster()
    wanted = {name: request.args.get(name, "") for name in ("kind", "language", "region", "agency")}
    shown = [f for f in everyone
             if (not wanted["kind"] or f.kind == wanted["kind"])
             and (not wanted["language"] or wanted["language"] in f.languages)
             and (not wanted["region"] or wanted["region"] in f.regions)
             and (not wanted["agency"] or (wanted["agency"] == "pool") == (f.agency_code is None))]
    zone = _agency_zone()
    today = now().astimezone(ZoneInfo(zone)).date()
    return render("roster/list.html", facilitators=shown, total=len(everyone), wanted=wanted, kinds=KIND_NAMES,
                  languages=LANGUAGE_NAMES, regions=sorted({r for f in everyone for r in f.regions}, key=str.casefold),
                  flags={f.id: certification_flags(f, today) for f in shown},
                  short_date=lambda value: i18n.short_day(value, current_language()))


def _blank_form(zone: str) -> FacilitatorForm:
    weekly = [{"available": day not in ("sat", "sun"), "start": "08:00", "end": "20:00"} for day in DAYS]
    return FacilitatorForm(data={"timezone": zone, "languages": ["fr", "en"], "weekly": weekly})


@blp.route("/new", methods=["GET", "POST"])
def create() -> Response:
    """Add a facilitator to the coordinator's agency."""
    zone = _agency_zone()
    form = FacilitatorForm() if request.method == "POST" else _blank_form(zone)
    form.set_choices([zone])
    if request.method == "POST":
        data = form.load(form.kind.data or "")
        if data is not None:
            try:
                view = facilitators.create(db=db_session(), caller=caller(), data=data)
            except InvalidInput as error:
                form.show_errors(error.errors)
            else:
                flash(_("%(name)s was added to the roster.", name=view.name))
                return redirect(url_for("roster_pages.edit", facilitator_id=view.id), 303)
    return _form_page("roster/create.html", form)


def _form_page(template: str, form: FacilitatorForm, **context: Any) -> Response:
    status = 422 if any(form.problems()) else 200
    return render(template, form=form, problems=list(form.problems()), status=status, day_names=DAY_NAMES,
                  **context)


def _edit_form(view: facilitators.FacilitatorView) -> FacilitatorForm:
    windows = {w["day"]: w for w in view.availability["weekly"]}
    weekly = [{"available": day in windows, "start": windows[day]["start"].strftime("%H:%M") if day in windows else "",
               "end": _clock(windows[day]["end"]) if day in windows else ""} for day in DAYS]
    certifications = [{"name": c["name"], "expires_on": c["expires_on"].isoformat()} for c in view.certifications]
    certifications += [{}] * max(0, CERTIFICATION_ROWS - len(certifications))
    return FacilitatorForm(data={
        "name": view.name, "email": view.email, "kind": view.kind, "unit": view.unit or "",
        "external_id": view.external_id or "", "languages": view.languages, "regions": ", ".join(view.regions),
        "virtual_ok": view.virtual_ok, "timezone": view.timezone, "certifications": certifications, "weekly": weekly,
    })


def _clock(moment: Any) -> str:
    # An end at midnight is shown as 24:00 (as the API takes it), not 00:00.
    text = moment.strftime("%H:%M")
    return "24:00" if text == "00:00" else text


# More than one window a day (the API allows it) is not what this form edits: the page says so.
def _single_windows(view: facilitators.FacilitatorView) -> bool:
    days = [w["day"] for w in view.availability["weekly"]]
    return len(days) == len(set(days))


@blp.route("/<int(max=2147483647):facilitator_id>", methods=["GET", "POST"])
def edit(facilitator_id: int) -> Response:
    """One facilitator: their details, certifications and weekly availability; their time off."""
    view = facilitators.get(db=db_session(), caller=caller(), facilitator_id=facilitator_id)
    form = FacilitatorForm() if request.method == "POST" else _edit_form(view)
    form.set_choices([_agency_zone(), view.timezone])
    if request.method == "POST":
        data = form.load(view.kind)
        if data is not None:
            changes = {k: v for k, v in data.items() if k not in ("kind", "agency", "availability")}
            changes["weekly"] = data["availability"]["weekly"]
            try:
                facilitators.update(db=db_session(), caller=caller(), facilitator_id=view.id, changes=changes, now=now())
            except InvalidInput as error:
                form.show_errors(error.errors)
            else:
                flash(_("The changes to %(name)s were saved. A booked session they can no longer lead gets a replacement.",
                        name=data["name"]))
                return redirect(url_for("roster_pages.edit", facilitator_id=view.id), 303)
    return _edit_page(view, form)


def _edit_page(view: facilitators.FacilitatorView, form: FacilitatorForm, *, typed: dict[str, str] | None = None,
               errors: dict[str, list[str]] | None = None) -> Response:
    facilitator = facilitators.visible(db=db_session(), caller=caller(), facilitator_id=view.id)
    response = _form_page("roster/edit.html", form, facilitator=view, single_windows=_single_windows(view),
                          time_off=facilitators.time_off(facilitator, now=now()), typed=typed or {}, errors=errors or {})
    if errors:
        response.status_code = 422
    return response


@blp.post("/<int(max=2147483647):facilitator_id>/time-off")
def add_time_off(facilitator_id: int) -> Response:
    """Add a period of time off (in the facilitator's zone); a booked session it overlaps gets a replacement."""
    view = facilitators.get(db=db_session(), caller=caller(), facilitator_id=facilitator_id)
    typed = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        period = TimeOffForm().load(typed)
        facilitators.add_time_off(db=db_session(), caller=caller(), facilitator_id=view.id, start=period["start"],
                                  end=period["end"], now=now())
    except ma.ValidationError as error:
        return _edit_page(view, _edit_form(view), typed=typed, errors=error.normalized_messages())
    except InvalidInput as error:
        return _edit_page(view, _edit_form(view), typed=typed, errors=error.errors)
    flash(_("Time off added. A booked session in that time gets a replacement."))
    return redirect(url_for("roster_pages.edit", facilitator_id=view.id, _anchor="time-off"), 303)


@blp.post("/<int(max=2147483647):facilitator_id>/time-off/remove")
def remove_time_off(facilitator_id: int) -> Response:
    """Remove a period of time off."""
    view = facilitators.get(db=db_session(), caller=caller(), facilitator_id=facilitator_id)
    try:
        period = TimeOffRemoveForm().load(request.form.to_dict())
    except ma.ValidationError:
        raise BadRequest() from None
    facilitators.remove_time_off(db=db_session(), caller=caller(), facilitator_id=view.id, start=period["start"],
                                 end=period["end"], now=now())
    flash(_("Time off removed."))
    return redirect(url_for("roster_pages.edit", facilitator_id=view.id, _anchor="time-off"), 303)


@blp.route("/<int(max=2147483647):facilitator_id>/deactivate", methods=["GET", "POST"])
def deactivate(facilitator_id: int) -> Response:
    """Confirm, then take a facilitator off the roster: each session they were booked for gets a replacement."""
    view = facilitators.get(db=db_session(), caller=caller(), facilitator_id=facilitator_id)
    if request.method == "GET":
        return render("roster/deactivate.html", facilitator=view)
    facilitators.update(db=db_session(), caller=caller(), facilitator_id=view.id, changes={"active": False}, now=now())
    flash(_("%(name)s is inactive: they get no new session, and each session they were booked for gets a replacement.",
            name=view.name))
    return redirect(url_for("roster_pages.index"), 303)


@blp.post("/<int(max=2147483647):facilitator_id>/reactivate")
def reactivate(facilitator_id: int) -> Response:
    """Put an inactive facilitator back on the roster."""
    view = facilitators.update(db=db_session(), caller=caller(), facilitator_id=facilitator_id,
                               changes={"active": True}, now=now())
    flash(_("%(name)s is active again.", name=view.name))
    return redirect(url_for("roster_pages.edit", facilitator_id=view.id), 303)
