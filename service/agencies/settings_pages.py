"""The coordinator's own agency in the console: the CISM team's mailbox, the webhook, its secret, planning numbers.

The rules are the API's: contact fields are loaded through `AgencyPatch` (PATCH /v1/agencies/{code}),
planning numbers are checked by `policy_from_overrides` inside `service.agencies.service.update`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import IntegerField, StringField
from wtforms.validators import InputRequired, NumberRange

from service.accounts.forms import ConsoleForm
from service.agencies import service as agencies
from service.agencies.models import Agency
from service.agencies.policy import DURATION_FIELDS, MAX_HOURS, policy_from_overrides
from service.agencies.schemas import AgencyPatch
from service.agencies.webhook_address import WebhookRules
from service.console import console_blueprint, signed_in
from service.errors import Conflict, InvalidInput
from service.planning import PlanningPolicy
from service import i18n
from service.ui import current_language, render
from service.web import db_session, now, services

blp = console_blueprint("agency_settings", __name__, url_prefix="/agency")

# The planning numbers a coordinator edits here (the API's PATCH takes every setting): (setting, label, hint).
EDITABLE = (
    ("debriefing_opens_after", _l("Debriefings open (hours after the incident)"),
     _l("A group debriefing starts no earlier than this.")),
    ("debriefing_closes_after", _l("Debriefings close (hours after the incident)"),
     _l("A group debriefing ends by then; after the opening.")),
    ("defusing_min_severity", _l("Defusings from severity"),
     _l("A defusing is planned for incidents of this severity (1 to 5) or more; 6 plans none.")),
    ("defusing_closes_after", _l("Defusings close (hours after the incident)"),
     _l("A defusing ends by then.")),
    ("max_group_size", _l("Most people in one group"), _l("A larger set of people is split into even groups.")),
    ("participants_per_facilitator", _l("People per facilitator"),
     _l("A debriefing team has one facilitator for this many people (at least 2, at most 4 in all).")),
    ("max_group_sessions_per_day", _l("Group sessions per facilitator per day"), None),
    ("max_group_sessions_per_7_days", _l("Group sessions per facilitator in 7 days"),
     _l("At least the number per day.")),
)
NOT_ALLOWED = _l("This number is not allowed here: check it against the hint and the other numbers.")
CONTACT_ERRORS = {
    "coordinator_email": _l("Enter an email address in the form name@example.org."),
    "webhook_url": _l("Enter an address that starts with https:// or http://."),
}
WEBHOOK_HTTPS_ONLY = _l("Enter an address that starts with https://: webhooks are not sent unencrypted.")
WEBHOOK_NOT_PUBLIC = _l("Enter the receiver’s public internet address: webhooks are not sent to this server, "
                        "a private network or a local name.")


def _value(policy: PlanningPolicy, name: str) -> int:
    value = getattr(policy, name)
    return int(value / timedelta(hours=1)) if isinstance(value, timedelta) else value


class ContactForm(ConsoleForm):
    """The CISM team's mailbox and the webhook's address (both optional)."""

    coordinator_email = StringField(_l("The CISM team’s email address"), filters=[lambda v: v.strip() if v else v])
    webhook_url = StringField(_l("Webhook address"), filters=[lambda v: v.strip() if v else v])


def _policy_form(policy: PlanningPolicy, *, posted: bool = False) -> ConsoleForm:
    class PolicyForm(ConsoleForm):
        pass

    for name, label, _hint in EDITABLE:
        high = MAX_HOURS if name in DURATION_FIELDS else 10_080
        setattr(PolicyForm, name, IntegerField(label, default=_value(policy, name), validators=[
            InputRequired(message=_l("Enter a whole number.")),
            NumberRange(min=0, max=high, message=_l("Enter a whole number from %(min)s to %(max)s.")),
        ]))
    return PolicyForm() if posted else PolicyForm(formdata=None)


def _agency() -> Agency:
    agency = db_session().get(Agency, signed_in().agency_id)
    if agency is None:
        raise NotFound()
    return agency


def _page(agency: Agency, contact: ContactForm, policy_form: ConsoleForm, *, secret: str | None = None) -> Response:
    problems = [(f.id, f.errors[0]) for form in (contact, policy_form) for f in form if f.errors]
    policy = policy_from_overrides(agency.policy)
    return render("agencies/settings.html", agency=agency, contact=contact, policy_form=policy_form, secret=secret,
                  editable=EDITABLE, problems=problems, policy=policy, status=422 if problems else 200,
                  clock_of=lambda value: i18n.time_of_day(value.hour, value.minute, current_language()))


@blp.get("")
def index() -> Response:
    """The agency's settings, each with its current value."""
    agency = _agency()
    contact = ContactForm(data={"coordinator_email": agency.coordinator_email or "", "webhook_url": agency.webhook_url or ""})
    return _page(agency, contact, _policy_form(policy_from_overrides(agency.policy)))


@blp.post("/contact")
def contact() -> Response:
    """Change the CISM team's mailbox and the webhook's address."""
    agency = _agency()
    form = ContactForm()
    form.validate()
    try:
        changes = AgencyPatch().load({"coordinator_email": form.coordinator_email.data or None,
                                      "webhook_url": form.webhook_url.data or None})
    except ma.ValidationError as error:
        for name in error.normalized_messages():
            getattr(form, name).errors.append(str(CONTACT_ERRORS[name]))
        return _page(agency, form, _policy_form(policy_from_overrides(agency.policy)))
    rules = WebhookRules.of(services().config)
    try:
        agencies.update(db=db_session(), code=agency.code, changes=changes, webhook_rules=rules)
    except InvalidInput:
        # Only the webhook's address is checked beyond its form: its scheme, then where it leads.
        plain_http = not rules.allow_http and not changes["webhook_url"].lower().startswith("https:")
        form.webhook_url.errors.append(str(WEBHOOK_HTTPS_ONLY if plain_http else WEBHOOK_NOT_PUBLIC))
        return _page(agency, form, _policy_form(policy_from_overrides(agency.policy)))
    except Conflict:
        # Webhooks are signed with the agency's own secret: there must be one before an address.
        form.webhook_url.errors.append(_("Create the webhook secret first (below), then give the address."))
        return _page(agency, form, _policy_form(policy_from_overrides(agency.policy)))
    flash(_("The agency’s addresses were saved."))
    return redirect(url_for("agency_settings.index"), 303)


@blp.post("/policy")
def policy() -> Response:
    """Change the planning numbers; a number equal to the default is no longer an override."""
    agency = _agency()
    form = _policy_form(policy_from_overrides(agency.policy), posted=True)
    if form.validate():
        defaults = PlanningPolicy()
        overrides: dict[str, Any] = dict(agency.policy)
        for name, _label, _hint in EDITABLE:
            typed = getattr(form, name).data
            overrides.pop(name, None)
            if typed != _value(defaults, name):
                overrides[name] = typed
        try:
            agencies.update(db=db_session(), code=agency.code, changes={"policy": overrides})
        except InvalidInput as error:
            setting = next(iter(error.errors)).partition(".")[2]
            field = getattr(form, setting, None) or getattr(form, EDITABLE[0][0])
            field.errors.append(str(NOT_ALLOWED))
        else:
            flash(_("The planning numbers were saved. They apply to the sessions planned from now on."))
            return redirect(url_for("agency_settings.index"), 303)
    contact = ContactForm(formdata=None, data={"coordinator_email": agency.coordinator_email or "",
                                               "webhook_url": agency.webhook_url or ""})
    return _page(agency, contact, form)


@blp.post("/webhook-secret")
def rotate_secret() -> Response:
    """Give the agency a new webhook secret, shown on this page this once; the old one stops signing."""
    agency = _agency()
    secret = agencies.rotate_webhook_secret(db=db_session(), code=agency.code, now=now()).webhook_secret
    contact = ContactForm(formdata=None, data={"coordinator_email": agency.coordinator_email or "",
                                               "webhook_url": agency.webhook_url or ""})
    return _page(agency, contact, _policy_form(policy_from_overrides(agency.policy)), secret=secret)
