"""What a facilitator's calendar says about a session, in French or English, and the documents that carry it.

The words come from the gettext catalogs and the times from Babel's CLDR data, resolved once
per language and process (`wording`), not per event: a feed renders thousands of events.

Confidentiality (DESIGN.md section 3): a feed is fetched by third-party calendar servers, so an
event carries the session's kind, time, place, agenda and a neutral reference (the session id)
and nothing else: no participant, no incident, no group key (it names an exposure tier).
Pure code: the caller passes every fact, including the agency's time zone.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Iterable, Literal, Mapping, NamedTuple
from zoneinfo import ZoneInfo

import babel

from service import i18n
from service.calendars.ics import IcsEvent, InvitationMethod, Party, feed_document, invitation_document
from service.i18n import N_

Language = Literal["fr", "en"]
EntryState = Literal["confirmed", "cancelled", "released"]


class AgendaPhase(NamedTuple):
    """One phase of a session and its UTC start."""

    phase: str
    starts_at: datetime
    minutes: int


class CalendarEntry(NamedTuple):
    """One session as it stands in one facilitator's calendar (a tuple: thousands are built per feed).

    `state` is "cancelled" when the session was called off and "released" when the
    facilitator was taken off it (declined, replaced); the times are then the ones the
    facilitator was given.
    """

    session_id: uuid.UUID
    facilitator_id: int
    kind: str
    state: EntryState
    starts_at: datetime
    ends_at: datetime
    mode: str
    region: str
    sequence: int
    agenda: tuple[AgendaPhase, ...]
    timezone: str
    modified_at: datetime


KINDS = {"debriefing": N_("Group debriefing (CISD)"), "defusing": N_("Defusing"), "individual": N_("Individual session")}
PHASES = {
    "introduction": N_("Introduction"), "fact": N_("Facts"), "thought": N_("Thoughts"), "reaction": N_("Reactions"),
    "symptom": N_("Symptoms"), "teaching": N_("Teaching"), "re-entry": N_("Re-entry"), "exploration": N_("Exploration"),
    "information": N_("Information"),
}


@dataclass(frozen=True, slots=True)
class Wording:
    """The words of a calendar in one language, from the catalogs: %(name)s placeholders where a value goes."""

    language: str
    calendar_name: str
    kinds: dict[str, str]
    phases: dict[str, str]
    cancelled: str
    virtual_location: str
    in_person: str
    virtual: str
    facts: str
    local_time: str
    agenda: str
    agenda_line: str
    agenda_end: str
    reference: str
    cancelled_notice: str
    released_notice: str
    fingerprint: str  # of the words and of Babel's clock (CLDR data): part of every cached event's key


@lru_cache(maxsize=None)
def wording(lang: str) -> Wording:
    """The calendar's words in a language, read from the catalogs once per process (a feed has thousands of events)."""
    lang = i18n.language(lang)

    def _(message: str) -> str:  # gettext's name: the catalogs' extractor looks for it
        return i18n.translate(lang, message)

    words = dict(
        language=lang,
        calendar_name=_("Debrief sessions – %(name)s"),
        kinds={kind: _(message) for kind, message in KINDS.items()},
        phases={phase: _(message) for phase, message in PHASES.items()},
        # TRANSLATORS: the title of a cancelled session in a calendar; %(kind)s is the kind of session.
        cancelled=_("Cancelled: %(kind)s"),
        virtual_location=_("Virtual (join link sent separately)"),
        # TRANSLATORS: where a session takes place; %(region)s is the region's code.
        in_person=_("in person, region %(region)s"),
        virtual=_("virtual (join link sent separately)"),
        # TRANSLATORS: a session in a line: "Group debriefing (CISD), 150 min, in person, region north-east."
        facts=_("%(kind)s, %(minutes)s min, %(place)s."),
        local_time=_("Local time (%(zone)s): %(start)s to %(end)s"),
        agenda=_("Agenda:"),
        # TRANSLATORS: one phase of a session's agenda: "8:15 a.m. Facts (20 min)".
        agenda_line=_("%(time)s %(phase)s (%(minutes)s min)"),
        # TRANSLATORS: the last line of an agenda: "10:30 a.m. End".
        agenda_end=_("%(time)s End"),
        reference=_("Reference: %(ref)s"),
        cancelled_notice=_("Cancelled: this session will not take place."),
        released_notice=_("This session is no longer assigned to you."),
    )
    clocks = [i18n.time_of_day(hour, minute, lang) for hour, minute in ((8, 0), (8, 15), (20, 30))]
    material = json.dumps([words, clocks, babel.__version__], ensure_ascii=False, sort_keys=True)
    return Wording(**words, fingerprint=hashlib.sha256(material.encode("utf-8")).hexdigest()[:16])


def language_of(languages: Iterable[str]) -> str:
    """The language of a facilitator's calendar: their first language (English when it is neither fr nor en)."""
    first = next(iter(languages), "en")
    return first if first in i18n.LANGUAGES else "en"


def wording_for(languages: Iterable[str]) -> Wording:
    """The wording of the facilitator's first language."""
    return wording(language_of(languages))


def calendar_name(wording: Wording, facilitator_name: str) -> str:
    """The calendar's display name (NAME and X-WR-CALNAME)."""
    return wording.calendar_name % {"name": facilitator_name}


def event_uid(session_id: uuid.UUID | str, facilitator_id: int) -> str:
    """The UID of a session in one facilitator's calendar: stable, and free of time and personal data."""
    return f"{session_id}-{facilitator_id}@debrief"


class _ClockFaces(dict[int, str]):
    """Minute of the day to its wall-clock text in one language (Babel), filled as minutes are first shown."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def __missing__(self, minute: int) -> str:
        face = self[minute] = i18n.time_of_day(minute // 60, minute % 60, self.lang)
        return face


@lru_cache(maxsize=None)
def _clock_faces(lang: str) -> _ClockFaces:
    return _ClockFaces(lang)


def _local_clock(zone: ZoneInfo, lang: str, starts_at: datetime, ends_at: datetime) -> Callable[[datetime], str]:
    """UTC instants of one session to local wall-clock text."""
    faces = _clock_faces(lang)
    offset = starts_at.astimezone(zone).utcoffset()
    if offset is not None and ends_at.astimezone(zone).utcoffset() == offset:
        # One offset for the whole session (no DST change inside it): plain arithmetic on minutes.
        shift = int(offset.total_seconds()) // 60
        return lambda moment: faces[(int(moment.timestamp()) // 60 + shift) % 1440]

    def convert(moment: datetime) -> str:
        local = moment.astimezone(zone)
        return faces[local.hour * 60 + local.minute]
    return convert


def session_event(entry: CalendarEntry, wording: Wording, zone: ZoneInfo | None = None) -> IcsEvent:
    """The VEVENT of one calendar entry, worded in the facilitator's language."""
    local = _local_clock(zone or ZoneInfo(entry.timezone), wording.language, entry.starts_at, entry.ends_at)
    kind = wording.kinds.get(entry.kind, entry.kind)
    minutes = int((entry.ends_at - entry.starts_at).total_seconds()) // 60
    place = wording.in_person % {"region": entry.region} if entry.mode == "in_person" else wording.virtual
    lines = []
    if entry.state == "cancelled":
        lines.append(wording.cancelled_notice)
    elif entry.state == "released":
        lines.append(wording.released_notice)
    lines.append(wording.facts % {"kind": kind, "minutes": minutes, "place": place})
    lines.append(wording.local_time % {"zone": entry.timezone, "start": local(entry.starts_at), "end": local(entry.ends_at)})
    if entry.agenda and entry.state == "confirmed":
        # The agenda only while the session is on: a released facilitator's times may no longer match it.
        lines.append(wording.agenda)
        phases, line = wording.phases, wording.agenda_line
        lines += [line % {"time": local(p.starts_at), "phase": phases.get(p.phase, p.phase), "minutes": p.minutes}
                  for p in entry.agenda]
        lines.append(wording.agenda_end % {"time": local(entry.ends_at)})
    ref = str(entry.session_id)
    lines.append(wording.reference % {"ref": ref})
    on = entry.state == "confirmed"
    return IcsEvent(
        uid=event_uid(ref, entry.facilitator_id),
        sequence=entry.sequence,
        status="CONFIRMED" if on else "CANCELLED",
        starts_at=entry.starts_at,
        ends_at=entry.ends_at,
        modified_at=entry.modified_at,
        summary=kind if on else wording.cancelled % {"kind": kind},
        location=entry.region if entry.mode == "in_person" else wording.virtual_location,
        description="\n".join(lines),
    )


def render_feed(*, facilitator_name: str, languages: Iterable[str], organizer: Party,
                entries: Iterable[CalendarEntry]) -> bytes:
    """A facilitator's feed (METHOD:PUBLISH) of the given entries, in their first language."""
    wording = wording_for(languages)
    zones: dict[str, ZoneInfo] = {}
    events = []
    for entry in entries:
        zone = zones.get(entry.timezone)
        if zone is None:
            zone = zones[entry.timezone] = ZoneInfo(entry.timezone)
        events.append(session_event(entry, wording, zone))
    return feed_document(name=calendar_name(wording, facilitator_name), organizer=organizer, events=events)


def render_invitation(entry: CalendarEntry, *, attendee: Party, languages: Iterable[str], organizer: Party) -> bytes:
    """The .ics attachment of an assignment email: METHOD:REQUEST, or METHOD:CANCEL once the entry is off."""
    method: InvitationMethod = "REQUEST" if entry.state == "confirmed" else "CANCEL"
    event = session_event(entry, wording_for(languages))
    return invitation_document(event=event, organizer=organizer, attendee=attendee, method=method)


def agenda_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[AgendaPhase, ...]:
    """The agenda as stored on a session ([{phase, starts_at ISO, minutes}])."""
    return tuple(AgendaPhase(r["phase"], datetime.fromisoformat(r["starts_at"]), int(r["minutes"])) for r in rows)
