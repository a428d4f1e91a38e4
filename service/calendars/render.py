"""What a facilitator's calendar says about a session, in French or English, and the documents that carry it.

Confidentiality (DESIGN.md section 3): a feed is fetched by third-party calendar servers, so an
event carries the session's kind, time, place, agenda and a neutral reference (the session id)
and nothing else: no participant, no incident, no group key (it names an exposure tier).
Pure code: the caller passes every fact, including the agency's time zone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Literal, Mapping, NamedTuple
from zoneinfo import ZoneInfo

from service.calendars.ics import IcsEvent, InvitationMethod, Party, feed_document, invitation_document

Language = Literal["fr", "en"]
EntryState = Literal["confirmed", "cancelled", "released"]
NBSP = "\u00a0"


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


@dataclass(frozen=True, slots=True)
class Wording:
    """The words of a calendar in one language."""

    calendar_name: str
    kinds: dict[str, str]
    phases: dict[str, str]
    cancelled_prefix: str
    virtual_location: str
    in_person: str
    virtual: str
    local_time: str
    agenda: str
    end: str
    reference: str
    cancelled_notice: str
    released_notice: str
    clock: str  # the style of CLOCK_FACES


WORDINGS: dict[str, Wording] = {
    "en": Wording(
        calendar_name="Debrief sessions – {name}",
        kinds={"debriefing": "Group debriefing (CISD)", "defusing": "Defusing", "individual": "Individual session"},
        phases={
            "introduction": "Introduction", "fact": "Facts", "thought": "Thoughts", "reaction": "Reactions",
            "symptom": "Symptoms", "teaching": "Teaching", "re-entry": "Re-entry", "exploration": "Exploration",
            "information": "Information",
        },
        cancelled_prefix="Cancelled: ",
        virtual_location="Virtual (join link sent separately)",
        in_person="in person, region {region}",
        virtual="virtual (join link sent separately)",
        local_time="Local time ({zone}): {start} to {end}",
        agenda="Agenda:",
        end="End",
        reference="Reference: {ref}",
        cancelled_notice="Cancelled: this session will not take place.",
        released_notice="This session is no longer assigned to you.",
        clock="en",
    ),
    "fr": Wording(
        calendar_name="Séances Debrief – {name}",
        kinds={"debriefing": "Débriefing de groupe (CISD)", "defusing": "Désamorçage (defusing)",
               "individual": "Rencontre individuelle"},
        phases={
            "introduction": "Introduction", "fact": "Faits", "thought": "Pensées", "reaction": "Réactions",
            "symptom": "Symptômes", "teaching": "Enseignement", "re-entry": "Retour et conclusion",
            "exploration": "Exploration", "information": "Information",
        },
        cancelled_prefix=f"Annulé{NBSP}: ",
        virtual_location="Virtuel (lien de connexion envoyé séparément)",
        in_person="en présentiel, région {region}",
        virtual="en virtuel (lien de connexion envoyé séparément)",
        local_time=f"Heure locale ({{zone}}){NBSP}: de {{start}} à {{end}}",
        agenda=f"Déroulement{NBSP}:",
        end="Fin",
        reference=f"Référence{NBSP}: {{ref}}",
        cancelled_notice=f"Annulée{NBSP}: cette séance n’aura pas lieu.",
        released_notice="Cette séance ne vous est plus attribuée.",
        clock="fr",
    ),
}


def language_of(languages: Iterable[str]) -> str:
    """The language of a facilitator's calendar: their first language (English when it is neither fr nor en)."""
    first = next(iter(languages), "en")
    return first if first in WORDINGS else "en"


def wording_for(languages: Iterable[str]) -> Wording:
    """The wording of the facilitator's first language."""
    return WORDINGS[language_of(languages)]


def calendar_name(wording: Wording, facilitator_name: str) -> str:
    """The calendar's display name (NAME and X-WR-CALNAME)."""
    return wording.calendar_name.format(name=facilitator_name)


def event_uid(session_id: uuid.UUID | str, facilitator_id: int) -> str:
    """The UID of a session in one facilitator's calendar: stable, and free of time and personal data."""
    return f"{session_id}-{facilitator_id}@debrief"


def _clock_faces(style: str) -> tuple[str, ...]:
    """The wall-clock text of every minute of the day."""
    if style == "fr":
        # French: 8 h, 8 h 15 (non-breaking spaces keep a time on one line).
        return tuple(f"{m // 60}{NBSP}h" if m % 60 == 0 else f"{m // 60}{NBSP}h{NBSP}{m % 60:02d}" for m in range(1440))
    return tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(1440))


CLOCK_FACES = {"en": _clock_faces("en"), "fr": _clock_faces("fr")}


def _local_clock(zone: ZoneInfo, style: str, starts_at: datetime, ends_at: datetime) -> Callable[[datetime], str]:
    """UTC instants of one session to local wall-clock text."""
    faces = CLOCK_FACES[style]
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
    local = _local_clock(zone or ZoneInfo(entry.timezone), wording.clock, entry.starts_at, entry.ends_at)
    kind = wording.kinds.get(entry.kind, entry.kind)
    minutes = int((entry.ends_at - entry.starts_at).total_seconds()) // 60
    place = wording.in_person.format(region=entry.region) if entry.mode == "in_person" else wording.virtual
    lines = []
    if entry.state == "cancelled":
        lines.append(wording.cancelled_notice)
    elif entry.state == "released":
        lines.append(wording.released_notice)
    lines.append(f"{kind}, {minutes} min, {place}.")
    lines.append(wording.local_time.format(zone=entry.timezone, start=local(entry.starts_at), end=local(entry.ends_at)))
    if entry.agenda and entry.state == "confirmed":
        # The agenda only while the session is on: a released facilitator's times may no longer match it.
        lines.append(wording.agenda)
        phases = wording.phases
        lines += [f"{local(p.starts_at)} {phases.get(p.phase, p.phase)} ({p.minutes} min)" for p in entry.agenda]
        lines.append(f"{local(entry.ends_at)} {wording.end}")
    ref = str(entry.session_id)
    lines.append(wording.reference.format(ref=ref))
    on = entry.state == "confirmed"
    return IcsEvent(
        uid=event_uid(ref, entry.facilitator_id),
        sequence=entry.sequence,
        status="CONFIRMED" if on else "CANCELLED",
        starts_at=entry.starts_at,
        ends_at=entry.ends_at,
        modified_at=entry.modified_at,
        summary=kind if on else wording.cancelled_prefix + kind,
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
