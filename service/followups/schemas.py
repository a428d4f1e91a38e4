"""Schemas of participants' responses and of the coordinators' follow-up list."""

from __future__ import annotations

import marshmallow as ma

from service.fields import StrictBoolean, choice
from service.sessions.schemas import LocationRead
from service.followups.models import KINDS, STATUSES

ACTIONS = ("accept", "decline", "answer", "opt_out")


class ResponseSessionRead(ma.Schema):
    """The session an invitation or a booked individual session is about."""

    kind = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)
    location = ma.fields.Nested(LocationRead, required=True)


class ResponseRead(ma.Schema):
    """A participant's own follow-up, as their link shows it: what can be done now, never what was answered."""

    kind = ma.fields.String(required=True, metadata={"enum": list(KINDS)})
    status = ma.fields.String(required=True, metadata={"enum": list(STATUSES)})
    language = ma.fields.String(required=True, metadata={"enum": ["fr", "en"]})
    expires_at = ma.fields.AwareDateTime(required=True)
    actions = ma.fields.List(ma.fields.String(metadata={"enum": list(ACTIONS)}), required=True, metadata={
        "description": "What the participant can still do with this link (a screening can be answered again until it "
                       "expires)"})
    session = ma.fields.Nested(ResponseSessionRead, allow_none=True, required=True)
    choice = ma.fields.String(allow_none=True, required=True, metadata={"enum": ["peer", "clinician", None]})
    questions = ma.fields.List(ma.fields.String(), required=True,
                               metadata={"description": "The PC-PTSD-5 items of a screening check-in, in order"})
    opted_out = ma.fields.Boolean(required=True)


class ResponsePreviewArgs(ma.Schema):
    """The action a message's link proposes; a GET only shows it, the participant confirms with a POST."""

    action = choice(ACTIONS)
    contact_requested = choice(("true", "false"))
    choice = choice(("peer", "clinician"))


class ResponseCreate(ma.Schema):
    """A participant's answer."""

    action = choice(ACTIONS, required=True)
    choice = choice(("peer", "clinician"), metadata={"description": "Whom to meet, when accepting the individual offer"})
    answers = ma.fields.List(StrictBoolean(), validate=ma.validate.Length(equal=5),
                             metadata={"description": "The five PC-PTSD-5 answers (true = yes), screening check-in only"})
    contact_requested = StrictBoolean(metadata={"description": "Ask a clinician to contact you"})


class FollowupRead(ma.Schema):
    """One follow-up of a participant."""

    id = ma.fields.UUID(required=True)
    kind = ma.fields.String(required=True, metadata={"enum": list(KINDS)})
    session_id = ma.fields.UUID(allow_none=True, required=True)
    due_at = ma.fields.AwareDateTime(required=True)
    status = ma.fields.String(required=True, metadata={"enum": list(STATUSES)})
    delivered = ma.fields.Boolean(required=True, metadata={"description": "Its message reached the mail server"})
    delivery_failed = ma.fields.Boolean(required=True, metadata={
        "description": "Every attempt to send its message failed (dead letter): reach the person another way"})
    responded_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    choice = ma.fields.String(allow_none=True, required=True)
    booked_session_id = ma.fields.UUID(allow_none=True, required=True)


class ParticipantFollowupsRead(ma.Schema):
    """A participant and their follow-ups (participant-level data: coordinators only, audited)."""

    external_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    language = ma.fields.String(required=True)
    opted_out_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    needs_clinical_followup = ma.fields.Boolean(required=True, metadata={
        "description": "A clinician was asked to contact the person (never why: answers and screen results are not "
                       "shown to coordinators); it stays true once raised, whatever the person answers or does later"})
    followups = ma.fields.List(ma.fields.Nested(FollowupRead), required=True)


class FollowupListArgs(ma.Schema):
    """Page of the follow-up list."""

    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(validate=ma.validate.Length(max=200))


class FollowupPage(ma.Schema):
    """A page of participants with their follow-ups."""

    items = ma.fields.List(ma.fields.Nested(ParticipantFollowupsRead), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
