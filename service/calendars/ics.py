"""iCalendar (RFC 5545) documents rendered with `icalendar`: the feed and the invitation attachments.

`icalendar` escapes TEXT values, quotes parameters (RFC 6868) and folds lines at 75 octets
without splitting a UTF-8 character or an escape. Rendering one event through it costs about
half a millisecond, so a feed is assembled from rendered VEVENT blocks that the caller keeps
(service.calendars.service): a 2,000-event feed re-renders only what changed. Likewise the
invitations to one session share all but two properties, rendered once.
Pure code: no clock, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Literal, NamedTuple

import icalendar
from icalendar import Calendar, Event, vCalAddress, vDuration, vText

UTC = timezone.utc
CRLF = "\r\n"
PRODID = "-//Debrief//Debrief calendar 1.0//EN"
REFRESH_INTERVAL = timedelta(hours=1)
# Part of every cache key and ETag: another icalendar release may write other bytes.
RENDERER = f"icalendar {icalendar.__version__}"

EventStatus = Literal["CONFIRMED", "CANCELLED"]
InvitationMethod = Literal["REQUEST", "CANCEL"]

# TEXT values may hold no control character but HTAB (RFC 5545 section 3.3.11; newlines are
# escaped), and icalendar passes them through: they are replaced before it sees the text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_END = "END:VCALENDAR" + CRLF


@dataclass(frozen=True, slots=True)
class Party:
    """An organizer or attendee: a display name and an email address."""

    name: str
    email: str


class IcsEvent(NamedTuple):
    """The properties of one VEVENT, already in their final wording (a tuple: thousands are built per feed)."""

    uid: str
    sequence: int
    status: EventStatus
    starts_at: datetime
    ends_at: datetime
    modified_at: datetime
    summary: str
    location: str
    description: str


def clean_text(value: str) -> str:
    """Text fit for a TEXT value: newlines as LF, any other control character but tab replaced by U+FFFD."""
    return _CONTROL.sub("\ufffd", value.replace("\r\n", "\n").replace("\r", "\n"))


def _party(party: Party, **params: str) -> vCalAddress:
    """An ORGANIZER or ATTENDEE value with its common name."""
    address = vCalAddress(f"mailto:{party.email}")
    address.params["CN"] = clean_text(party.name)
    for name, value in params.items():
        address.params[name] = value
    return address


def _utc(moment: datetime) -> datetime:
    """A UTC instant to the second: DATE-TIME values carry no fraction."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _add_event_properties(component: Event, event: IcsEvent, organizer: Party) -> None:
    """Every property of a VEVENT but its UID and attendee, in the order they are written."""
    stamp = _utc(event.modified_at)
    component.add("DTSTAMP", stamp)
    component.add("DTSTART", _utc(event.starts_at))
    component.add("DTEND", _utc(event.ends_at))
    component.add("SEQUENCE", event.sequence)
    component.add("LAST-MODIFIED", stamp)
    component.add("STATUS", event.status)
    # A cancelled session no longer blocks the time in free/busy lookups.
    component.add("TRANSP", "TRANSPARENT" if event.status == "CANCELLED" else "OPAQUE")
    component.add("SUMMARY", vText(clean_text(event.summary)))
    component.add("LOCATION", vText(clean_text(event.location)))
    component.add("DESCRIPTION", vText(clean_text(event.description)))
    component.add("ORGANIZER", _party(organizer))


def _attendee(attendee: Party, method: InvitationMethod | None) -> vCalAddress:
    # Facilitators decline through the API, not by replying to the message: no RSVP is asked.
    reply = {"PARTSTAT": "NEEDS-ACTION", "RSVP": "FALSE"} if method == "REQUEST" else {}
    return _party(attendee, CUTYPE="INDIVIDUAL", ROLE="REQ-PARTICIPANT", **reply)


def event_component(event: IcsEvent, organizer: Party, attendee: Party | None = None,
                    method: InvitationMethod | None = None) -> Event:
    """The VEVENT of an event: the organizer always, the attendee only in an invitation."""
    component = Event()
    component.add("UID", vText(event.uid))
    _add_event_properties(component, event, organizer)
    if attendee is not None:
        component.add("ATTENDEE", _attendee(attendee, method))
    return component


def event_block(event: IcsEvent, organizer: Party) -> str:
    """One feed VEVENT as text, each line ended by CRLF: the unit a feed is assembled (and cached) from."""
    return event_component(event, organizer).to_ical().decode("utf-8")


def _calendar(method: str, **properties: object) -> Calendar:
    calendar = Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", PRODID)
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", method)
    for name, value in properties.items():
        calendar.add(name.replace("_", "-"), value)
    return calendar


def feed_from_blocks(*, name: str, blocks: Iterable[str]) -> bytes:
    """A subscribable feed (METHOD:PUBLISH) from rendered VEVENT blocks."""
    title = vText(clean_text(name))
    calendar = _calendar("PUBLISH", NAME=title, X_WR_CALNAME=title, X_PUBLISHED_TTL=vDuration(REFRESH_INTERVAL))
    # RFC 7986 requires the value type on REFRESH-INTERVAL; icalendar writes it only when asked.
    calendar.add("REFRESH-INTERVAL", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    head = calendar.to_ical().decode("utf-8").removesuffix(_END)
    return "".join([head, *blocks, _END]).encode("utf-8")


def feed_document(*, name: str, organizer: Party, events: Iterable[IcsEvent]) -> bytes:
    """A subscribable feed (METHOD:PUBLISH): the organizer on every event, no attendee."""
    return feed_from_blocks(name=name, blocks=[event_block(event, organizer) for event in events])


def invitation_document(*, event: IcsEvent, organizer: Party, attendee: Party, method: InvitationMethod) -> bytes:
    """An iTIP message (RFC 5546) for one attendee: REQUEST for a booking or a change, CANCEL when it is off.

    Everyone told about one session gets the same event but for its UID and ATTENDEE: the rest
    is rendered once (`_invitation_template`), and only those two properties for each person.
    The bytes are those of rendering the whole calendar: icalendar writes each property on lines
    of its own and orders them by name alone.
    """
    if (method == "CANCEL") != (event.status == "CANCELLED"):
        raise ValueError(f"method: {method} does not fit an event whose status is {event.status}")
    own = Event()
    own.add("UID", vText(event.uid))
    own.add("ATTENDEE", _attendee(attendee, method))
    mine = {_property_name(lines).decode("ascii"): lines for lines in _property_lines(own.to_ical())}
    template = _invitation_template(event._replace(uid=""), organizer, method)
    return b"".join(lines if isinstance(lines, bytes) else mine[lines] for lines in template)


# Stands in for the attendee in a template: any value renders the property in its place.
_SOMEONE = Party("-", "-@-")
_PER_PERSON = frozenset((b"UID", b"ATTENDEE"))


def _property_lines(document: bytes) -> list[bytes]:
    """The content lines of a rendered document, each property with its folded continuation lines."""
    lines: list[bytes] = []
    for line in document.split(b"\r\n")[:-1]:
        if line.startswith(b" ") and lines:
            lines[-1] += line + b"\r\n"
        else:
            lines.append(line + b"\r\n")
    return lines


def _property_name(lines: bytes) -> bytes:
    """The name of the property on these lines (up to its first ';' or ':')."""
    end = min(i for i in (lines.find(b";"), lines.find(b":")) if i >= 0)
    return lines[:end].upper()


@lru_cache(maxsize=256)
def _invitation_template(event: IcsEvent, organizer: Party, method: InvitationMethod) -> tuple[bytes | str, ...]:
    """An invitation's lines, with each per-person property replaced by its name (a str)."""
    calendar = _calendar(method)
    calendar.add_component(event_component(event, organizer, _SOMEONE, method))
    return tuple(name.decode("ascii") if (name := _property_name(lines)) in _PER_PERSON else lines
                 for lines in _property_lines(calendar.to_ical()))
