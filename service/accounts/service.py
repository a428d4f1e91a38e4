"""Console accounts and sign-in: accounts, one-time links by email, sessions with a sliding expiry.

A request for a sign-in link answers the same, and does the same work, whether or not the
address has an account: it looks up both an account and a facilitator, makes a token, stores its
hash and composes the email; only the email is left out when nobody has the address (its link
row then opens nothing). The link is good for 15 minutes and once; redeeming it makes a new
session (never one the browser already held), whose id only the cookie holds.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from service import i18n
from service.accounts.models import ACCOUNT_ROLES, ADMIN, FACILITATOR, Account, ConsoleSession, SigninLink
from service.agencies.models import Agency
from service.audit import service as audit
from service.errors import Conflict, InvalidInput, NotFound
from service.facilitators.models import Facilitator
from service.followups.messages import Letter, Link, as_html, as_text
from service.outbox.models import EMAIL
from service.outbox.service import email_payload, queue_messages
from service.sessions.models import Assignment, Session

LINK_LIFETIME = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(hours=8)
# A session's last use is written at most this often (not on every page).
TOUCH_EVERY = timedelta(minutes=1)
SIGNIN_PATH = "/signin/"
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
SIGNIN_LINK = "signin_link"


class LinkUnusable(Exception):
    """A sign-in link that is unknown, expired, already used, or whose person may no longer sign in."""


@dataclass(frozen=True, slots=True)
class Person:
    """Who is signed in to the console, as their account (or roster entry) says now."""

    role: str
    email: str
    agency_id: int | None
    agency_name: str | None
    account_id: int | None = None
    facilitator_id: int | None = None
    name: str | None = None


def normalize_email(address: str) -> str:
    """An address as accounts keep it: trimmed, lower-case."""
    return address.strip().lower()


def is_email(address: str) -> bool:
    """Whether a string looks like one email address (the mail server decides the rest)."""
    return len(address) <= 254 and EMAIL_PATTERN.match(address) is not None


def secret_hash(secret: str) -> str:
    """SHA-256 of a token or session id: 256 random bits, so a slow hash would add nothing."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


# -- accounts ---------------------------------------------------------------------------------------


def _agency_id(db: DbSession, *, role: str, agency_code: str | None) -> int | None:
    if role not in ACCOUNT_ROLES:
        raise InvalidInput(f"Unknown role {role!r}.", errors={"role": [f"Must be one of: {', '.join(ACCOUNT_ROLES)}."]})
    if role == ADMIN:
        if agency_code:
            raise InvalidInput("An admin account has no agency.", errors={"agency": ["An admin has no agency."]})
        return None
    if not agency_code:
        raise InvalidInput(f"A {role} account needs an agency.", errors={"agency": ["Required for this role."]})
    agency_id = db.scalar(select(Agency.id).where(Agency.code == agency_code))
    if agency_id is None:
        raise InvalidInput(f"No agency with code {agency_code!r}.", errors={"agency": ["No such agency."]})
    return agency_id


def create_account(db: DbSession, *, email: str, role: str, agency_code: str | None, now: datetime,
                   actor: Person | None = None) -> Account:
    """A new account (coordinators and supervisors belong to an agency, admins to none); commits."""
    address = normalize_email(email)
    if not is_email(address):
        raise InvalidInput(f"{email!r} is not an email address.", errors={"email": ["Not an email address."]})
    account = Account(email=address, role=role, agency_id=_agency_id(db, role=role, agency_code=agency_code), created_at=now)
    db.add(account)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"An account with the address {address} already exists.", errors={"email": ["Already an account."]}) from None
    _audit_change(db, "account.create", account, actor, now)
    db.commit()
    return account


def _audit_change(db: DbSession, action: str, account: Account, actor: Person | None, now: datetime) -> None:
    # The CLI has no signed-in person: an operator at the server's shell.
    audit.record(db, action=action, now=now, actor_role=actor.role if actor else "operator",
                 agency_id=account.agency_id, account_id=actor.account_id if actor else None)


def list_accounts(db: DbSession) -> Sequence[Account]:
    """Every account, by address."""
    return db.scalars(select(Account).order_by(Account.email)).all()


def get_account(db: DbSession, *, account_id: int) -> Account:
    """One account."""
    account = db.get(Account, account_id)
    if account is None:
        raise NotFound(f"No account {account_id}.")
    return account


def change_account(db: DbSession, *, account_id: int, role: str, agency_code: str | None, actor: Person,
                   now: datetime) -> Account:
    """Give an account another role (and agency); its sessions carry the new role from their next page."""
    account = get_account(db, account_id=account_id)
    if account.id == actor.account_id and role != account.role:
        raise InvalidInput("Nobody changes their own role.", errors={"role": ["Not your own."]})
    account.agency_id = _agency_id(db, role=role, agency_code=agency_code)
    account.role = role
    _audit_change(db, "account.change", account, actor, now)
    db.commit()
    return account


def set_disabled(db: DbSession, *, account_id: int, disabled: bool, actor: Person, now: datetime) -> Account:
    """Disable an account (its sessions end at once and its links stop working) or enable it again."""
    account = get_account(db, account_id=account_id)
    if account.id == actor.account_id:
        raise InvalidInput("Nobody disables their own account.", errors={"account": ["Not your own."]})
    account.disabled_at = now if disabled else None
    if disabled:
        db.execute(delete(ConsoleSession).where(ConsoleSession.account_id == account.id))
    _audit_change(db, "account.disable" if disabled else "account.enable", account, actor, now)
    db.commit()
    return account


# -- sign-in ----------------------------------------------------------------------------------------


def signin_letter(lang: str, url: str) -> Letter:
    """The email that carries a sign-in link."""
    return Letter(
        subject=i18n.translate(lang, "Your link to sign in to Debrief"),
        paragraphs=(
            i18n.translate(lang, "Someone asked to sign in to Debrief with this email address. "
                                 "Open the link below within 15 minutes, then press \u201cSign in\u201d."),
            i18n.translate(lang, "The link works once. If you did not ask for it, ignore this message: "
                                 "nobody can sign in without the link."),
        ),
        links=(Link(i18n.translate(lang, "Sign in to Debrief"), url),),
    )


def _prune(db: DbSession, now: datetime) -> None:
    db.execute(delete(SigninLink).where(SigninLink.expires_at < now - LINK_LIFETIME))
    db.execute(delete(ConsoleSession).where(ConsoleSession.last_seen_at <= now - IDLE_TIMEOUT))


def request_link(db: DbSession, *, email: str, next_path: str | None, lang: str, now: datetime, base_url: str) -> None:
    """Email a one-time sign-in link if the address has an account or is an active facilitator's; commits.

    The same statements run either way, so the answer's time does not tell whether it did.
    """
    address = normalize_email(email)
    _prune(db, now)
    account = db.scalar(select(Account).where(Account.email == address, Account.disabled_at.is_(None)))
    # An account wins over a roster entry of the same address.
    facilitator = db.scalar(select(Facilitator).where(func.lower(Facilitator.email) == address, Facilitator.active)
                            .order_by(Facilitator.id).limit(1))
    if account is not None:
        facilitator = None
    token = _new_secret()
    token_hash = secret_hash(token)
    db.add(SigninLink(token_hash=token_hash, account_id=account.id if account else None,
                      facilitator_id=facilitator.id if facilitator else None, next_path=next_path,
                      created_at=now, expires_at=now + LINK_LIFETIME))
    letter = signin_letter(lang, base_url + SIGNIN_PATH + token)
    payload = email_payload(subject=letter.subject, text=as_text(letter), html=as_html(letter))
    messages = []
    if account is not None or facilitator is not None:
        recipient = account.email if account is not None else facilitator.email
        agency_id = account.agency_id if account is not None else facilitator.agency_id
        messages.append(dict(dedup_key=f"{SIGNIN_LINK}:{token_hash}", kind=SIGNIN_LINK, channel=EMAIL,
                             recipient=recipient, payload=payload, due_at=now, agency_id=agency_id))
    queue_messages(db, messages, now=now)
    db.commit()


def _usable_link(db: DbSession, token: str, now: datetime) -> SigninLink:
    link = db.get(SigninLink, secret_hash(token)) if len(token) <= 128 else None
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise LinkUnusable()
    if link.account_id is None and link.facilitator_id is None:
        raise LinkUnusable()
    return link


def check_link(db: DbSession, *, token: str, now: datetime) -> None:
    """Raise LinkUnusable unless the link can still sign someone in (changes nothing)."""
    _usable_link(db, token, now)
    db.rollback()


@dataclass(frozen=True, slots=True)
class Signin:
    """A sign-in: the new session's id (for the cookie only), who signed in, and where they were going."""

    session_id: str
    person: Person
    next_path: str | None


def redeem_link(db: DbSession, *, token: str, now: datetime, previous_session: str | None = None) -> Signin:
    """Use a sign-in link once: a new session, never the browser's previous one (which ends); commits."""
    link = _usable_link(db, token, now)
    # Once: of two presses of the same link, only one marks it used.
    claimed = db.execute(update(SigninLink).where(SigninLink.token_hash == link.token_hash, SigninLink.used_at.is_(None))
                         .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    person = _person_of(db, account_id=link.account_id, facilitator_id=link.facilitator_id)
    if claimed != 1 or person is None:
        db.rollback()
        raise LinkUnusable()
    if previous_session:
        db.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == secret_hash(previous_session)))
    session_id = _new_secret()
    db.add(ConsoleSession(id_hash=secret_hash(session_id), account_id=link.account_id, facilitator_id=link.facilitator_id,
                          created_at=now, last_seen_at=now))
    if link.account_id is not None:
        db.execute(update(Account).where(Account.id == link.account_id).values(last_signin_at=now))
    audit.record(db, action="console.signin", actor_role=person.role, agency_id=person.agency_id, now=now,
                 account_id=person.account_id, facilitator_id=person.facilitator_id)
    signin = Signin(session_id, person, link.next_path)
    db.commit()
    return signin


def _person_of(db: DbSession, *, account_id: int | None, facilitator_id: int | None) -> Person | None:
    if account_id is not None:
        account = db.get(Account, account_id)
        if account is None or account.disabled_at is not None:
            return None
        return Person(role=account.role, email=account.email, agency_id=account.agency_id,
                      agency_name=account.agency.name if account.agency else None, account_id=account.id)
    facilitator = db.get(Facilitator, facilitator_id) if facilitator_id is not None else None
    if facilitator is None or not facilitator.active:
        return None
    return Person(role=FACILITATOR, email=facilitator.email, agency_id=facilitator.agency_id,
                  agency_name=facilitator.agency.name if facilitator.agency else None,
                  facilitator_id=facilitator.id, name=facilitator.name)


def signed_in(db: DbSession, *, session_id: str, now: datetime) -> Person | None:
    """The person of a session cookie, or None once it is unknown, idle for 8 hours, or its person is disabled."""
    if len(session_id) > 128:
        return None
    row = db.get(ConsoleSession, secret_hash(session_id))
    if row is None:
        db.rollback()
        return None
    person = _person_of(db, account_id=row.account_id, facilitator_id=row.facilitator_id)
    if person is None or now - row.last_seen_at >= IDLE_TIMEOUT:
        db.delete(row)
        db.commit()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        db.commit()
    else:
        db.rollback()
    return person


def sign_out(db: DbSession, *, session_id: str, person: Person, now: datetime) -> None:
    """End a session: its row is deleted, so its cookie no longer opens anything; commits."""
    db.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == secret_hash(session_id)))
    audit.record(db, action="console.signout", actor_role=person.role, agency_id=person.agency_id, now=now,
                 account_id=person.account_id, facilitator_id=person.facilitator_id)
    db.commit()


# -- a facilitator's sessions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpcomingSession:
    """A session a facilitator leads: kind, time and place, never who attends."""

    kind: str
    status: str
    starts_at: datetime
    ends_at: datetime
    mode: str
    region: str
    zone: str


def upcoming_sessions(db: DbSession, *, facilitator_id: int, now: datetime) -> list[UpcomingSession]:
    """The sessions a facilitator is on that have not ended, soonest first, in their time zone."""
    facilitator = db.get(Facilitator, facilitator_id)
    if facilitator is None:
        raise NotFound(f"No facilitator {facilitator_id}.")
    rows = db.scalars(
        select(Session).join(Assignment, Assignment.session_id == Session.id)
        .where(Assignment.facilitator_id == facilitator_id, Assignment.active, Session.status != "cancelled",
               Session.ends_at > now)
        .order_by(Session.starts_at)
    ).all()
    return [UpcomingSession(kind=s.kind, status=s.status, starts_at=s.starts_at, ends_at=s.ends_at, mode=s.mode,
                            region=s.region, zone=facilitator.timezone) for s in rows]
