"""A facilitator's own page: upcoming sessions, time off, and the calendar subscription.

Facilitators reach it from the link in every message Debrief sends them (DESIGN.md section 5).
No account, no API key and no cookie: the signed token in the URL is the credential
(`service.facilitators.links`), so the forms carry no CSRF token: another site cannot know the
token, and no cookie would make its forged request count. A GET only shows; every change is a
POST form. Every view opens the link first (`facilitator_link`) and speaks the facilitator's language.
"""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable

import marshmallow as ma
from flask import Response, redirect, request, url_for

from service import i18n
from service.errors import InvalidInput, NotFound
from service.facilitators import links
from service.facilitators import service as facilitators
from service.facilitators.models import Facilitator
from service.facilitators.schemas import TimeOffForm, TimeOffRemoveForm
from service.sessions import service as sessions
from service.ui import error_page, page_blueprint, render, use_language, with_language
from service.web import db_session, now, services

blp = page_blueprint("facilitator_pages", __name__, signed_link=True, url_prefix="/f")


def facilitator_link(view: Callable[..., Any]) -> Callable[..., Any]:
    """Open the link's token: the view gets its facilitator, in their language; else the page of a bad or expired link."""

    @wraps(view)
    def opened(token: str, **kwargs: Any) -> Any:
        try:
            facilitator = facilitators.from_link(db=db_session(), token=token, now=now())
        except links.ExpiredToken:
            return error_page(410, reason="link_expired")
        except (links.InvalidToken, NotFound):
            return error_page(404, reason="link_invalid")
        use_language(i18n.language(facilitator.languages))
        return view(facilitator, token, **kwargs)

    return opened


def _own_page(facilitator: Facilitator, token: str, *, status: int = 200, notice: str | None = None,
              typed: dict[str, str] | None = None, errors: dict[str, list[str]] | None = None) -> Response:
    return render(
        "facilitators/own.html", status=status, facilitator=facilitator, token=token, notice=notice,
        sessions=sessions.upcoming_sessions(db_session(), facilitator_id=facilitator.id, now=now()),
        time_off=facilitators.time_off(facilitator, now=now()), typed=typed or {}, errors=errors or {},
    )


@blp.get("/<token>")
@facilitator_link
def own_page(facilitator: Facilitator, token: str) -> Response:
    """Upcoming sessions, time off with its form, and the calendar subscription."""
    return _own_page(facilitator, token)


@blp.get("/<token>/time-off")
@blp.get("/<token>/time-off/remove")
@blp.get("/<token>/calendar")
def back_to_own_page(token: str) -> Response:
    """The address of a form's answer (e.g. after the language switch): the own page, which opens the link."""
    return redirect(with_language(url_for("facilitator_pages.own_page", token=token)), code=303)


@blp.post("/<token>/time-off")
@facilitator_link
def add_time_off(facilitator: Facilitator, token: str) -> Response:
    """Add a period of time off; a booked session it overlaps goes to another facilitator."""
    typed = request.form.to_dict()
    try:
        period = TimeOffForm().load(typed)
        facilitators.add_time_off(db=db_session(), caller=facilitators.link_caller(facilitator), facilitator_id=facilitator.id,
                                  start=period["start"], end=period["end"], now=now())
    except ma.ValidationError as error:
        return _own_page(facilitator, token, status=422, typed=typed, errors=error.normalized_messages())
    except InvalidInput as error:
        return _own_page(facilitator, token, status=422, typed=typed, errors=error.errors)
    return _own_page(facilitator, token, notice="time_off_added")


@blp.post("/<token>/time-off/remove")
@facilitator_link
def remove_time_off(facilitator: Facilitator, token: str) -> Response:
    """Remove a period of time off."""
    try:
        period = TimeOffRemoveForm().load(request.form.to_dict())
    except ma.ValidationError:
        return error_page(400)
    facilitators.remove_time_off(db=db_session(), caller=facilitators.link_caller(facilitator), facilitator_id=facilitator.id,
                                 start=period["start"], end=period["end"], now=now())
    return _own_page(facilitator, token, notice="time_off_removed")


@blp.post("/<token>/calendar")
@facilitator_link
def new_calendar_link(facilitator: Facilitator, token: str) -> Response:
    """Replace the calendar feed's secret and show the new subscription links, this once."""
    issued = facilitators.rotate_calendar_token(db=db_session(), caller=facilitators.link_caller(facilitator),
                                                facilitator_id=facilitator.id, base_url=services().config.public_base_url)
    return render("facilitators/calendar.html", facilitator=facilitator, token=token, urls=issued.calendar_url)
