"""Session schemas."""

import marshmallow as ma

from service.fields import Instant


class LocationRead(ma.Schema):
    """Where a session takes place: in person in a region, or virtual."""

    mode = ma.fields.String(required=True, metadata={"enum": ["in_person", "virtual"]})
    region = ma.fields.String(required=True)


class TeamMemberRead(ma.Schema):
    """A facilitator on the team."""

    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)


class AgendaItemRead(ma.Schema):
    """One phase of the session."""

    phase = ma.fields.String(required=True)
    starts_at = ma.fields.AwareDateTime(required=True)
    minutes = ma.fields.Integer(required=True)


class SessionRead(ma.Schema):
    """A session: time, place, team and agenda; people only as a count."""

    id = ma.fields.UUID(required=True)
    incident_id = ma.fields.UUID(required=True)
    kind = ma.fields.String(required=True, metadata={"enum": ["defusing", "debriefing", "individual"]})
    group = ma.fields.String(allow_none=True, required=True)
    language = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": ["scheduled", "cancelled", "completed"]})
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)
    sequence = ma.fields.Integer(required=True)
    location = ma.fields.Nested(LocationRead, required=True)
    facilitators = ma.fields.List(ma.fields.Nested(TeamMemberRead), required=True)
    participant_count = ma.fields.Integer(required=True)
    agenda = ma.fields.List(ma.fields.Nested(AgendaItemRead), required=True)


class RescheduleArgs(ma.Schema):
    """The new start of a session."""

    starts_at = Instant(required=True)
