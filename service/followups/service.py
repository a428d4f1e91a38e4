"""Participants' answers through their signed links, escalations, and the coordinators' follow-up list.

A participant acts with the link of one follow-up: accept or decline an invitation or the
individual-session offer (accepting the offer books the session), answer a check-in, or opt
out of all contact. A positive screen or a request for contact escalates to a clinician:
the clinician of the person's group session, else any active clinician who may serve the
agency. Nothing of this reaches a supervisor, and coordinators see only that a clinician
will follow up, never the answers.

A leaked link must cost as little as possible: what a link shows is what can be done with it
now, never what was answered. An escalation, once raised, stands: a later answer to the
screening (which can be answered again until it expires, the latest answers standing) or an
opt-out never takes it back.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session as DbSession

from service.audit.service import record_read
from service.auth.service import Principal
from service.errors import Conflict, DomainError, InvalidInput, NotFound
from service.facilitators.models import Facilitator
from service.facilitators.service import to_profile
from service.followups import messages, tokens
from service.followups.models import (
    ACCEPTED, ANSWERED, CANCELLED, CHECKIN, DECLINED, INVITATION, OFFER, OPEN, SCREENING, Escalation, Followup,
)
from service.followups.outgoing import ESCALATIONS, Outgoing, booking_failed, context, sync_incident
from service.followups.screening import PC_PTSD_5
from service.incidents.models import Incident, Personnel
from service.outbox.models import DEAD, SENT, OutboxMessage
from service.outbox.service import cancel_pending
from service.pagination import decode_cursor, encode_cursor, row_id
from service.planning import FacilitatorPool
from service.planning.eligibility import Involvement, certification_reasons, conflict_reasons
from service.sessions import service as sessions
from service.sessions.models import Assignment, Session, SessionParticipant

log = logging.getLogger("service.followups")

SCREEN_ITEMS = len(PC_PTSD_5.items)
CHOICES = ("peer", "clinician")  # whom a participant may meet in an individual session
ACTIONS = {
    INVITATION: ("accept", "decline", "opt_out"),
    OFFER: ("accept", "decline", "opt_out"),
    CHECKIN: ("answer", "opt_out"),
    SCREENING: ("answer", "opt_out"),
}


class Gone(DomainError):
    """The link has expired."""

    status, slug, title = 410, "gone", "Gone"


class TimeTaken(Conflict):
    """The start a participant chose for their individual session was taken meanwhile."""


@dataclass(frozen=True, slots=True)
class ResponseView:
    """What a participant sees through their link: their own follow-up, nothing about anyone else."""

    kind: str
    status: str
    language: str
    expires_at: datetime
    actions: list[str]
    session: dict[str, Any] | None
    choice: str | None
    questions: list[str]
    opted_out: bool
    # For the participant's pages (the API shows only the fields above):
    timezone: str = "UTC"  # the agency's, where times are shown
    occurred_at: datetime | None = None
    due_at: datetime | None = None
    answerable: bool = False  # its main action (accept, answer) can be taken now
    cancellable: bool = False  # an offer whose booked session can still be cancelled
    contact_expected: bool = False  # just answered, and a clinician is asked to reach the person (never on a GET)


def _claim(db: DbSession, token: str, now: datetime, *, expired_ok: bool = False) -> tokens.ResponseClaim:
    try:
        return tokens.verify(context(db).keys, token, now=now, expired_ok=expired_ok)
    except tokens.InvalidToken:
        raise NotFound("This link is not valid.") from None
    except tokens.ExpiredToken:
        raise Gone("This link has expired. A coordinator of the support team can still be reached.") from None


def _load(db: DbSession, claim: tokens.ResponseClaim, now: datetime, *, expired_ok: bool = False) -> Followup:
    followup = db.get(Followup, claim.followup_id)
    if followup is None or followup.kind != claim.kind:
        raise NotFound("This link is not valid.")
    # The follow-up's own end counts too: an invitation ends with its session, which may have moved earlier.
    if followup.expires_at <= now and not expired_ok:
        raise Gone("This link has expired. A coordinator of the support team can still be reached.")
    return followup


def _session_view(db: DbSession, session_id: uuid.UUID | None, zone: ZoneInfo) -> dict[str, Any] | None:
    session = db.get(Session, session_id) if session_id is not None else None
    if session is None:
        return None
    return {
        "kind": session.kind, "status": session.status, "starts_at": session.starts_at.astimezone(zone),
        "ends_at": session.ends_at.astimezone(zone), "location": {"mode": session.mode, "region": session.region},
    }


def _view(db: DbSession, followup: Followup, person: Personnel, incident: Incident, now: datetime, *,
          acted: bool = False) -> ResponseView:
    """What the link shows now (`acted`: in answer to the person's own action, which may say what it caused)."""
    lang = messages.language(person.language)
    zone = ZoneInfo(incident.agency.timezone)
    opted_out = person.opted_out_at is not None
    open_ = followup.status == OPEN or (followup.status in (ACCEPTED, DECLINED) and followup.kind == INVITATION) or (
        followup.status == DECLINED and followup.kind == OFFER) or (
        followup.status == ANSWERED and followup.kind == SCREENING)
    if opted_out or incident.status == "cancelled":
        actions: list[str] = []
    else:
        actions = list(ACTIONS[followup.kind]) if open_ else ["opt_out"]
    session = db.get(Session, followup.booked_session_id or followup.session_id) if (
        followup.booked_session_id or followup.session_id) else None
    upcoming = session is not None and session.status == "scheduled" and session.starts_at > now
    if followup.kind == INVITATION:
        answerable = bool(actions) and open_ and upcoming
    elif followup.kind == OFFER:
        answerable = bool(actions) and open_
    else:
        answerable = bool(actions) and open_ and followup.due_at <= now
    return ResponseView(
        kind=followup.kind, status=followup.status, language=lang, expires_at=followup.expires_at.astimezone(zone),
        actions=actions,
        session=_session_view(db, followup.booked_session_id or followup.session_id, zone),
        choice=followup.choice,
        questions=list(messages.SCREEN_ITEMS[lang]) if followup.kind == SCREENING else [],
        opted_out=opted_out,
        timezone=incident.agency.timezone, occurred_at=incident.occurred_at.astimezone(zone),
        due_at=followup.due_at.astimezone(zone), answerable=answerable,
        cancellable=bool(actions) and followup.kind == OFFER and followup.status == ACCEPTED and upcoming,
        # Only in answer to the person's own action: a GET of a leaked link must not tell that a clinician will call.
        contact_expected=acted and followup.kind in (CHECKIN, SCREENING) and _escalation_of(db, followup) is not None,
    )


def view(db: DbSession, *, token: str, now: datetime, expired_ok: bool = False) -> ResponseView:
    """The follow-up a link opens, as its participant sees it (`expired_ok`: also once expired, for opting out)."""
    followup = _load(db, _claim(db, token, now, expired_ok=expired_ok), now, expired_ok=expired_ok)
    person = db.get(Personnel, followup.personnel_id)
    incident = db.get(Incident, followup.incident_id)
    assert person is not None and incident is not None
    return _view(db, followup, person, incident, now)


def offer_times(db: DbSession, *, token: str, choice: str, now: datetime) -> list[datetime]:
    """The starts an open offer can be booked at now with a facilitator of `choice`, earliest first; books nothing."""
    followup = _load(db, _claim(db, token, now), now)
    person = db.get(Personnel, followup.personnel_id)
    incident = db.get(Incident, followup.incident_id)
    assert person is not None and incident is not None
    if followup.kind != OFFER:
        raise InvalidInput("Only the offer of an individual session has times.", errors={"action": ["Not an offer."]})
    if choice not in CHOICES:
        raise InvalidInput("Say whom you would like to meet.", errors={"choice": ["Required: peer or clinician."]})
    if not _view(db, followup, person, incident, now).answerable:
        raise Conflict("This offer can no longer be taken up.")
    return sessions.individual_starts(db, incident=incident, person=person, facilitator_kind=choice, now=now)


def respond(db: DbSession, *, token: str, answer: Mapping[str, Any], now: datetime) -> ResponseView:
    """Apply a participant's answer (accept, decline, answer, opt_out) and queue what it causes.

    Besides the API's fields, `answer` may carry `starts_at` (accepting the offer at one of
    `offer_times`) and `language` (the language of the screening text the person answered).
    """
    action = answer["action"]

    def apply(incident: Incident, person: Personnel, followup: Followup) -> None:
        if action not in ACTIONS[followup.kind]:
            raise InvalidInput("That action does not apply to this link.",
                               errors={"action": [f"Must be one of: {', '.join(ACTIONS[followup.kind])}."]})
        _check_open(incident, person)
        if action == "opt_out":
            _opt_out(db, incident, person, now)
        elif followup.kind == INVITATION:
            _answer_invitation(db, incident, followup, action, now)
        elif followup.kind == OFFER:
            _answer_offer(db, incident, person, followup, action, answer.get("choice"), now, answer.get("starts_at"))
        else:
            _answer_checkin(db, incident, person, followup, answer, now)

    # Opting out works from every message ever sent, however old: "stop all contact" never expires.
    return _act(db, token, now, apply, expired_ok=action == "opt_out", books=action == "accept")


def cancel_booked(db: DbSession, *, token: str, now: datetime) -> ResponseView:
    """Cancel the individual session booked through an offer (as declining its invitation does)."""

    def apply(incident: Incident, person: Personnel, followup: Followup) -> None:
        if followup.kind != OFFER:
            raise InvalidInput("Only an offer's booked session can be cancelled here.", errors={"action": ["Not an offer."]})
        _check_open(incident, person)
        session = db.get(Session, followup.booked_session_id) if followup.booked_session_id else None
        if followup.status != ACCEPTED or session is None or session.status != "scheduled" or session.starts_at <= now:
            raise Conflict("There is no upcoming session to cancel.")
        _cancel_individual(db, incident, followup.personnel_id, session, now)

    return _act(db, token, now, apply)


def _act(db: DbSession, token: str, now: datetime, apply: Callable[[Incident, Personnel, Followup], None], *,
         expired_ok: bool = False, books: bool = False) -> ResponseView:
    """Apply a participant's action to the follow-up of a link, under the incident's lock, and queue what it causes.

    `books`: the action accepts, which on the offer books an individual session from the pool:
    only that runs alone on the pool (`sessions.retrying`). Answers, declines, cancellations and
    opt-outs book no one, so a public link cannot make every planner wait.
    """
    claim = _claim(db, token, now, expired_ok=expired_ok)
    incident_id = _load(db, claim, now, expired_ok=expired_ok).incident_id

    def attempt() -> ResponseView:
        incident = sessions.lock_incident(db, incident_id)
        assert incident is not None
        followup = _load(db, claim, now, expired_ok=expired_ok)
        db.refresh(followup)
        person = next(p for p in incident.personnel if p.id == followup.personnel_id)
        apply(incident, person, followup)
        sync_incident(db, incident, now)
        sessions.commit(db)
        return _view(db, followup, person, incident, now, acted=True)

    try:
        return sessions.retrying(db, attempt) if books and claim.kind == OFFER else attempt()
    except DomainError:
        # Nothing of a refused action stays in the session: the caller may go on reading with it.
        db.rollback()
        raise


def _check_open(incident: Incident, person: Personnel) -> None:
    if incident.status == "cancelled":
        raise Conflict("This follow-up was withdrawn.")
    if person.opted_out_at is not None:
        raise Conflict("You opted out of all contact; nothing more will be sent to you.")


def _opt_out(db: DbSession, incident: Incident, person: Personnel, now: datetime) -> None:
    person.opted_out_at = now
    for followup in db.scalars(select(Followup).where(Followup.personnel_id == person.id, Followup.status == OPEN)):
        followup.status = CANCELLED
    # Everything owed to them but an escalation already raised: a clinician asked to reach someone
    # who screened positive or asked for help still does (safety first); the person may tell them no.
    cancel_pending(db, OutboxMessage.personnel_id == person.id, OutboxMessage.kind.not_in(ESCALATIONS))
    # A facilitator must not wait for someone who will not come.
    sessions.cancel_individual_sessions(db, incident=incident, personnel_id=person.id, now=now)


def _answer_invitation(db: DbSession, incident: Incident, followup: Followup, action: str, now: datetime) -> None:
    if followup.status == CANCELLED:
        raise Conflict("You are no longer expected at this session.")
    session = db.get(Session, followup.session_id)
    if session is None or session.status != "scheduled" or session.starts_at <= now:
        raise Conflict("This session can no longer be answered.")
    followup.status = ACCEPTED if action == "accept" else DECLINED
    followup.responded_at = now
    if session.kind == "individual" and action == "decline":
        _cancel_individual(db, incident, followup.personnel_id, session, now)


def _cancel_individual(db: DbSession, incident: Incident, personnel_id: int, session: Session, now: datetime) -> None:
    """The person calls their individual session off: it is cancelled, and the offer may be taken up again."""
    # One person's session: without them it is off, and its facilitator is freed and told.
    sessions.cancel_individual_sessions(db, incident=incident, personnel_id=personnel_id, now=now, session_id=session.id)
    related = db.scalars(select(Followup).where(
        Followup.personnel_id == personnel_id,
        or_(Followup.session_id == session.id, Followup.booked_session_id == session.id)))
    for followup in related:
        if followup.kind == INVITATION and followup.status in (OPEN, ACCEPTED):
            followup.status, followup.responded_at = DECLINED, now
        elif followup.kind == OFFER and followup.status == ACCEPTED:
            followup.status, followup.responded_at = DECLINED, now


def _answer_offer(db: DbSession, incident: Incident, person: Personnel, followup: Followup, action: str,
                  choice: str | None, now: datetime, starts_at: datetime | None = None) -> None:
    if followup.status in (ACCEPTED, CANCELLED):
        raise Conflict("This offer was already taken up." if followup.status == ACCEPTED else "This offer was withdrawn.")
    if action == "decline":
        if followup.status == DECLINED:
            raise Conflict("You already declined this offer.")
        followup.status = DECLINED
        followup.responded_at = now
        return
    if choice not in CHOICES:
        raise InvalidInput("Say whom you would like to meet.", errors={"choice": ["Required: peer or clinician."]})
    followup.status = ACCEPTED
    followup.choice = choice
    followup.responded_at = now
    booked = sessions.book_individual(db, incident=incident, person=person, facilitator_kind=choice, now=now,
                                      starts_at=starts_at)
    if booked is not None:
        followup.booked_session_id = booked.id
        return
    if starts_at is not None:
        raise TimeTaken("That time is no longer free; choose another.")
    # No one free within the window: the coordinators arrange it, and the person is told so.
    booking_failed(db, incident=incident, person=person, followup=followup, now=now)


def _answer_checkin(db: DbSession, incident: Incident, person: Personnel, followup: Followup,
                    answer: Mapping[str, Any], now: datetime) -> None:
    # The screening takes new answers until it expires (the latest stand); a check-in takes one.
    again = followup.kind == SCREENING and followup.status == ANSWERED
    if followup.status != OPEN and not again:
        raise Conflict("This check-in was already answered." if followup.status == ANSWERED else "This check-in was withdrawn.")
    if followup.due_at > now:
        raise Conflict("This check-in is not open yet.")
    contact = answer.get("contact_requested")
    answers = answer.get("answers")
    if followup.kind == SCREENING:
        if answers is not None:
            shown = messages.language(answer.get("language") or person.language)
            followup.answers = [bool(a) for a in answers]
            followup.positive = PC_PTSD_5.positive(followup.answers)
            followup.screen_instrument, followup.screen_version = PC_PTSD_5.name, PC_PTSD_5.version
            followup.screen_language, followup.screen_cut_point = shown, PC_PTSD_5.cut_point
            followup.screen_validated = PC_PTSD_5.validated(shown)
        elif contact is not True:
            # Asking for a call without answering is fine; saying nothing at all is not an answer.
            raise InvalidInput("Answer the five questions, or ask to be contacted.",
                               errors={"answers": [f"Required: {SCREEN_ITEMS} yes/no answers, unless contact_requested is true."]})
        # A request for contact alone keeps the answers given before: it adds to them, it does not take them back.
    elif answers is not None:
        raise InvalidInput("This check-in has no questions.", errors={"answers": ["Not expected for this check-in."]})
    elif contact is None:
        raise InvalidInput("Say whether you would like to be contacted.", errors={"contact_requested": ["Required."]})
    followup.contact_requested = bool(contact)
    followup.status = ANSWERED
    followup.responded_at = now
    # The latest answers stand, but an escalation raised stands too: a clinician told to call is never untold.
    reason = "positive_screen" if answers is not None and followup.positive else (
        "contact_requested" if followup.contact_requested else None)
    if reason is None:
        return
    raised = _escalation_of(db, followup)
    if raised is None:
        escalate(db, incident=incident, person=person, followup=followup, reason=reason, now=now)
    elif reason == "positive_screen" and raised.reason != reason:
        # Asked to be contacted first, positive since: whoever was told learns what the screen says.
        raised.reason = reason
        clinician = db.get(Facilitator, raised.clinician_id) if raised.clinician_id is not None else None
        _tell(db, incident=incident, person=person, followup=followup, reason=reason, clinician=clinician, now=now,
              update=True)


def _escalation_of(db: DbSession, followup: Followup) -> Escalation | None:
    """The escalation a follow-up raised, if it did (one at most)."""
    return db.scalar(select(Escalation).where(Escalation.followup_id == followup.id))


def clinician_for(db: DbSession, incident: Incident, person: Personnel, now: datetime) -> Facilitator | None:
    """The clinician of the person's group session, else an active clinician who may serve the agency.

    Never one with a conflict of interest (involved in the incident, or in an involved unit) or
    without a valid licence: the same rules as for planning.
    """
    of_group = list(db.scalars(
        select(Facilitator)
        .join(Assignment, Assignment.facilitator_id == Facilitator.id)
        .join(Session, Session.id == Assignment.session_id)
        .join(SessionParticipant, SessionParticipant.session_id == Session.id)
        .where(SessionParticipant.personnel_id == person.id, Session.kind.in_(sessions.GROUP_KINDS), Session.status != "cancelled",
               Assignment.active, Facilitator.kind == "clinician", Facilitator.active)
        .order_by(Session.starts_at.desc(), Facilitator.id)
    ))
    pool = list(db.scalars(
        select(Facilitator).where(Facilitator.kind == "clinician", Facilitator.active,
                                  or_(Facilitator.agency_id == incident.agency_id, Facilitator.agency_id.is_(None)))
        .order_by(Facilitator.id)
    ))
    allowed = _may_counsel(incident, of_group + pool, now)
    # The group's clinician first, then someone who speaks the person's language.
    ranked = [f for f in of_group if f.id in allowed] + sorted(
        (f for f in pool if f.id in allowed), key=lambda f: person.language not in f.languages)
    return ranked[0] if ranked else None


def _may_counsel(incident: Incident, clinicians: list[Facilitator], now: datetime) -> set[int]:
    """The ids of the clinicians with no conflict of interest and a licence valid today."""
    involvement = Involvement.of(sessions.incident_facts(incident))
    pool = FacilitatorPool(to_profile(f) for f in {f.id: f for f in clinicians}.values())
    today = now.astimezone(ZoneInfo(incident.agency.timezone)).date()
    return {
        f.id for f in clinicians
        if not conflict_reasons(pool.entry(f.id), involvement) and not certification_reasons(pool.entry(f.id), "individual", today)
    }


def escalate(db: DbSession, *, incident: Incident, person: Personnel, followup: Followup, reason: str, now: datetime) -> None:
    """Hand a participant to a clinician (or, without one, to the coordinators); the caller commits."""
    clinician = clinician_for(db, incident, person, now)
    db.add(Escalation(incident_id=incident.id, personnel_id=person.id, followup_id=followup.id, reason=reason,
                      clinician_id=clinician.id if clinician else None, created_at=now))
    _tell(db, incident=incident, person=person, followup=followup, reason=reason, clinician=clinician, now=now)


def _tell(db: DbSession, *, incident: Incident, person: Personnel, followup: Followup, reason: str,
          clinician: Facilitator | None, now: datetime, update: bool = False) -> None:
    """Queue an escalation's message: to its clinician, else to the coordinators (who are not told why)."""
    out = Outgoing(db, incident, now)
    # An update about the same escalation is a message of its own; the first one keeps its key.
    key = f"escalation:{followup.id}" + (f":{reason}" if update else "")
    if clinician is not None:
        letter = messages.escalation(
            messages.language(clinician.languages), reason=reason, name=person.name, email=person.email,
            phone=person.phone, participant_language=person.language, incident_type=incident.type,
            occurred_at=incident.occurred_at, timezone=incident.agency.timezone, update=update,
        )
        out.email(dedup_key=key, kind="escalation", to=clinician.email, letter=letter,
                  personnel_id=person.id, facilitator_id=clinician.id, followup_id=followup.id)
    elif update:
        return  # the coordinators were told a clinician must call, and never why: nothing new for them
    elif incident.agency.coordinator_email:
        out.email(dedup_key=key, kind="escalation_unassigned", to=incident.agency.coordinator_email,
                  letter=messages.unassigned(what="escalation", name=person.name, email=person.email,
                                             phone=person.phone, external_id=incident.external_id),
                  personnel_id=person.id, followup_id=followup.id)
    else:
        # Recorded all the same (the escalation row, for the follow-up list); ids only in the log.
        log.warning("escalation %s of incident %s: no clinician and no coordinator_email to send it to",
                    followup.id, incident.id)
    out.flush()


# -- the coordinators' list -------------------------------------------------------------------------


def followups_page(db: DbSession, *, caller: Principal, incident_id: uuid.UUID, limit: int, cursor: str | None,
                   now: datetime) -> tuple[list[dict[str, Any]], str | None]:
    """Each participant's follow-ups (a page of participants); the read is written to the audit log."""
    incident = db.scalar(select(Incident).where(Incident.id == incident_id, Incident.agency_id == caller.agency_id))
    if incident is None:
        raise NotFound(f"No incident {incident_id}.")
    zone = ZoneInfo(incident.agency.timezone)
    query = select(Personnel).where(Personnel.incident_id == incident.id).order_by(Personnel.id).limit(limit + 1)
    if cursor is not None:
        _position, after = decode_cursor(cursor, row_id)
        query = query.where(Personnel.id > after)
    people = list(db.scalars(query))
    more = len(people) > limit
    people = people[:limit]
    ids = [p.id for p in people]
    followups: dict[int, list[Followup]] = {pid: [] for pid in ids}
    for followup in db.scalars(select(Followup).where(Followup.personnel_id.in_(ids)).order_by(Followup.due_at, Followup.kind)):
        followups[followup.personnel_id].append(followup)
    outcomes: dict[uuid.UUID, set[str]] = {}
    for followup_id, status in db.execute(select(OutboxMessage.followup_id, OutboxMessage.status).where(
            OutboxMessage.personnel_id.in_(ids), OutboxMessage.followup_id.is_not(None))):
        outcomes.setdefault(followup_id, set()).add(status)
    escalated = set(db.scalars(select(Escalation.personnel_id).where(Escalation.personnel_id.in_(ids))))
    # An invitation is to a group session or to a booked individual one: the console says which.
    session_ids = {f.session_id for fs in followups.values() for f in fs if f.session_id is not None}
    session_kinds = dict(db.execute(select(Session.id, Session.kind).where(Session.id.in_(session_ids))).all()) if session_ids else {}
    items = [
        {
            "external_id": p.external_id, "name": p.name, "email": p.email, "language": p.language,
            "opted_out_at": p.opted_out_at.astimezone(zone) if p.opted_out_at else None,
            # What the consent notice promises coordinators: that a clinician follows up, not why (no answers, no result).
            "needs_clinical_followup": p.id in escalated,
            "followups": [
                {
                    "id": f.id, "kind": f.kind, "session_id": f.session_id, "session_kind": session_kinds.get(f.session_id),
                    "due_at": f.due_at.astimezone(zone),
                    "status": f.status, "delivered": SENT in outcomes.get(f.id, ()),
                    # Every attempt failed and nothing else reached the person: someone must call them.
                    "delivery_failed": DEAD in outcomes.get(f.id, ()) and SENT not in outcomes.get(f.id, ()),
                    "responded_at": f.responded_at.astimezone(zone) if f.responded_at else None,
                    "choice": f.choice, "booked_session_id": f.booked_session_id,
                }
                for f in followups[p.id]
            ],
        }
        for p in people
    ]
    record_read(db, caller=caller, action="followups.read", incident_id=incident.id, now=now)
    db.commit()
    next_cursor = encode_cursor(now, people[-1].id) if more else None
    return items, next_cursor

