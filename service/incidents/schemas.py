"""Incident request and response schemas."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.fields import EmailAddress, FullMatch, Instant, PatchSchema, RecordList, choice, identifier, text
from service.sessions.schemas import SessionRead
from service.vocabulary import EXPOSURES, INCIDENT_STATUSES, INCIDENT_TYPES, LANGUAGES, ROLES

MAX_PERSONNEL = 500


class PersonnelCreate(ma.Schema):
    """A person involved in the incident."""

    external_id = identifier(required=True, metadata={"description": "The person's id in the agency's systems"})
    name = text(max_length=200, required=True)
    email = EmailAddress(required=True, validate=ma.validate.Length(max=254))
    phone = ma.fields.String(
        validate=FullMatch(r"^\+?[0-9][0-9 ().-]{4,30}$", error="Not a valid phone number."),
        allow_none=True,
    )
    role = choice(ROLES, required=True)
    unit = text(max_length=64, allow_none=True)
    exposure = choice(EXPOSURES, required=True)
    language = choice(LANGUAGES, required=True)


def _unique_personnel(personnel: list[dict[str, Any]], field: str = "personnel") -> None:
    seen: set[str] = set()
    for index, person in enumerate(personnel):
        if person["external_id"] in seen:
            raise ma.ValidationError({field: {index: {"external_id": ["Listed twice."]}}})
        seen.add(person["external_id"])


class IncidentCreate(ma.Schema):
    """An incident report from a dispatch (CAD) system."""

    external_id = identifier(required=True, metadata={"description": "The CAD incident number, unique per agency"})
    type = choice(INCIDENT_TYPES, required=True)
    severity = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1, max=5))
    occurred_at = Instant(required=True, metadata={"description": "With its UTC offset"})
    region = text(max_length=64, required=True)
    personnel = RecordList(
        ma.fields.Nested(PersonnelCreate), required=True,
        validate=ma.validate.Length(min=1, max=MAX_PERSONNEL),
    )

    @ma.validates_schema
    def _personnel_once(self, data: dict[str, Any], **_kwargs: Any) -> None:
        _unique_personnel(data.get("personnel") or [])


class IncidentPatch(PatchSchema):
    """A change to an incident: add personnel, change severity, or cancel it."""

    severity = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=5))
    add_personnel = RecordList(
        ma.fields.Nested(PersonnelCreate), validate=ma.validate.Length(min=1, max=MAX_PERSONNEL),
    )
    status = choice(("cancelled",), metadata={"description": "Only `cancelled` can be set"})

    @ma.validates_schema
    def _cancel_alone(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "status" in data and len(data) > 1:
            raise ma.ValidationError("Cancel an incident on its own, without other changes.")
        _unique_personnel(data.get("add_personnel") or [], "add_personnel")


class IntakeHeaders(ma.Schema):
    """Request headers of the incident intake."""

    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        validate=[ma.validate.Length(min=1, max=255), FullMatch(r"^[\x21-\x7e]+$", error="Visible ASCII only.")],
    )
    prefer = ma.fields.String(
        data_key="Prefer",
        validate=ma.validate.Length(max=1000),
        metadata={"description": "RFC 7240. `wait=N` (N <= 30) holds the answer until the incident is planned or N "
                                 "seconds pass; the answer then says `Preference-Applied: wait=N`.",
                  "example": "wait=10"},
    )


class IncidentListArgs(ma.Schema):
    """Filters and cursor of the incident list."""

    status = choice(INCIDENT_STATUSES)
    at_risk = ma.fields.Boolean(metadata={
        "description": "Only incidents at risk (needs_attention, or not planned with the window closing within 12 h), "
                       "sorted by window close"})
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(validate=ma.validate.Length(max=200))


class WindowRead(ma.Schema):
    """When the group debriefing may take place."""

    opens_at = ma.fields.AwareDateTime(required=True)
    closes_at = ma.fields.AwareDateTime(required=True)


class ProblemRead(ma.Schema):
    """Why part of an incident could not be planned."""

    group = ma.fields.String(allow_none=True)
    kind = ma.fields.String(required=True)
    reasons = ma.fields.List(ma.fields.String(), required=True)


class IncidentRead(ma.Schema):
    """An incident as dispatch and coordinators see it: no personal data, only counts."""

    id = ma.fields.UUID(required=True)
    external_id = ma.fields.String(required=True)
    agency = ma.fields.String(required=True, attribute="agency_code")
    type = ma.fields.String(required=True)
    severity = ma.fields.Integer(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    region = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    window = ma.fields.Nested(WindowRead, required=True)
    personnel_count = ma.fields.Integer(required=True)
    sessions = ma.fields.List(ma.fields.Nested(SessionRead), required=True)
    problems = ma.fields.List(ma.fields.Nested(ProblemRead), required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)


class IncidentSummaryRead(ma.Schema):
    """An incident in a supervisor's list: which one, and the plan's state (its counts are at /status)."""

    id = ma.fields.UUID(required=True)
    external_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    window = ma.fields.Nested(WindowRead, required=True)
    at_risk = ma.fields.Boolean(required=True)


class IncidentListItem(ma.fields.Field):
    """An incident as the caller may list it: whole for dispatch and coordinators, its status for supervisors."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return (IncidentSummaryRead if getattr(value, "summary", False) else IncidentRead)().dump(value)


class IncidentPage(ma.Schema):
    """One page of incidents."""

    items = ma.fields.List(IncidentListItem(metadata={"oneOf": [
        {"$ref": "#/components/schemas/IncidentRead"}, {"$ref": "#/components/schemas/IncidentSummaryRead"},
    ]}), required=True, metadata={"description": "Supervisors get each incident's status only (IncidentSummaryRead)"})
    next_cursor = ma.fields.String(allow_none=True, required=True)


def count_of_people(description: str) -> ma.fields.Raw:
    """A count of people: a number, or "masked" when it could single out one or two of them."""
    return ma.fields.Raw(required=True, metadata={
        "description": description, "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "enum": ["masked"]}],
    })


class OfferCounts(ma.Schema):
    """Individual-session offers of the incident by state, as counts; together, every offer made."""

    scheduled = count_of_people("Offers not sent yet")
    sent = count_of_people("Offers sent, not answered yet")
    accepted = count_of_people("Offers taken up")
    declined = count_of_people("Offers declined")
    closed = count_of_people("Offers withdrawn unanswered (an opt-out, or the session or incident was cancelled)")


class CheckinCounts(ma.Schema):
    """Check-ins of the incident (2 days after the group session, and at 30 days) by state, as counts."""

    scheduled = count_of_people("Check-ins not sent yet")
    sent = count_of_people("Check-ins sent, not answered yet")
    completed = count_of_people("Check-ins answered")
    closed = count_of_people("Check-ins withdrawn unanswered (an opt-out, or the session or incident was cancelled)")


class SessionStatusRead(ma.Schema):
    """A group session, as counts."""

    id = ma.fields.UUID(required=True)
    kind = ma.fields.String(required=True)
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)
    status = ma.fields.String(required=True)
    participant_count = count_of_people("People invited; the sessions of one kind share out the people involved, "
                                        "so they are masked together")
    facilitator_count = ma.fields.Integer(required=True)


class IncidentStatusRead(ma.Schema):
    """The plan's state of an incident for supervisors: counts only, never people, nothing clinical.

    Each of `offers` and `checkins` sums to every offer (check-in) made; a count that could single
    out one or two people reads "masked", and so do enough others that none can be worked out.
    """

    id = ma.fields.UUID(required=True)
    status = ma.fields.String(required=True)
    window = ma.fields.Nested(WindowRead, required=True)
    at_risk = ma.fields.Boolean(required=True)
    sessions = ma.fields.List(ma.fields.Nested(SessionStatusRead), required=True)
    offers = ma.fields.Nested(OfferCounts, required=True)
    checkins = ma.fields.Nested(CheckinCounts, required=True)
