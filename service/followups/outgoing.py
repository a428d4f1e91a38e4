"""What every change of an incident's plan owes people, queued on the outbox in the same transaction.

`sync_incident` compares what each facilitator and participant was last told (a digest of
the session's time and place, kept on their assignment or invitation) with the plan as it
stands, and queues the difference: an assignment, an invitation, an update, a cancellation,
a reminder, the individual-session offer and the check-ins. Running it twice queues nothing
new, so every path that changes sessions can call it before it commits.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import quote

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from service.calendars.ics import Party
from service.calendars.render import CalendarEntry, agenda_from_rows, render_invitation
from service.calendars.service import organizer_for
from service.db import new_id
from service.facilitators import links as facilitator_links
from service.facilitators.models import Facilitator
from service.followups import messages, tokens
from service.followups.messages import Letter, ResponseLinks, SessionFacts
from service.followups.models import CANCELLED, CHECKIN, INVITATION, OFFER, OPEN, SCREENING, Followup
from service.incidents.models import Incident, Personnel
from service.outbox.models import EMAIL, ESCALATIONS, WEBHOOK, OutboxMessage
from service.outbox.service import Attachment, cancel_pending, email_payload, queue_messages
from service.planning.types import GROUP_KINDS
from service.sessions.models import Assignment, Session

if TYPE_CHECKING:
    from service.app import Services

OFF = "off"
REMINDER_BEFORE = timedelta(hours=24)
CHECKIN_AFTER = timedelta(days=2)
SCREENING_AFTER = timedelta(days=30)
# How long a participant's link stays good after its message is due.
OFFER_OPEN = timedelta(days=30)
CHECKIN_OPEN = timedelta(days=14)
SCREENING_OPEN = timedelta(days=30)
# A participant's page (service.followups.pages), and its opt-out page under it.
RESPONSES_PATH = "/r/"
UNSUBSCRIBE = "/unsubscribe"
ICS = "text/calendar; method={method}; charset=utf-8"


class MessageContext:
    """What composing messages needs from the running service, reached through the database session."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def base_url(self) -> str:
        """PUBLIC_BASE_URL: where participants' links point."""
        return self.services.config.public_base_url

    @property
    def organizer(self) -> Party:
        """The ORGANIZER of invitations, the same as in the feeds."""
        return organizer_for(self.services.config.mail_from)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of people's links, newest first (see service.signing)."""
        return self.services.signing_keys()


def context(db: DbSession) -> MessageContext:
    """The message context of a database session made by the app's session factory."""
    return db.info["messages"]


def session_state(session: Session, on: bool = True) -> str:
    """A digest of what a person is told about a session: its time and place, or OFF."""
    if not on or session.status == "cancelled":
        return OFF
    facts = f"{session.starts_at.isoformat()}|{session.ends_at.isoformat()}|{session.mode}|{session.region}"
    return hashlib.sha256(facts.encode()).hexdigest()[:32]


def session_facts(session: Session, zone: str, *, starts_at: datetime | None = None, ends_at: datetime | None = None) -> SessionFacts:
    """What messages say about a session."""
    return SessionFacts(
        kind=session.kind, starts_at=starts_at or session.starts_at, ends_at=ends_at or session.ends_at,
        mode=session.mode, region=session.region, timezone=zone,
        agenda=tuple((p.phase, p.starts_at, p.minutes) for p in agenda_from_rows(session.agenda)),
    )


@dataclass
class Outgoing:
    """The messages one change owes, inserted together at the end."""

    db: DbSession
    incident: Incident
    now: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)

    def email(self, *, dedup_key: str, kind: str, to: str, letter: Letter, due_at: datetime | None = None,
              attachments: Iterable[Attachment] = (), headers: Mapping[str, str] | None = None, **about: Any) -> None:
        """Owe an email."""
        self.rows.append(dict(
            id=new_id(), dedup_key=dedup_key, kind=kind, channel=EMAIL, recipient=to,
            payload=email_payload(subject=letter.subject, text=messages.as_text(letter), html=messages.as_html(letter),
                                  attachments=attachments, headers=headers),
            due_at=due_at or self.now, incident_id=self.incident.id, agency_id=self.incident.agency_id, **about,
        ))

    def to_participant(self, links: ResponseLinks, **email: Any) -> None:
        """Owe an email to a participant: it carries their one-click opt-out (RFC 8058)."""
        self.email(headers=unsubscribe_headers(links), **email)

    def webhook(self, *, dedup_key: str, kind: str, url: str, payload: dict[str, Any]) -> None:
        """Owe a webhook event to the agency."""
        self.rows.append(dict(
            id=new_id(), dedup_key=dedup_key, kind=kind, channel=WEBHOOK, recipient=url, payload=payload,
            due_at=self.now, incident_id=self.incident.id, agency_id=self.incident.agency_id,
        ))

    def flush(self) -> None:
        """Insert every owed message (duplicates by dedup key are dropped)."""
        queue_messages(self.db, self.rows, now=self.now)
        self.rows = []


def response_links(ctx: MessageContext, db: DbSession, followup: Followup, now: datetime) -> ResponseLinks:
    """The participant's signed links for one follow-up."""
    token = tokens.sign(ctx.keys, followup_id=followup.id, kind=followup.kind, expires_at=followup.expires_at)
    return ResponseLinks(respond=ctx.base_url + RESPONSES_PATH + quote(token))


def unsubscribe_headers(links: ResponseLinks) -> dict[str, str]:
    """The List-Unsubscribe headers of a participant's email: a bare POST to the URL opts out (RFC 8058)."""
    return {"List-Unsubscribe": f"<{links.respond}{UNSUBSCRIBE}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _invitation_ics(ctx: MessageContext, session: Session, *, uid_owner: int, state: str, attendee: Party,
                    languages: Iterable[str], zone: str, starts_at: datetime, ends_at: datetime, now: datetime) -> Attachment:
    entry = CalendarEntry(
        session_id=session.id, facilitator_id=uid_owner, kind=session.kind,
        state="confirmed" if state != OFF else ("cancelled" if session.status == "cancelled" else "released"),
        starts_at=starts_at, ends_at=ends_at, mode=session.mode, region=session.region, sequence=session.sequence,
        agenda=agenda_from_rows(session.agenda), timezone=zone, modified_at=session.updated_at or now,
    )
    document = render_invitation(entry, attendee=attendee, languages=languages, organizer=ctx.organizer)
    method = "REQUEST" if state != OFF else "CANCEL"
    return Attachment("invite.ics", ICS.format(method=method), document)


def participant_uid_owner(personnel_id: int) -> int:
    """The number in a participant's event UID: negative, so it never equals a facilitator's."""
    return -personnel_id


# -- the sync ---------------------------------------------------------------------------------------


def sync_incident(db: DbSession, incident: Incident, now: datetime) -> None:
    """Queue what the incident's current plan owes anyone and has not been queued yet; the caller commits.

    What was told is recorded on the rows the incident's lock covers (notified_state, alerted_state):
    that, not the outbox's dedup key, keeps a notice from going twice, so the keys of notices that
    may legitimately repeat (moved back, a problem that returns) end in a fresh id.
    """
    ctx = context(db)
    zone = incident.agency.timezone
    out = Outgoing(db, incident, now)
    sessions = _incident_sessions(db, incident)
    people = {p.id: p for p in incident.personnel}
    followups = {f.dedup_key: f for f in db.scalars(select(Followup).where(Followup.incident_id == incident.id))}
    cancelled = incident.status == "cancelled"
    if cancelled and incident.alerted_state != "cancelled":
        # Everything not yet sent is void, but for escalations (someone still needs a clinician);
        # the cancellation notices below are queued after this.
        cancel_pending(db, OutboxMessage.incident_id == incident.id, OutboxMessage.kind.not_in(ESCALATIONS))
        for f in followups.values():
            if f.status == OPEN and f.kind != INVITATION:
                f.status = CANCELLED

    for session in sessions:
        for assignment in session.assignments:
            _sync_facilitator(db, ctx, out, session, assignment, zone, now)
        _sync_invitations(db, ctx, out, session, people, followups, zone, now, cancelled=cancelled)
    if not cancelled:
        _sync_followups(db, ctx, out, incident, sessions, people, followups, now)
    _sync_alerts(out, incident, now)
    out.flush()


def _incident_sessions(db: DbSession, incident: Incident) -> list[Session]:
    """The incident's sessions with their teams (each with its facilitator) and participants."""
    query = select(Session).where(Session.incident_id == incident.id).order_by(Session.starts_at, Session.id)
    eager = (selectinload(Session.assignments), selectinload(Session.participants))
    # Read from the instance's dict: an expired session (after a rollback) must not be refreshed here.
    if not any(isinstance(held, Session) and inspect(held).dict.get("incident_id") == incident.id
               for held in (*db.new, *db.identity_map.values())):
        return list(db.scalars(query.options(*eager)))
    # The caller (a planner) holds some of them. Without populate_existing an eager load keeps the
    # collections a session already holds, with their changes, but still reads them, and joins each
    # assignment's facilitator: so only the sessions that lack a collection are loaded eagerly, and
    # the facilitators the planner's new assignments lack are read in one statement.
    sessions = list(db.scalars(query))
    bare = [s.id for s in sessions if _COLLECTIONS & inspect(s).unloaded]
    if bare:
        db.scalars(select(Session).where(Session.id.in_(bare)).options(*eager)).all()
    lacking = [a for s in sessions for a in s.assignments if "facilitator" in inspect(a).unloaded]
    if lacking:
        facilitators = {f.id: f for f in db.scalars(
            select(Facilitator).where(Facilitator.id.in_({a.facilitator_id for a in lacking})))}
        for assignment in lacking:
            set_committed_value(assignment, "facilitator", facilitators.get(assignment.facilitator_id))
    return sessions


_COLLECTIONS = frozenset(("assignments", "participants"))


def _sync_facilitator(db: DbSession, ctx: MessageContext, out: Outgoing, session: Session, assignment: Assignment,
                      zone: str, now: datetime) -> None:
    state = session_state(session, assignment.active)
    previous = assignment.notified_state
    if previous == state:
        return
    assignment.notified_state = state
    fid = assignment.facilitator_id
    # A reminder is owed for one time only: a change voids the pending one. Only this function
    # queues reminders, each after recording a state on an assignment of the same session and
    # facilitator, and a state is never cleared; so while none of those assignments was ever
    # told anything, nothing can be pending and the statement is skipped (every new plan).
    if previous is not None or any(other.notified_state is not None for other in session.assignments
                                   if other is not assignment and other.facilitator_id == fid):
        cancel_pending(db, OutboxMessage.kind == "reminder", OutboxMessage.session_id == session.id,
                       OutboxMessage.facilitator_id == fid)
    if state == OFF and previous in (None, OFF):
        return  # never told, nothing to take back
    change = "cancelled" if state == OFF else ("new" if previous in (None, OFF) else "moved")
    facilitator: Facilitator = assignment.facilitator
    lang = messages.language(facilitator.languages)
    facts = session_facts(session, zone, starts_at=assignment.starts_at, ends_at=assignment.ends_at)
    attachment = _invitation_ics(
        ctx, session, uid_owner=fid, state=state, attendee=Party(facilitator.name, facilitator.email),
        languages=facilitator.languages, zone=zone, starts_at=assignment.starts_at, ends_at=assignment.ends_at, now=now,
    )
    about = dict(session_id=session.id, facilitator_id=fid)
    letter = messages.assignment(lang, facts, change=change, reference=str(session.id))
    out.email(dedup_key=f"facilitator:{assignment.id}:{session.sequence}:{state}:{new_id().hex}", kind=f"assignment_{change}",
              to=facilitator.email, letter=_with_page_links(ctx, db, letter, lang=lang, facilitator_id=fid,
                                                            session=session if state != OFF else None, sent_at=now, now=now),
              attachments=[attachment], **about)
    if state != OFF and session.starts_at - REMINDER_BEFORE > now:
        due_at = session.starts_at - REMINDER_BEFORE
        letter = messages.assignment(lang, facts, change="reminder", reference=str(session.id))
        out.email(dedup_key=f"reminder:{assignment.id}:{session.sequence}:{state}:{new_id().hex}", kind="reminder", to=facilitator.email,
                  letter=_with_page_links(ctx, db, letter, lang=lang, facilitator_id=fid, session=session, sent_at=due_at, now=now),
                  due_at=due_at, **about)


def _with_page_links(ctx: MessageContext, db: DbSession, letter: Letter, *, lang: str, facilitator_id: int,
                     session: Session | None, sent_at: datetime, now: datetime) -> Letter:
    """A facilitator's letter with their signed links: to the session's page (unless they are off it) and to their own page."""
    expires_at = facilitator_links.expiry(sent_at, session.ends_at if session is not None else None)
    token = facilitator_links.sign(ctx.keys, facilitator_id=facilitator_id, expires_at=expires_at)
    session_url = None if session is None else ctx.base_url + facilitator_links.session_path(token, session.id)
    links = messages.facilitator_links(lang, session_url=session_url, own_url=ctx.base_url + facilitator_links.own_path(token))
    return replace(letter, links=letter.links + links)


def _sync_invitations(db: DbSession, ctx: MessageContext, out: Outgoing, session: Session, people: dict[int, Personnel],
                      followups: dict[str, Followup], zone: str, now: datetime, *, cancelled: bool) -> None:
    members = {sp.personnel_id for sp in session.participants}
    if not cancelled and session.status == "scheduled" and session.starts_at >= now:
        for pid in sorted(members):
            key = f"invitation:{session.id}:{pid}"
            if key not in followups and people[pid].opted_out_at is None:
                followups[key] = _new_followup(db, out.incident, pid, INVITATION, key, session_id=session.id,
                                               due_at=now, expires_at=session.ends_at, now=now)
    for followup in [f for f in followups.values() if f.kind == INVITATION and f.session_id == session.id]:
        person = people.get(followup.personnel_id)
        if person is None:
            continue
        state = session_state(session, followup.personnel_id in members)
        previous = followup.notified_state
        if previous == state:
            continue
        followup.notified_state = state
        if state == OFF:
            if followup.status == OPEN:
                followup.status = CANCELLED
            if previous in (None, OFF):
                continue
        else:
            followup.expires_at = session.ends_at
            if followup.status == CANCELLED and person.opted_out_at is None:
                followup.status = OPEN  # invited again after a removal
        if person.opted_out_at is not None:
            continue
        change = "cancelled" if state == OFF else ("new" if previous in (None, OFF) else "moved")
        lang = messages.language(person.language)
        attachment = _invitation_ics(
            ctx, session, uid_owner=participant_uid_owner(person.id), state=state, attendee=Party(person.name, person.email),
            languages=[lang], zone=zone, starts_at=session.starts_at, ends_at=session.ends_at, now=now,
        )
        links = response_links(ctx, db, followup, now)
        out.to_participant(links, dedup_key=f"participant:{followup.id}:{session.sequence}:{state}:{new_id().hex}",
                           kind=f"invitation_{change}", to=person.email,
                           letter=messages.invitation(lang, session_facts(session, zone), links, change=change),
                           attachments=[attachment], session_id=session.id, personnel_id=person.id, followup_id=followup.id)


def _sync_followups(db: DbSession, ctx: MessageContext, out: Outgoing, incident: Incident, sessions: list[Session],
                    people: dict[int, Personnel], followups: dict[str, Followup], now: datetime) -> None:
    """The offer and the 2-day check-in once a person has a group session; the 30-day screening for everyone."""
    group_end: dict[int, datetime] = {}
    for session in sessions:
        if session.kind in GROUP_KINDS and session.status != "cancelled":
            for sp in session.participants:
                end = group_end.get(sp.personnel_id)
                group_end[sp.personnel_id] = session.ends_at if end is None else max(end, session.ends_at)
    screening_due = max(incident.occurred_at + SCREENING_AFTER, now)
    for pid, person in people.items():
        if person.opted_out_at is not None:
            continue
        checkin = followups.get(f"{CHECKIN}:{pid}")
        if pid not in group_end and checkin is not None and checkin.status == OPEN and checkin.due_at > now:
            # "Since the group session" about a session that never took place: not sent.
            checkin.status = CANCELLED
            cancel_pending(db, OutboxMessage.followup_id == checkin.id)
        lang = messages.language(person.language)
        wanted = [(SCREENING, screening_due, SCREENING_OPEN)]
        if pid in group_end:
            wanted = [(OFFER, now, OFFER_OPEN), (CHECKIN, max(group_end[pid] + CHECKIN_AFTER, now), CHECKIN_OPEN)] + wanted
        for kind, due_at, open_for in wanted:
            key = f"{kind}:{pid}"
            followup = followups.get(key)
            if followup is None:
                followup = followups[key] = _new_followup(db, incident, pid, kind, key, session_id=None, due_at=due_at,
                                                          expires_at=due_at + open_for, now=now)
                dedup_key = f"{key}:{followup.id}"
            elif kind == CHECKIN and followup.status == CANCELLED and followup.responded_at is None:
                # A group session again after theirs was called off: the check-in is owed again.
                followup.status, followup.due_at, followup.expires_at = OPEN, due_at, due_at + open_for
                dedup_key = f"{key}:{followup.id}:{due_at.isoformat()}:{new_id().hex}"
            elif kind == CHECKIN and followup.status == OPEN and followup.due_at != due_at and followup.due_at > now:
                # The group session moved: the check-in not yet sent moves with it, with a link that lasts as long.
                followup.due_at, followup.expires_at = due_at, due_at + open_for
                cancel_pending(db, OutboxMessage.followup_id == followup.id)
                dedup_key = f"{key}:{followup.id}:{due_at.isoformat()}:{new_id().hex}"
            else:
                continue
            links = response_links(ctx, db, followup, now)
            out.to_participant(links, dedup_key=dedup_key, kind=kind, to=person.email,
                               letter=_followup_letter(kind, lang, links), due_at=due_at, personnel_id=pid,
                               followup_id=followup.id)


def _followup_letter(kind: str, lang: str, links: ResponseLinks) -> Letter:
    if kind == OFFER:
        return messages.offer(lang, links, peer=links.action("accept", choice="peer"),
                              clinician=links.action("accept", choice="clinician"))
    if kind == CHECKIN:
        return messages.checkin(lang, links)
    return messages.screening(lang, links)


def _new_followup(db: DbSession, incident: Incident, personnel_id: int, kind: str, key: str, *,
                  session_id: uuid.UUID | None, due_at: datetime, expires_at: datetime, now: datetime) -> Followup:
    followup = Followup(
        id=new_id(), dedup_key=key, incident_id=incident.id, personnel_id=personnel_id, kind=kind, session_id=session_id,
        due_at=due_at, expires_at=expires_at, status=OPEN, contact_requested=False, created_at=now,
    )
    db.add(followup)
    return followup


def _sync_alerts(out: Outgoing, incident: Incident, now: datetime) -> None:
    """Tell the coordinators (email) and the agency's systems (webhook) when the plan's problems change."""
    problems = incident.problems or []
    if incident.status == "cancelled":
        state = "cancelled"
    elif problems:
        state = hashlib.sha256(repr([(p["group"], p["kind"], p["reasons"]) for p in problems]).encode()).hexdigest()[:32]
    else:
        state = OFF
    previous = incident.alerted_state
    if previous == state:
        return
    incident.alerted_state = state
    agency = incident.agency
    if problems and state != "cancelled" and agency.coordinator_email:
        from service.incidents.service import debriefing_window  # incidents builds on this module
        from service.sessions.service import policy_for

        window = debriefing_window(incident.occurred_at, policy_for(agency))
        letter = messages.planning_problem(
            external_id=incident.external_id, incident_type=incident.type, closes_at=window.closes_at,
            timezone=agency.timezone,
            problems=[(p["kind"], p["group"] or "-", p["reasons"]) for p in problems],
        )
        out.email(dedup_key=f"problem:{incident.id}:{state}:{new_id().hex}", kind="planning_problem", to=agency.coordinator_email,
                  letter=letter)
    if agency.webhook_url:
        out.webhook(dedup_key=f"status:{incident.id}:{state}:{new_id().hex}", kind="incident_status", url=agency.webhook_url,
                    payload={
                        "type": "incident.status_changed", "timestamp": now.isoformat(),
                        "data": {"incident_id": str(incident.id), "external_id": incident.external_id,
                                 "status": incident.status, "problems": problems},
                    })


def booking_failed(db: DbSession, *, incident: Incident, person: Personnel, followup: Followup, now: datetime) -> None:
    """An accepted individual session has no facilitator: tell the person, and the coordinators who arrange it."""
    followup.booked_session_id = None
    out = Outgoing(db, incident, now)
    if person.opted_out_at is None:
        links = response_links(context(db), db, followup, now)
        out.to_participant(links, dedup_key=f"booking_pending:{followup.id}:{new_id().hex}", kind="booking_pending",
                           to=person.email, letter=messages.booking_pending(messages.language(person.language), links),
                           personnel_id=person.id, followup_id=followup.id)
        if incident.agency.coordinator_email:
            out.email(dedup_key=f"booking_unassigned:{followup.id}:{new_id().hex}", kind="booking_unassigned",
                      to=incident.agency.coordinator_email,
                      letter=messages.unassigned(what="booking", name=person.name, email=person.email, phone=person.phone,
                                                 external_id=incident.external_id),
                      personnel_id=person.id, followup_id=followup.id)
    out.flush()


def individual_unstaffed(db: DbSession, *, incident: Incident, session: Session, now: datetime) -> None:
    """An individual session lost its facilitator and no one can replace them (the session is cancelled)."""
    offer = db.scalar(select(Followup).where(Followup.booked_session_id == session.id))
    person = next((p for p in incident.personnel if offer is not None and p.id == offer.personnel_id), None)
    if offer is not None and person is not None:
        booking_failed(db, incident=incident, person=person, followup=offer, now=now)
