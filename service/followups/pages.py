"""Participants' pages: what the links of their messages open (`/r/<token>`), and the opt-out.

A GET only shows (mail scanners fetch every link); each action is a button that POSTs a plain
form. The signed link is the only credential: no account, no cookie, so no CSRF token either
(a forged request would need the secret link itself). Pages call the same service functions
as the JSON API (`service.followups.service`) and speak the participant's language.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from babel.dates import get_timezone_name
from flask import Response, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, RadioField, StringField
from wtforms.validators import AnyOf, InputRequired, Optional, ValidationError

from service import i18n, ui
from service.errors import Conflict, NotFound
from service.followups import messages, service
from service.followups.models import ANSWERED, CANCELLED, CHECKIN, INVITATION, OFFER
from service.followups.screening import PC_PTSD_5
from service.followups.service import CHOICES, Gone, ResponseView, TimeTaken
from service.web import db_session, now

blp = ui.page_blueprint("followup_pages", __name__, signed_link=True)


@blp.app_template_global()
def zone_name(zone: str) -> str:
    """A time zone in the page's words: "Eastern Time", "heure de l’Est"."""
    return get_timezone_name(ZoneInfo(zone), locale=i18n.LOCALES[ui.current_language()])


@blp.app_template_global()
def consent_notice() -> tuple[str, str]:
    """The consent notice of the pages in their language: the words of the messages' notice (voluntary, who sees what)."""
    return gettext(messages.VOLUNTARY), gettext(messages.WHO_SEES)


FIRST_AVAILABLE = "first"
YES_NO = ("yes", "no")


# -- forms ------------------------------------------------------------------------------------------


class PageForm(FlaskForm):
    """A participant's form: the signed link is the credential, so there is no CSRF token to carry."""

    class Meta:
        csrf = False


class InvitationForm(PageForm):
    """I will attend / I will not attend (the button pressed)."""

    action = HiddenField(validators=[InputRequired(_l("Say whether you will attend.")),
                                     AnyOf(("accept", "decline"), _l("Say whether you will attend."))])


class CheckinForm(PageForm):
    """Someone to contact me / I am fine (the button pressed)."""

    contact_requested = HiddenField(validators=[InputRequired(_l("Choose one of the two answers.")),
                                                AnyOf(YES_NO, _l("Choose one of the two answers."))])


class WhomForm(PageForm):
    """Step 1 of the offer: a peer supporter or a clinician."""

    choice = RadioField(choices=CHOICES, validate_choice=False, validators=[
        InputRequired(_l("Choose whom you would like to meet.")),
        AnyOf(CHOICES, _l("Choose whom you would like to meet."))])


def _a_start(form: FlaskForm, field: Field) -> None:
    if field.data != FIRST_AVAILABLE and _start(field.data) is None:
        raise ValidationError(_l("Choose one of the times shown."))


class WhenForm(WhomForm):
    """Step 2 of the offer: one of the times offered, or the first available."""

    starts_at = RadioField(validate_choice=False, validators=[InputRequired(_l("Choose a time.")), _a_start])


def _start(value: str | None) -> datetime | None:
    """An offered start as the form sends it (ISO 8601 with its offset), else None."""
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _yes_no() -> RadioField:
    return RadioField(choices=YES_NO, validate_choice=False, validators=[
        InputRequired(_l("Answer yes or no.")), AnyOf(YES_NO, _l("Answer yes or no."))])


class ScreeningForm(PageForm):
    """The PC-PTSD-5's five items as yes/no questions, all required, and the request for contact."""

    q1, q2, q3, q4, q5 = (_yes_no() for _ in PC_PTSD_5.items)
    contact_requested = StringField(validators=[Optional(), AnyOf(("yes",), _l("Tick the box or leave it empty."))])

    def answers(self) -> list[bool]:
        """The answers in the items' order (True = yes)."""
        return [self[f"q{n}"].data == "yes" for n in range(1, len(PC_PTSD_5.items) + 1)]


# -- routes -----------------------------------------------------------------------------------------


def _link(view: Callable[..., Response]) -> Callable[..., Response]:
    """A page of a signed link: a link that is not ours is a 404 page, an expired one a 410 page."""

    @functools.wraps(view)
    def page(token: str, **kwargs: Any) -> Response:
        try:
            return view(token, **kwargs)
        except NotFound:
            return ui.error_page(404, reason="link_invalid")
        except Gone:
            return ui.error_page(410, reason="link_expired")

    return page


@blp.get("/r/<token>")
@_link
def show(token: str) -> Response:
    """The follow-up of a link, with what can be done with it; a GET never changes anything."""
    if request.args.get("action") == "opt_out":
        # The "stop all messages" link of a message: its confirmation page (which takes expired links too).
        chosen = {ui.LANG_PARAM: request.args[ui.LANG_PARAM]} if ui.LANG_PARAM in request.args else {}
        return redirect(url_for(".unsubscribe", token=token, **chosen), 303)
    shown = service.view(db_session(), token=token, now=now())
    ui.use_language(shown.language)
    if shown.kind == OFFER and shown.answerable and request.args.get("step") == "when":
        choice = request.args.get("choice")
        if choice in CHOICES:
            return _when(token, shown, WhenForm(formdata=None, choice=choice))
    return _state(token, shown, preset=request.args)


@blp.post("/r/<token>")
@_link
def act(token: str) -> Response:
    """Take the action of the button pressed on the page of a link."""
    db = db_session()
    shown = service.view(db, token=token, now=now())
    ui.use_language(shown.language)
    if shown.opted_out or not shown.actions:
        return _state(token, shown, status=409)
    try:
        if shown.kind == INVITATION:
            return _answer_invitation(token, shown)
        if shown.kind == OFFER:
            return _answer_offer(token, shown)
        if shown.kind == CHECKIN:
            return _answer_checkin(token, shown)
        return _answer_screening(token, shown)
    except Conflict:
        # Answered already (a second click, another tab), or no longer open: show where things stand.
        return _state(token, service.view(db, token=token, now=now()), status=409)


@blp.get("/r/<token>/unsubscribe")
@_link
def unsubscribe(token: str) -> Response:
    """Confirm opting out of all contact about this incident (from expired links too)."""
    shown = service.view(db_session(), token=token, now=now(), expired_ok=True)
    ui.use_language(shown.language)
    if shown.opted_out or not shown.actions:
        return _state(token, shown)  # opted out already, or withdrawn: nothing to confirm
    return ui.render("followups/unsubscribe.html", token=token)


@blp.post("/r/<token>/unsubscribe")
@_link
def unsubscribed(token: str) -> Response:
    """Opt out: the page's button, or a mail client's one-click POST (RFC 8058), which carries no cookie or form token."""
    db = db_session()
    shown = service.view(db, token=token, now=now(), expired_ok=True)
    ui.use_language(shown.language)
    if not shown.opted_out and shown.actions:
        try:
            shown = service.respond(db, token=token, answer={"action": "opt_out"}, now=now())
        except Conflict:  # opted out meanwhile (another click), or the incident was called off
            shown = service.view(db, token=token, now=now(), expired_ok=True)
    return _state(token, shown)


# -- what each kind of link shows --------------------------------------------------------------------


def _state(token: str, shown: ResponseView, *, status: int = 200, preset: Any = None) -> Response:
    """The page of a follow-up as it stands."""
    preset = preset or {}
    if shown.opted_out:
        return ui.render("followups/unsubscribed.html", status=status, token=token)
    if not shown.actions:
        return ui.render("followups/withdrawn.html", status=status, token=token, shown=shown)
    if shown.kind == INVITATION:
        return _page("followups/invitation.html", token, shown, InvitationForm(formdata=None), status=status)
    if shown.kind == OFFER:
        if shown.answerable:
            return _page("followups/offer_whom.html", token, shown, WhomForm(formdata=None, choice=preset.get("choice")),
                         status=status)
        return ui.render("followups/offer_booked.html", status=status, token=token, shown=shown, just_booked=False)
    if shown.answerable:
        if shown.kind == CHECKIN:
            return _page("followups/checkin.html", token, shown, CheckinForm(formdata=None), status=status)
        if shown.status == ANSWERED and preset.get("action") != "answer":
            # Answered already: thanks, and how to answer again; never the answers given (a link can leak).
            return ui.render("followups/answered.html", status=status, token=token, shown=shown)
        contact = "yes" if preset.get("contact_requested") == "true" else None
        return _screening(token, shown, ScreeningForm(formdata=None, contact_requested=contact), status=status)
    if shown.status == ANSWERED:
        return ui.render("followups/answered.html", status=status, token=token, shown=shown)
    if shown.status == CANCELLED:
        return ui.render("followups/withdrawn.html", status=status, token=token, shown=shown)
    return ui.render("followups/not_yet.html", status=status, token=token, shown=shown)


def _page(template: str, token: str, shown: ResponseView, form: FlaskForm, *, status: int = 200,
          **context: Any) -> Response:
    """A page with a form: 422 with the errors beside their fields when the answer was refused."""
    if form.errors and status == 200:
        status = 422
    return ui.render(template, status=status, token=token, shown=shown, form=form, **context)


def _answer_invitation(token: str, shown: ResponseView) -> Response:
    form = InvitationForm()
    if not form.validate():
        return _page("followups/invitation.html", token, shown, form)
    answered = service.respond(db_session(), token=token, answer={"action": form.action.data}, now=now())
    return ui.render("followups/invitation_answered.html", token=token, shown=answered)


def _when(token: str, shown: ResponseView, form: FlaskForm, *, status: int = 200, taken: bool = False) -> Response:
    times = service.offer_times(db_session(), token=token, choice=form.choice.data, now=now())
    return _page("followups/offer_when.html", token, shown, form, status=status, times=times, taken=taken,
                 first_available=FIRST_AVAILABLE)


def _answer_offer(token: str, shown: ResponseView) -> Response:
    action = request.form.get("action")
    db = db_session()
    if action == "cancel":
        cancelled = service.cancel_booked(db, token=token, now=now())
        return ui.render("followups/offer_cancelled.html", token=token, shown=cancelled)
    if action == "decline":
        declined = service.respond(db, token=token, answer={"action": "decline"}, now=now())
        return ui.render("followups/offer_declined.html", token=token, shown=declined)
    if action == "accept":
        form = WhenForm()
        if not form.validate():
            if form.choice.errors:  # not a choice the pages offer: back to step 1
                whom = WhomForm()
                whom.validate()
                return _page("followups/offer_whom.html", token, shown, whom)
            return _when(token, shown, form)
        starts_at = None if form.starts_at.data == FIRST_AVAILABLE else _start(form.starts_at.data)
        try:
            booked = service.respond(db, token=token, now=now(), answer={
                "action": "accept", "choice": form.choice.data, "starts_at": starts_at})
        except TimeTaken:
            again = WhenForm(formdata=None, choice=form.choice.data)
            return _when(token, shown, again, status=409, taken=True)
        return ui.render("followups/offer_booked.html", token=token, shown=booked, just_booked=True)
    # Step 1 (or no button at all): whom; step 2 is its own page, so the language switch and Back keep the choice.
    form = WhomForm()
    if not form.validate():
        return _page("followups/offer_whom.html", token, shown, form)
    return redirect(ui.with_language(url_for(".show", token=token, step="when", choice=form.choice.data)), 303)


def _answer_checkin(token: str, shown: ResponseView) -> Response:
    form = CheckinForm()
    if not form.validate():
        return _page("followups/checkin.html", token, shown, form)
    answered = service.respond(db_session(), token=token, now=now(), answer={
        "action": "answer", "contact_requested": form.contact_requested.data == "yes"})
    return ui.render("followups/checkin_done.html", token=token, shown=answered)


def _screening(token: str, shown: ResponseView, form: FlaskForm, *, status: int = 200) -> Response:
    items = [(f"q{n}", item) for n, item in enumerate(PC_PTSD_5.items, 1)]
    return _page("followups/screening.html", token, shown, form, status=status, instrument=PC_PTSD_5, items=items,
                 numbers={name: n for n, (name, _item) in enumerate(items, 1)},
                 anchors={name: f"{name}-yes" for name, _item in items},
                 validated=PC_PTSD_5.validated(ui.current_language()))


def _answer_screening(token: str, shown: ResponseView) -> Response:
    form = ScreeningForm()
    if not form.validate():
        return _screening(token, shown, form)
    answered = service.respond(db_session(), token=token, now=now(), answer={
        "action": "answer", "answers": form.answers(), "contact_requested": form.contact_requested.data == "yes",
        # The language of the text the person answered: recorded with the answers.
        "language": ui.current_language()})
    return ui.render("followups/checkin_done.html", token=token, shown=answered)

