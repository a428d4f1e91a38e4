"""The iCalendar documents (rendered with icalendar) and the calendar wording: golden files, folding, escaping, invitations.

Golden files live in tests/golden/; after an intended change of the output, rewrite them with
`DEBRIEF_UPDATE_GOLDEN=1 pytest tests/unit/test_ics.py` and review the diff.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from service.calendars.ics import (
    PRODID, IcsEvent, Party, clean_text, event_block, event_component, feed_document, invitation_document,
)
from service.calendars.render import (
    AgendaPhase, CalendarEntry, event_uid, language_of, render_feed, render_invitation, session_event, wording_for,
)
from service.planning.agenda import build_agenda
from service.planning.policy import PlanningPolicy
from tests.unit.test_ics_parsers import check_lines, ics_parsers, with_ical, with_icalendar  # noqa: F401

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UTC = timezone.utc
ORGANIZER = Party("Debrief", "noreply@debrief.example.org")
NNBSP = "\u202f"  # CLDR en_CA: "8:00\u202fa.m."
POLICY = PlanningPolicy()


def at(text: str) -> datetime:
    """A UTC instant from ISO text."""
    return datetime.fromisoformat(text).astimezone(UTC)


def entry(n: int, kind: str, starts: str, *, state: str = "confirmed", mode: str = "in_person", region: str = "north-east",
          sequence: int = 0, facilitator_id: int = 42, zone: str = "America/Toronto") -> CalendarEntry:
    """A calendar entry with the planner's own agenda and length."""
    starts_at = at(starts)
    agenda = tuple(AgendaPhase(a.phase, a.starts_at, a.minutes) for a in build_agenda(kind, starts_at, POLICY))
    minutes = sum(p.minutes for p in agenda) or POLICY.individual_minutes
    return CalendarEntry(
        session_id=uuid.UUID(f"5e55104e-0000-4000-8000-{n:012d}"), facilitator_id=facilitator_id, kind=kind, state=state,
        starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes), mode=mode, region=region,
        sequence=sequence, agenda=agenda, timezone=zone, modified_at=starts_at - timedelta(days=2, minutes=n),
    )


# Sessions on both sides of Toronto's DST changes (2026-03-08 and 2026-11-01), every kind and state.
ENTRIES = [
    entry(1, "debriefing", "2026-03-07T13:00:00Z", region="Nord, secteur 3; édifice \\ B"),  # 08:00 EST
    entry(2, "debriefing", "2026-03-08T12:00:00Z", mode="virtual", sequence=2),  # 08:00 EDT
    entry(3, "defusing", "2026-10-31T14:00:00Z", region="Sud", sequence=1),  # 10:00 EDT
    entry(4, "individual", "2026-11-01T15:00:00Z"),  # 10:00 EST
    entry(5, "debriefing", "2026-11-02T13:00:00Z", state="cancelled", sequence=3),
    entry(6, "defusing", "2026-11-03T18:30:00Z", state="released", mode="virtual", sequence=2),
]


def golden(name: str, document: bytes) -> None:
    """Compare with tests/golden/NAME byte for byte (or rewrite it when DEBRIEF_UPDATE_GOLDEN=1)."""
    path = GOLDEN / name
    if os.environ.get("DEBRIEF_UPDATE_GOLDEN") == "1":
        path.write_bytes(document)
    assert path.is_file(), f"{path} is missing: run with DEBRIEF_UPDATE_GOLDEN=1 and review it"
    assert document == path.read_bytes(), f"{name} differs from the golden file"


def local_lines(description: str) -> list[str]:
    return description.split("\n")


@pytest.mark.parametrize(
    ("language", "name", "golden_file"),
    [("fr", "Émilie Tremblay-Côté", "feed_fr.ics"), ("en", "O'Brien, Sam; CISM \\ peer 🚒", "feed_en.ics")],
)
def test_feed_matches_its_golden_file_and_reads_back_everywhere(ics_parsers, language, name, golden_file):
    document = render_feed(facilitator_name=name, languages=[language], organizer=ORGANIZER, entries=ENTRIES)
    golden(golden_file, document)
    parsed = ics_parsers.everywhere(document)
    assert parsed["method"] == "PUBLISH" and parsed["name"].endswith(name)
    text = document.decode("utf-8")
    for line in ("VERSION:2.0", "CALSCALE:GREGORIAN", "METHOD:PUBLISH", "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
                 "X-PUBLISHED-TTL:PT1H"):
        assert f"\r\n{line}\r\n" in text
    assert "\r\nX-WR-CALNAME:" in text and "\r\nPRODID:" in text and "ATTENDEE" not in text
    assert len(parsed["events"]) == len(ENTRIES)
    for source, event in zip(ENTRIES, parsed["events"]):
        # Times round-trip exactly, as UTC, on both sides of each DST change.
        assert (at(event["start"]), at(event["end"])) == (source.starts_at, source.ends_at)
        assert at(event["stamp"]) == source.modified_at.replace(microsecond=0)
        assert event["uid"] == f"{source.session_id}-42@debrief"
        assert event["sequence"] == source.sequence
        assert event["status"] == ("CONFIRMED" if source.state == "confirmed" else "CANCELLED")
        assert event["organizer"] == ["mailto:noreply@debrief.example.org"] and event["attendees"] == []
        assert str(source.session_id) in event["description"]


def test_french_feed_words_and_local_times():
    document = render_feed(facilitator_name="Émilie", languages=["fr", "en"], organizer=ORGANIZER, entries=ENTRIES)
    events = with_icalendar(document)["events"]
    before, after, defusing, individual, cancelled, released = events
    assert before["summary"] == "Débriefing de groupe (CISD)"
    assert before["location"] == "Nord, secteur 3; édifice \\ B"
    assert local_lines(before["description"])[:4] == [
        "Débriefing de groupe (CISD), 150\u00a0min, en présentiel, région Nord, secteur 3; édifice \\ B.",
        "Heure locale (America/Toronto)\u00a0: de 8\u00a0h à 10\u00a0h\u00a030",
        "Déroulement\u00a0:",
        "8\u00a0h Introduction (15\u00a0min)",
    ]
    assert "8\u00a0h\u00a015 Faits (20\u00a0min)" in before["description"]
    assert "10\u00a0h\u00a010 Retour et conclusion (20\u00a0min)" in before["description"]
    assert "10\u00a0h\u00a030 Fin" in before["description"]
    # 12:00 UTC is 08:00 once daylight time has begun.
    assert "de 8\u00a0h à 10\u00a0h\u00a030" in after["description"] and after["location"].startswith("Virtuel")
    assert defusing["summary"] == "Désamorçage (defusing)" and "Exploration (20\u00a0min)" in defusing["description"]
    assert individual["summary"] == "Rencontre individuelle" and "de 10\u00a0h à 11\u00a0h" in individual["description"]
    assert cancelled["summary"] == "Annulé\u00a0: Débriefing de groupe (CISD)"
    assert cancelled["description"].startswith("Annulée\u00a0: cette séance n’aura pas lieu.")
    assert released["description"].startswith("Cette séance ne vous est plus attribuée.")
    # No agenda once the session is off for this facilitator.
    assert "Déroulement" not in cancelled["description"] + released["description"]


def test_english_feed_words_and_local_times():
    document = render_feed(facilitator_name="Sam", languages=["en"], organizer=ORGANIZER, entries=ENTRIES)
    before, after, defusing, individual, cancelled, released = with_icalendar(document)["events"]
    assert before["summary"] == "Group debriefing (CISD)"
    # CLDR's en_CA clock: "8:00 a.m." (a narrow no-break space before a.m.).
    assert f"Local time (America/Toronto): 8:00{NNBSP}a.m. to 10:30{NNBSP}a.m." in before["description"]
    assert f"8:00{NNBSP}a.m. Introduction (15 min)\n8:15{NNBSP}a.m. Facts (20 min)" in before["description"]
    assert f"Local time (America/Toronto): 8:00{NNBSP}a.m. to 10:30{NNBSP}a.m." in after["description"]
    assert f"10:00{NNBSP}a.m. Introduction (10 min)\n10:10{NNBSP}a.m. Exploration (20 min)" in defusing["description"]
    assert f"Local time (America/Toronto): 10:00{NNBSP}a.m. to 11:00{NNBSP}a.m." in individual["description"]
    assert f"Local time (America/Toronto): 1:30{NNBSP}p.m. to 2:15{NNBSP}p.m." in released["description"]
    assert cancelled["summary"] == "Cancelled: Group debriefing (CISD)"
    assert released["description"].startswith("This session is no longer assigned to you.")
    assert released["location"] == "Virtual (join link sent separately)"


def test_agenda_times_follow_a_dst_change_inside_a_session():
    # 05:50 UTC on 2026-11-01 is 01:50 EDT; at 06:00 UTC clocks fall back to 01:00 EST.
    night = entry(7, "defusing", "2026-11-01T05:50:00Z")
    description = session_event(night, wording_for(["en"])).description
    assert (f"1:50{NNBSP}a.m. Introduction (10 min)\n1:00{NNBSP}a.m. Exploration (20 min)\n"
            f"1:20{NNBSP}a.m. Information (15 min)\n1:35{NNBSP}a.m. End") in description


def test_each_zone_shows_its_own_local_time():
    vancouver = ENTRIES[0]._replace(timezone="America/Vancouver")
    assert f"Local time (America/Vancouver): 5:00{NNBSP}a.m. to 7:30{NNBSP}a.m." in session_event(
        vancouver, wording_for(["en"])).description


@pytest.mark.parametrize(("languages", "language"), [(["fr"], "fr"), (["en", "fr"], "en"), (["fr", "en"], "fr"), ([], "en"), (["de"], "en")])
def test_the_calendar_speaks_the_facilitators_first_language(languages, language):
    assert language_of(languages) == language


def test_the_same_data_renders_the_same_bytes():
    first = render_feed(facilitator_name="Émilie", languages=["fr"], organizer=ORGANIZER, entries=ENTRIES)
    again = render_feed(facilitator_name="Émilie", languages=["fr"], organizer=ORGANIZER, entries=list(ENTRIES))
    assert first == again


def test_uid_is_stable_and_names_only_ids():
    session_id = uuid.UUID("5e55104e-0000-4000-8000-000000000001")
    assert event_uid(session_id, 42) == "5e55104e-0000-4000-8000-000000000001-42@debrief"
    moved = ENTRIES[0]._replace(starts_at=ENTRIES[0].starts_at + timedelta(days=1), sequence=5)
    assert session_event(moved, wording_for(["en"])).uid == session_event(ENTRIES[0], wording_for(["fr"])).uid
    assert session_event(ENTRIES[0]._replace(facilitator_id=43), wording_for(["en"])).uid.endswith("-43@debrief")


# -- invitations (.ics attachments of assignment emails) ---------------------------------------

ATTENDEE = Party("Tremblay, Émilie \"Em\"", "emilie.tremblay@cism.example.org")


def test_invitation_request_matches_its_golden_file(ics_parsers):
    document = render_invitation(ENTRIES[0], attendee=ATTENDEE, languages=["fr"], organizer=ORGANIZER)
    golden("invitation_request.ics", document)
    parsed = ics_parsers.everywhere(document)
    assert parsed["method"] == "REQUEST"
    [event] = parsed["events"]
    assert event["status"] == "CONFIRMED" and event["sequence"] == 0
    assert event["organizer"] == ["mailto:noreply@debrief.example.org"]
    assert event["attendees"] == ["mailto:emilie.tremblay@cism.example.org"]
    assert event["uid"] == session_event(ENTRIES[0], wording_for(["fr"])).uid  # the feed's event, the same UID
    text = document.decode("utf-8").replace("\r\n ", "")
    assert 'ATTENDEE;CN="Tremblay, Émilie ^\'Em^\'";CUTYPE=INDIVIDUAL;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;RSVP=FALSE:' in text


@pytest.mark.parametrize("state", ["cancelled", "released"])
def test_invitation_cancel_when_the_session_is_off(ics_parsers, state):
    off = ENTRIES[1]._replace(state=state, sequence=ENTRIES[1].sequence + 1)
    document = render_invitation(off, attendee=ATTENDEE, languages=["en"], organizer=ORGANIZER)
    if state == "cancelled":
        golden("invitation_cancel.ics", document)
    parsed = ics_parsers.everywhere(document)
    assert parsed["method"] == "CANCEL"
    [event] = parsed["events"]
    assert event["status"] == "CANCELLED" and event["sequence"] == 3 and len(event["attendees"]) == 1
    assert "PARTSTAT" not in document.decode()


def test_invitation_method_must_fit_the_status():
    event = session_event(ENTRIES[0], wording_for(["en"]))
    with pytest.raises(ValueError, match="method"):
        invitation_document(event=event, organizer=ORGANIZER, attendee=ATTENDEE, method="CANCEL")


# -- escaping and folding ------------------------------------------------------------------------


def event_with(**fields: object) -> IcsEvent:
    """A plain event with some fields replaced."""
    plain = IcsEvent(
        uid="x-1@debrief", sequence=1, status="CONFIRMED", starts_at=at("2026-11-23T13:00:00Z"),
        ends_at=at("2026-11-23T14:00:00Z"), modified_at=at("2026-11-22T15:00:00Z"),
        summary="s", location="l", description="d",
    )
    return plain._replace(**fields)


def unfold(folded: str) -> str:
    return folded.replace("\r\n ", "")


def content_line(block: str, name: str) -> str:
    """The unfolded content line of a property in a rendered block."""
    [line] = [line for line in unfold(block).split("\r\n") if line.startswith((name + ":", name + ";"))]
    return line


def physical_lines(folded: str) -> list[bytes]:
    return [line.encode("utf-8") for line in folded.split("\r\n")]


def folded_lines(block: str, name: str) -> list[bytes]:
    """The physical lines of one property: its first line and the continuation lines after it."""
    lines = physical_lines(block)
    first = next(n for n, line in enumerate(lines) if line.startswith(name.encode() + b":"))
    end = next(n for n in range(first + 1, len(lines)) if not lines[n].startswith(b" "))
    return lines[first:end]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a,b", "a\\,b"), ("a;b", "a\\;b"), ("a\\b", "a\\\\b"), ("a\nb", "a\\nb"), ("a\r\nb", "a\\nb"), ("a\rb", "a\\nb"),
        ("\\n", "\\\\n"), ("\\,;", "\\\\\\,\\;"), ("tab\there", "tab\there"), ("nul\x00bell\x07", "nul\ufffdbell\ufffd"),
        ("déjà vu 🎉", "déjà vu 🎉"),
    ],
)
def test_text_is_escaped_in_every_text_field(raw, escaped):
    block = event_block(event_with(summary=raw, location=raw, description=raw), ORGANIZER)
    for name in ("SUMMARY", "LOCATION", "DESCRIPTION"):
        assert content_line(block, name) == f"{name}:{escaped}"


def test_clean_text_keeps_tabs_and_newlines_only():
    assert clean_text("a\r\nb\rc\td\x1be\x7f") == "a\nb\nc\td\ufffde\ufffd"


@pytest.mark.parametrize(
    ("raw", "param"),
    [("Debrief", "CN=Debrief"), ("O'Brien, Sam; Jr: MD", 'CN="O\'Brien, Sam; Jr: MD"'), ('say "hi"', 'CN="say ^\'hi^\'"'),
     ("a^b", "CN=a^^b"), ("two\nlines", "CN=two^nlines")],
)
def test_names_are_quoted_with_rfc6868_escapes(raw, param):
    block = event_block(event_with(), Party(raw, "x@example.org"))
    assert content_line(block, "ORGANIZER") == f"ORGANIZER;{param}:mailto:x@example.org"


@pytest.mark.parametrize("character", ["é", "€", "🎉", "👩\u200d🚒", "e\u0301"])
@pytest.mark.parametrize("pad", range(0, 8))
def test_folding_never_splits_a_character_at_the_75_octet_boundary(character, pad):
    summary = "a" * (62 + pad) + character * 4 + " Réunion à Montréal " * 5
    block = event_block(event_with(summary=summary), ORGANIZER)
    assert content_line(block, "SUMMARY") == "SUMMARY:" + summary
    check_lines(block.encode("utf-8"))
    parts = folded_lines(block, "SUMMARY")
    assert len(parts) > 1
    for n, part in enumerate(parts):
        assert len(part) <= 75
        part.decode("utf-8")  # whole characters on every line
        assert n == 0 or part.startswith(b" ")
    # Lines are filled: each but the last holds at least 70 octets (a 4-octet character may move down).
    assert all(len(part) >= 70 for part in parts[:-1])


@pytest.mark.parametrize("pad", range(0, 6))
def test_escapes_at_a_fold_read_back_everywhere(ics_parsers, pad):
    # RFC 5545 lets a fold fall between any two characters, inside an escape too: readers unfold first.
    description = "a" * (60 + pad) + "x,y;z\\w\nv" * 6
    document = feed_document(name="n", organizer=ORGANIZER, events=[event_with(description=description)])
    [event] = ics_parsers.everywhere(document)["events"]
    assert event["description"] == description


def test_times_are_utc_to_the_second():
    block = event_block(event_with(starts_at=datetime(2026, 3, 8, 7, 5, 9, 999999, tzinfo=UTC),
                                   ends_at=at("2026-03-08T05:00:00-04:00")), ORGANIZER)
    assert "\r\nDTSTART:20260308T070509Z\r\n" in block and "\r\nDTEND:20260308T090000Z\r\n" in block


def text_values() -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=("Cs",)), max_size=200)


def expected_text(value: str) -> str:
    """What a reader gets back: newlines normalised, other control characters replaced."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c if c in "\n\t" or not (ord(c) < 32 or ord(c) == 127) else "\ufffd" for c in value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=text_values(), location=text_values(), description=text_values(), name=text_values())
def test_any_text_round_trips_through_both_python_parsers(summary, location, description, name):
    event = IcsEvent(
        uid="x-1@debrief", sequence=1, status="CONFIRMED", starts_at=at("2026-11-23T13:00:00Z"),
        ends_at=at("2026-11-23T14:00:00Z"), modified_at=at("2026-11-22T15:00:00Z"),
        summary=summary, location=location, description=description,
    )
    document = feed_document(name=name, organizer=Party(name or "x", "x@example.org"), events=[event])
    check_lines(document)
    for parsed in (with_icalendar(document), with_ical(document)):
        [read] = parsed["events"]
        assert (read["summary"], read["location"], read["description"]) == tuple(
            expected_text(v) for v in (summary, location, description))
    assert with_ical(document)["name"] == expected_text(name)


def test_event_block_is_crlf_terminated_lines():
    block = event_block(session_event(ENTRIES[0], wording_for(["fr"])), ORGANIZER)
    assert block.startswith("BEGIN:VEVENT\r\n") and block.endswith("END:VEVENT\r\n")
    check_lines(block.encode("utf-8"))


def whole_invitation(event: IcsEvent, organizer: Party, attendee: Party, method: str) -> bytes:
    """An invitation rendered as one calendar, the way invitation_document's parts must add up to."""
    calendar = Calendar()
    for name, value in (("VERSION", "2.0"), ("PRODID", PRODID), ("CALSCALE", "GREGORIAN"), ("METHOD", method)):
        calendar.add(name, value)
    calendar.add_component(event_component(event, organizer, attendee, method))
    return calendar.to_ical()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uid=st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), min_size=1, max_size=120),
       name=text_values(), email=st.emails(), description=text_values(), cancelled=st.booleans())
def test_an_invitation_assembled_from_its_shared_part_is_the_whole_render(uid, name, email, description, cancelled):
    event = IcsEvent(
        uid=uid, sequence=2, status="CANCELLED" if cancelled else "CONFIRMED", starts_at=at("2026-11-23T13:00:00Z"),
        ends_at=at("2026-11-23T15:30:00Z"), modified_at=at("2026-11-22T15:00:00Z"),
        summary="Debriefing", location="north-east", description=description,
    )
    method = "CANCEL" if cancelled else "REQUEST"
    attendee = Party(name, email)
    assert invitation_document(event=event, organizer=ORGANIZER, attendee=attendee, method=method) == whole_invitation(
        event, ORGANIZER, attendee, method)
    # The shared part is rendered once: another person's invitation to the same event differs in UID and ATTENDEE only.
    other = invitation_document(event=event._replace(uid=uid + "-2"), organizer=ORGANIZER,
                                attendee=Party("Someone else", "else@example.org"), method=method)
    assert other == whole_invitation(event._replace(uid=uid + "-2"), ORGANIZER, Party("Someone else", "else@example.org"),
                                     method)
