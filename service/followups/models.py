"""Follow-ups owed to participants, their answers, and escalations to clinicians.

Personal data: these rows say who was invited, who answered what and who screened positive.
Coordinators see (audited) the statuses, the answers to invitations and the offer, and whether
a clinician follows up, never the check-ins' answers; a participant's link shows what can be
done now, not what was answered; supervisors see none of it. Retention erases them.
A screening keeps its latest answers; the escalation it raised is kept whatever comes later.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, new_id

INVITATION = "invitation"  # to a session the participant is expected at (group or individual)
OFFER = "offer"  # of an individual session, with a peer or a clinician of their choice
CHECKIN = "checkin"  # 2 days after their group session
SCREENING = "screening"  # 30 days after the incident, with the PC-PTSD-5
KINDS = (INVITATION, OFFER, CHECKIN, SCREENING)

OPEN = "open"  # owed or sent, no answer yet
ACCEPTED = "accepted"
DECLINED = "declined"
ANSWERED = "answered"
CANCELLED = "cancelled"  # the person opted out, the incident or session was cancelled
STATUSES = (OPEN, ACCEPTED, DECLINED, ANSWERED, CANCELLED)


class Followup(Base):
    """One thing owed to one participant that they may answer through their signed link."""

    __tablename__ = "followups"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # One invitation per (session, person), one offer, check-in and screening per person.
    dedup_key: Mapped[str] = mapped_column(String(120), unique=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    personnel_id: Mapped[int] = mapped_column(ForeignKey("personnel.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default=OPEN)
    # What the participant was last told about the session (see followups.service.session_state).
    notified_state: Mapped[str | None] = mapped_column(String(40))
    choice: Mapped[str | None] = mapped_column(String(10))
    answers: Mapped[list[bool] | None] = mapped_column(JSON)
    positive: Mapped[bool | None] = mapped_column(Boolean)
    contact_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    booked_session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # What the answers of a screening were given to: the instrument and its version, the language
    # of the text shown, the cut-point applied, and whether that language's text is validated.
    screen_instrument: Mapped[str | None] = mapped_column(String(20))
    screen_version: Mapped[str | None] = mapped_column(String(10))
    screen_language: Mapped[str | None] = mapped_column(String(2))
    screen_cut_point: Mapped[int | None] = mapped_column(Integer)
    screen_validated: Mapped[bool | None] = mapped_column(Boolean)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Escalation(Base):
    """A participant a clinician must contact: a positive screen or a request for contact."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    personnel_id: Mapped[int] = mapped_column(ForeignKey("personnel.id", ondelete="CASCADE"), index=True)
    followup_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("followups.id", ondelete="CASCADE"), unique=True)
    reason: Mapped[str] = mapped_column(String(20))
    # None when no active clinician was found: the coordinators are alerted instead.
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("facilitators.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
