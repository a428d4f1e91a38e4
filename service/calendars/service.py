"""Calendar use cases: a facilitator's feed secret and the feed it opens.

The secret in the feed's URL is the only credential of the feed (calendar servers send no
API key), so it carries 256 random bits, only its SHA-256 is stored, and the URL can be shown
only when a secret is issued: when the facilitator is created and when the token is rotated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple
from email.utils import parseaddr
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, type_coerce
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.types import NullType

from service.agencies.models import Agency
from service.calendars.ics import RENDERER, Party, event_block, feed_from_blocks
from service.calendars.models import FeedEvent
from service.calendars.render import CalendarEntry, agenda_from_rows, calendar_name, session_event, wording_for
from service.db import conflict_insert
from service.errors import NotFound
from service.facilitators.models import Facilitator
from service.incidents.models import Incident
from service.sessions.models import Assignment, Session

TOKEN_BYTES = 32
FEED_PATH = "/v1/calendars/{token}.ics"
# The feed shows sessions that ended at most this long ago...
FEED_LOOKBACK = timedelta(days=30)
# ...and a cancelled or released session for this long after its cancellation or release.
CANCELLED_KEPT = timedelta(days=14)
# Part of every ETag: change it with the rendering code so that calendar servers fetch the new
# bytes (a change of the catalogs' words or of Babel's clock shows in the wording's fingerprint).
FEED_FORMAT = "3"
ORGANIZER_NAME = "Debrief"
ID_BATCH = 500  # ids per IN list, rows per multi-row insert
# Rendered VEVENT blocks by everything they depend on, in front of the feed_events table: a
# feed re-renders only what changed. About 1 KB each; per process (gunicorn worker).
BLOCK_CACHE_SIZE = 20_000
_BLOCKS: dict[tuple[Any, ...], str] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Positions in a raw feed row: the assignment's id, then the digest of its stored event.
ASSIGNMENT_ID, STORED_DIGEST = 14, 15
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CalendarUrls:
    """The feed's address, for pasting (https) and for one-click subscription (webcal)."""

    https: str
    webcal: str


@dataclass(frozen=True, slots=True)
class CalendarToken:
    """A freshly issued feed secret, as its URLs: the only time they can be shown."""

    facilitator_id: int
    calendar_url: CalendarUrls


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed answer; `body` is None when the caller's copy (by ETag) is current."""

    etag: str
    last_modified: datetime
    body: bytes | None


def hash_token(secret: str) -> str:
    """SHA-256 of a feed secret: it carries 256 random bits, so a slow hash would add nothing."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def calendar_urls(base_url: str, secret: str) -> CalendarUrls:
    """The feed URLs of a secret under PUBLIC_BASE_URL (its scheme is kept: https in production)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/") + FEED_PATH.format(token=secret)
    return CalendarUrls(
        https=urlunsplit((parts.scheme, parts.netloc, path, "", "")),
        webcal=urlunsplit(("webcal", parts.netloc, path, "", "")),
    )


def issue_token(facilitator: Facilitator) -> str:
    """Give the facilitator a new feed secret, which ends the old URL, and return it; the caller commits."""
    secret = secrets.token_urlsafe(TOKEN_BYTES)
    facilitator.calendar_token_hash = hash_token(secret)
    return secret


def organizer_for(mail_from: str) -> Party:
    """The ORGANIZER of every event: the service's own sender (MAIL_FROM), never a person."""
    name, address = parseaddr(mail_from)
    return Party(name=name or ORGANIZER_NAME, email=address or "debrief@localhost")


def _in_feed(facilitator_id: Any, now: datetime) -> tuple[Any, ...]:
    """The assignments a feed shows: recent or future, and active or released lately."""
    return (
        Assignment.facilitator_id == facilitator_id,
        Assignment.ends_at >= now - FEED_LOOKBACK,
        or_(Assignment.active, Assignment.released_at >= now - CANCELLED_KEPT),
    )


class FeedOwner(NamedTuple):
    """The facilitator of a feed, as far as the feed shows them."""

    id: int
    name: str
    languages: list[str]
    updated_at: datetime


def _facilitator_and_fingerprint(db: DbSession, token: str, now: datetime, organizer: Party) -> tuple[FeedOwner, str, datetime]:
    """The facilitator behind a secret with the ETag and Last-Modified of their feed, in one query (the 304 path renders nothing).

    Every change that shows in a feed bumps its session's sequence and updated_at or releases an
    assignment; rows entering or leaving the window change the count. Agenda times are shown in
    the agencies' zones: the (small) agencies table is fingerprinted whole.
    """
    shown = _in_feed(Facilitator.id, now)
    found = db.execute(
        select(Facilitator.id, Facilitator.name, Facilitator.languages, Facilitator.updated_at, func.count(Assignment.id),
               func.max(Session.updated_at), func.max(Assignment.released_at), func.coalesce(func.sum(Session.sequence), 0))
        .select_from(Facilitator)
        .outerjoin(Assignment, and_(*shown))
        .outerjoin(Session, Session.id == Assignment.session_id)
        # A deactivated facilitator's feed is gone (404) until they are active again.
        .where(Facilitator.calendar_token_hash == hash_token(token), Facilitator.active.is_(True))
        .group_by(Facilitator.id)  # the other columns depend on it
    ).one_or_none()
    if found is None:
        raise NotFound("No calendar at this address.")
    facilitator, (count, updated, released, sequences) = FeedOwner(*found[:4]), found[4:]
    zones = db.execute(select(Agency.id, Agency.timezone).order_by(Agency.id)).all()
    material = [
        FEED_FORMAT, RENDERER, organizer.name, organizer.email, facilitator.id, facilitator.name,
        wording_for(facilitator.languages).fingerprint, count, updated.isoformat() if updated else None,
        released.isoformat() if released else None, int(sequences), [list(zone) for zone in zones],
    ]
    digest = hashlib.sha256(json.dumps(material, ensure_ascii=False).encode("utf-8")).hexdigest()
    latest = max(facilitator.updated_at, updated or _EPOCH, released or _EPOCH)
    return facilitator, digest[:40], latest.replace(microsecond=0)


def _raw(column: Any) -> Any:
    """A column as the driver returns it: SQLAlchemy's per-value conversions cost more than the rendering."""
    return type_coerce(column, NullType()).label(f"{column.table.name}_{column.key}")


def _utc(value: Any) -> datetime:
    """A driver timestamp as an aware UTC datetime (SQLite gives ISO text, PostgreSQL aware datetimes)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _uuid(value: Any) -> uuid.UUID:
    """A driver UUID (hex text on SQLite)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _json(value: Any) -> Any:
    """A driver JSON value (text on SQLite, already decoded by psycopg)."""
    return json.loads(value) if isinstance(value, str) else value


def _feed_rows(db: DbSession, where: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """One raw row per session of the feed, in start order; an active assignment wins over a released one.

    The last value of a row is the digest its stored event was rendered from (None when none is stored).
    """
    rows = db.execute(
        select(
            _raw(Assignment.session_id), _raw(Assignment.active), _raw(Assignment.released_at),
            _raw(Assignment.starts_at), _raw(Assignment.ends_at), _raw(Session.status), _raw(Session.kind),
            _raw(Session.starts_at), _raw(Session.ends_at), _raw(Session.mode), _raw(Session.region),
            _raw(Session.sequence), _raw(Session.updated_at), _raw(Agency.timezone), _raw(Assignment.id),
            _raw(FeedEvent.rendered_from),
        )
        .select_from(Assignment)
        .join(Session, Session.id == Assignment.session_id)
        .join(Incident, Incident.id == Session.incident_id)
        .join(Agency, Agency.id == Incident.agency_id)
        .outerjoin(FeedEvent, FeedEvent.assignment_id == Assignment.id)
        .where(*where)
        .order_by(Assignment.starts_at, Assignment.session_id, Assignment.id)
    ).all()
    chosen: dict[Any, tuple[int, tuple[Any, ...]]] = {}
    for position, row in enumerate(rows):
        previous = chosen.get(row[0])
        if previous is None or _preferred(row, previous[1]):
            chosen[row[0]] = (position, tuple(row))
    return [row for _, row in sorted(chosen.values(), key=lambda kept: kept[0])]


def _preferred(row: tuple[Any, ...], other: tuple[Any, ...]) -> bool:
    """Of two assignments of one facilitator to one session: the active one, else the latest released."""
    if bool(row[1]) != bool(other[1]):
        return bool(row[1])
    return row[2] is not None and (other[2] is None or row[2] > other[2])


def _entry(row: tuple[Any, ...], facilitator_id: int, agenda: Any) -> CalendarEntry:
    """The calendar entry of a raw feed row."""
    (session_id, active, released_at, a_starts, a_ends, status, kind, s_starts, s_ends, mode, region, sequence,
     updated_at, zone, _assignment_id, _stored) = row
    state = "cancelled" if status == "cancelled" else "confirmed" if active else "released"
    modified_at = _utc(updated_at)
    if released_at is not None:
        modified_at = max(modified_at, _utc(released_at))
    return CalendarEntry(
        session_id=_uuid(session_id), facilitator_id=facilitator_id, kind=kind, state=state,
        # A released facilitator keeps the times they were given; the session may have moved since.
        starts_at=_utc(s_starts if active else a_starts), ends_at=_utc(s_ends if active else a_ends),
        mode=mode, region=region, sequence=sequence,
        agenda=agenda_from_rows(_json(agenda)) if state == "confirmed" and agenda is not None else (),
        timezone=zone, modified_at=modified_at,
    )


def _agendas(db: DbSession, session_ids: list[Any]) -> dict[Any, Any]:
    """The stored agendas of some sessions, keyed by raw session id."""
    found: dict[Any, Any] = {}
    raw_id = type_coerce(Session.id, NullType())  # compare with the raw ids as fetched, unconverted
    for start in range(0, len(session_ids), ID_BATCH):
        batch = session_ids[start:start + ID_BATCH]
        found.update(db.execute(select(_raw(Session.id), _raw(Session.agenda)).where(raw_id.in_(batch))).all())
    return found


def _rendered_from(context_key: bytes, row: tuple[Any, ...]) -> str:
    """A digest of everything a block is rendered from (its row, keyed by its context), to tell a stored block current."""
    return hashlib.blake2b(repr(row[:STORED_DIGEST]).encode("utf-8"), digest_size=16, key=context_key).hexdigest()


def _stored_blocks(db: DbSession, where: tuple[Any, ...], assignment_ids: list[Any]) -> dict[Any, str]:
    """The stored blocks of some assignments of a feed, by assignment id."""
    query = select(_raw(FeedEvent.assignment_id), FeedEvent.body)
    if len(assignment_ids) > ID_BATCH:
        # Most of the feed (a new process): one pass over the feed's rows beats long IN lists.
        query = query.join(Assignment, Assignment.id == FeedEvent.assignment_id).where(*where)
        wanted = set(assignment_ids)
        return {assignment_id: body for assignment_id, body in db.execute(query) if assignment_id in wanted}
    return dict(db.execute(query.where(FeedEvent.assignment_id.in_(assignment_ids))).all())


def _store_blocks(db: DbSession, rendered: list[dict[str, Any]]) -> None:
    """Keep freshly rendered blocks for the next request of any process; a failure costs only a re-render."""
    insert = conflict_insert(db)
    try:
        for start in range(0, len(rendered), ID_BATCH):
            statement = insert(FeedEvent).values(rendered[start:start + ID_BATCH])
            db.execute(statement.on_conflict_do_update(
                index_elements=[FeedEvent.assignment_id],
                set_={"rendered_from": statement.excluded.rendered_from, "body": statement.excluded.body},
            ))
        db.commit()
    except (IntegrityError, OperationalError) as error:
        # An assignment deleted meanwhile, or a busy database: the answer is already complete.
        db.rollback()
        log.warning("feed events not stored (%d rendered): %s", len(rendered), type(error).__name__)


def _event_blocks(db: DbSession, facilitator: FeedOwner, where: tuple[Any, ...], organizer: Party) -> list[str]:
    """The VEVENT blocks of a feed: from this process's memory, else as stored, else rendered and stored."""
    wording = wording_for(facilitator.languages)
    # Everything a block depends on beyond its raw row (which carries the session's sequence and
    # updated_at, bumped on every change of time, place, team or status), the words of the
    # catalogs included. A string: hashed once.
    context = json.dumps([FEED_FORMAT, RENDERER, facilitator.id, wording.fingerprint, organizer.name, organizer.email])
    rows = _feed_rows(db, where)
    keys = [(context, row[:STORED_DIGEST]) for row in rows]
    blocks = [_BLOCKS.get(key) for key in keys]
    missing = [n for n, block in enumerate(blocks) if block is None]
    if not missing:
        return blocks  # type: ignore[return-value]
    if len(_BLOCKS) + len(missing) > BLOCK_CACHE_SIZE:
        _BLOCKS.clear()  # crude but bounded and lock-free; it refills on demand
    context_key = hashlib.blake2b(context.encode("utf-8"), digest_size=32).digest()
    digests = {n: _rendered_from(context_key, rows[n]) for n in missing}
    current = [n for n in missing if rows[n][STORED_DIGEST] == digests[n]]
    if current:
        stored = _stored_blocks(db, where, [rows[n][ASSIGNMENT_ID] for n in current])
        for n in current:
            body = stored.get(rows[n][ASSIGNMENT_ID])
            if body is not None:  # else replaced since the first query: render it
                blocks[n] = _BLOCKS[keys[n]] = body
    stale = [n for n in missing if blocks[n] is None]
    if not stale:
        return blocks  # type: ignore[return-value]
    agendas = _agendas(db, [rows[n][0] for n in stale if rows[n][1] and rows[n][5] != "cancelled"])
    zones: dict[str, ZoneInfo] = {}
    for n in stale:
        row = rows[n]
        zone = zones.get(row[13]) or zones.setdefault(row[13], ZoneInfo(row[13]))
        entry = _entry(row, facilitator.id, agendas.get(row[0]))
        blocks[n] = _BLOCKS[keys[n]] = event_block(session_event(entry, wording, zone), organizer)
    _store_blocks(db, [
        {"assignment_id": rows[n][ASSIGNMENT_ID], "rendered_from": digests[n], "body": blocks[n]} for n in stale
    ])
    return blocks  # type: ignore[return-value]


def feed(*, db: DbSession, token: str, now: datetime, mail_from: str, client_etags: Collection[str] = ()) -> Feed:
    """The feed behind a secret; unknown or rotated secrets are 404, a current client copy is not rendered."""
    organizer = organizer_for(mail_from)
    # The fingerprint is taken before the rows: a change committed in between yields new bytes
    # under the old ETag, which the next request corrects, never old bytes under a new ETag.
    facilitator, etag, last_modified = _facilitator_and_fingerprint(db, token, now, organizer)
    if etag in client_etags or "*" in client_etags:
        return Feed(etag, last_modified, None)
    blocks = _event_blocks(db, facilitator, _in_feed(facilitator.id, now), organizer)
    name = calendar_name(wording_for(facilitator.languages), facilitator.name)
    return Feed(etag, last_modified, feed_from_blocks(name=name, blocks=blocks))
