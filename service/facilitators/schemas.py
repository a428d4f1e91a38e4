"""Facilitator request and response schemas."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping

import marshmallow as ma

from service.calendars.schemas import ONLY_ONCE, CalendarUrlRead
from service.fields import (
    AGENCY_CODE, EARLIEST_YEAR, LATEST_YEAR, EmailAddress, FullMatch, Instant, PatchSchema, StrictBoolean, TimeZoneName,
    choice, identifier, text,
)
from service.i18n import N_
from service.vocabulary import LANGUAGES

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FACILITATOR_KINDS = ("peer", "clinician")
MAX_EXCEPTIONS = 500  # dated periods of time off per facilitator
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


class ClockTime(ma.fields.Field):
    """A local wall-clock time "HH:MM"; "24:00" (or "00:00" as an end) is midnight."""

    def _serialize(self, value: time | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.strftime("%H:%M")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        if not isinstance(value, str) or not _CLOCK.fullmatch(value):
            raise ma.ValidationError('Not a time of day "HH:MM".')
        if value == "24:00":
            return time(0, 0)
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))


class WeeklyWindowSchema(ma.Schema):
    """A recurring availability window, in the facilitator's time zone."""

    day = choice(DAYS, required=True)
    start = ClockTime(required=True, metadata={"type": "string", "pattern": _CLOCK.pattern, "example": "08:00"})
    end = ClockTime(required=True, metadata={
        "type": "string", "pattern": _CLOCK.pattern, "example": "18:00",
        "description": "An end before the start runs past midnight; an end equal to the start means 24 hours",
    })


class ExceptionSchema(ma.Schema):
    """A dated period of unavailability."""

    start = Instant(required=True)
    end = Instant(required=True)

    @ma.validates_schema
    def _ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "start" in data and "end" in data and data["end"] <= data["start"]:
            raise ma.ValidationError("end must be after start.", "end")


class AvailabilitySchema(ma.Schema):
    """Weekly windows plus dated exceptions."""

    weekly = ma.fields.List(ma.fields.Nested(WeeklyWindowSchema), required=True, validate=ma.validate.Length(max=70))
    exceptions = ma.fields.List(ma.fields.Nested(ExceptionSchema), load_default=list, validate=ma.validate.Length(max=MAX_EXCEPTIONS))


class CertificationSchema(ma.Schema):
    """A certification and the last day it is valid."""

    name = ma.fields.String(
        required=True,
        validate=FullMatch(r"^[A-Z][A-Z0-9_-]{1,31}$", error="Upper-case code such as GCI or LICENSE."),
        metadata={"description": "GCI (group crisis intervention) is required for group sessions; LICENSE for clinicians"},
    )
    expires_on = ma.fields.Date(required=True)


def _unique(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ma.ValidationError("Listed twice.")


def _roster_fields(required: bool) -> dict[str, ma.fields.Field]:
    """The roster fields, required on creation and optional on change."""
    r = {"required": True} if required else {}
    return {
        "name": text(max_length=200, **r),
        "email": EmailAddress(validate=ma.validate.Length(max=254), **r),
        "unit": text(max_length=64, allow_none=True),
        "external_id": identifier(allow_none=True, metadata={"description": "Personnel id in their agency (conflict checks)"}),
        "languages": ma.fields.List(choice(LANGUAGES), validate=[ma.validate.Length(min=1, max=2), _unique],
                                    metadata={"uniqueItems": True}, **r),
        "regions": ma.fields.List(text(max_length=64), validate=[ma.validate.Length(max=50), _unique],
                                  metadata={"uniqueItems": True}, **r),
        "virtual_ok": StrictBoolean(**r),
        "timezone": TimeZoneName(metadata={"example": "America/Toronto"}, **r),
        "active": StrictBoolean(),
        "certifications": ma.fields.List(ma.fields.Nested(CertificationSchema), validate=ma.validate.Length(max=20), **r),
    }


class FacilitatorCreate(ma.Schema.from_dict(_roster_fields(required=True))):  # type: ignore[misc]
    """A facilitator to add to the roster."""

    kind = choice(FACILITATOR_KINDS, required=True)
    agency = ma.fields.String(allow_none=True, validate=FullMatch(AGENCY_CODE, error="Not an agency code."), metadata={"description": "Agency code; none for the provincial pool (admin only)"})
    availability = ma.fields.Nested(AvailabilitySchema, required=True)


class FacilitatorPatch(PatchSchema.from_dict(_roster_fields(required=False))):  # type: ignore[misc]
    """A change to a facilitator; a change that breaks booked sessions re-plans them."""


class FacilitatorRead(ma.Schema):
    """A facilitator."""

    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    agency = ma.fields.String(allow_none=True, required=True, attribute="agency_code")
    unit = ma.fields.String(allow_none=True)
    external_id = ma.fields.String(allow_none=True)
    languages = ma.fields.List(ma.fields.String(), required=True)
    regions = ma.fields.List(ma.fields.String(), required=True)
    virtual_ok = ma.fields.Boolean(required=True)
    timezone = ma.fields.String(required=True)
    active = ma.fields.Boolean(required=True)
    certifications = ma.fields.List(ma.fields.Nested(CertificationSchema), required=True)
    availability = ma.fields.Nested(AvailabilitySchema, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)


class FacilitatorCreated(FacilitatorRead):
    """A new facilitator, with the URL of their calendar feed (shown this once)."""

    calendar_url = ma.fields.Nested(CalendarUrlRead, required=True, metadata={"description": ONLY_ONCE})


class FacilitatorListArgs(ma.Schema):
    """Cursor and size of the roster list."""

    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(validate=ma.validate.Length(max=200))


class FacilitatorPage(ma.Schema):
    """One page of the roster."""

    items = ma.fields.List(ma.fields.Nested(FacilitatorRead), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


# -- the facilitator's page: its forms (messages are msgids, translated where the page shows them) ----------

_ENTER_DATE = N_("Enter a date, for example 2026-12-24.")
_ENTER_TIME = N_("Enter a time, for example 08:30, or leave it empty.")


def _form_date(**kwargs: Any) -> ma.fields.Date:
    return ma.fields.Date(
        validate=ma.validate.Range(min=date(EARLIEST_YEAR, 1, 1), max=date(LATEST_YEAR, 12, 30), error=_ENTER_DATE),
        error_messages={"required": N_("Enter a date."), "invalid": _ENTER_DATE}, **kwargs)


def _form_time() -> ma.fields.Time:
    return ma.fields.Time(load_default=None, error_messages={"invalid": _ENTER_TIME})


class TimeOffForm(ma.Schema):
    """The page's form that adds time off: dates and optional times, in the facilitator's time zone.

    An empty start time is the start of the day, an empty end time the end of the day; loads to
    naive local `start` and `end`.
    """

    class Meta:
        unknown = ma.EXCLUDE

    start_date = _form_date(required=True)
    start_time = _form_time()
    end_date = _form_date(required=True)
    end_time = _form_time()

    @ma.pre_load
    def _blank_is_missing(self, data: Mapping[str, Any], **_kwargs: Any) -> dict[str, Any]:
        return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}

    @ma.post_load
    def _local_times(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, datetime]:
        start = datetime.combine(data["start_date"], data["start_time"] or time(0))
        if data["end_time"] is None:
            end = datetime.combine(data["end_date"] + timedelta(days=1), time(0))
        else:
            end = datetime.combine(data["end_date"], data["end_time"])
        return {"start": start, "end": end}


class TimeOffRemoveForm(ma.Schema):
    """The page's form that removes one period of time off, named by its instants."""

    class Meta:
        unknown = ma.EXCLUDE

    start = ma.fields.AwareDateTime(required=True)
    end = ma.fields.AwareDateTime(required=True)
