"""Three independent iCalendar parsers for the calendar tests, and proof that they catch broken documents.

Every document the calendar tests produce goes through `Parsers.everywhere`: the line
structure is checked octet by octet, then python `icalendar`, the strict `ical` package
and Mozilla's ical.js (run with node from tests/js) must all read it without error and
agree on every event. Other test modules import the `ics_parsers` fixture from here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from ical.calendar_stream import IcsCalendarStream
from ical.exceptions import CalendarParseError
from icalendar import Calendar

from tests.conftest import missing_service

JS_DIR = Path(__file__).resolve().parents[1] / "js"
_TEXT_ESCAPE = re.compile(r"\\([\\;,nN])")
UTC = timezone.utc


def check_lines(document: bytes) -> None:
    """CRLF line ends only; every physical line at most 75 octets and valid UTF-8 on its own."""
    assert document.endswith(b"\r\n"), "the document must end with CRLF"
    for number, line in enumerate(document[:-2].split(b"\r\n"), start=1):
        assert b"\n" not in line and b"\r" not in line, f"line {number}: a bare CR or LF"
        assert len(line) <= 75, f"line {number} has {len(line)} octets: {line!r}"
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:  # folding split a character
            raise AssertionError(f"line {number} is not UTF-8 by itself: {line!r}") from exc


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unescape_text(value: str) -> str:
    return _TEXT_ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def with_icalendar(document: bytes) -> dict[str, Any]:
    """The document as python `icalendar` reads it; any recorded parse error fails."""
    calendar = Calendar.from_ical(document)
    for component in calendar.walk():
        assert not component.errors, f"icalendar: {component.name}: {component.errors}"
    name = calendar.get("NAME")
    return {
        "method": str(calendar.get("METHOD")),
        # icalendar keeps NAME (RFC 7986) as an unknown property, unescaped: read it as the TEXT it is.
        "name": _unescape_text(str(name)) if name is not None else None,
        "events": [
            {
                "uid": str(event["UID"]), "sequence": int(event.get("SEQUENCE", 0)), "status": str(event["STATUS"]),
                "start": _iso(event.decoded("DTSTART")), "end": _iso(event.decoded("DTEND")),
                "stamp": _iso(event.decoded("DTSTAMP")), "summary": str(event["SUMMARY"]),
                "location": str(event["LOCATION"]), "description": str(event["DESCRIPTION"]),
                "organizer": [str(p) for p in _many(event.get("ORGANIZER"))],
                "attendees": [str(p) for p in _many(event.get("ATTENDEE"))],
            }
            for event in calendar.walk("VEVENT")
        ],
    }


def with_ical(document: bytes) -> dict[str, Any]:
    """The document as the strict `ical` package reads it (it raises on anything invalid)."""
    calendar = IcsCalendarStream.calendar_from_ics(document.decode("utf-8"))
    return {
        "method": calendar.method,
        "name": calendar.name[0] if calendar.name else None,
        "events": [
            {
                "uid": event.uid, "sequence": event.sequence or 0, "status": event.status.value,
                "start": _iso(event.dtstart), "end": _iso(event.end), "stamp": _iso(event.dtstamp),
                "summary": event.summary, "location": event.location, "description": event.description,
                "organizer": [event.organizer.uri] if event.organizer else [],
                "attendees": [attendee.uri for attendee in event.attendees],
            }
            for event in calendar.events
        ],
    }


def with_icaljs(document: bytes, tmp_path: Path) -> dict[str, Any]:
    """The document as Mozilla's ical.js reads it (node tests/js/parse.mjs)."""
    path = tmp_path / f"icaljs-{len(list(tmp_path.glob('icaljs-*')))}.ics"
    path.write_bytes(document)
    run = subprocess.run(["node", str(JS_DIR / "parse.mjs"), str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"ical.js: {run.stderr}"
    [parsed] = json.loads(run.stdout)
    assert parsed["version"] == "2.0"
    for event in parsed["events"]:
        assert event["start_is_utc"], "ical.js did not read DTSTART as UTC"
    return {
        "method": parsed["method"],
        "name": parsed["name"],
        "events": [
            {
                "uid": e["uid"], "sequence": e["sequence"], "status": e["status"],
                "start": e["start"].replace(".000Z", "Z"), "end": e["end"].replace(".000Z", "Z"),
                "stamp": e["dtstamp"].replace(".000Z", "Z"), "summary": e["summary"], "location": e["location"],
                "description": e["description"], "organizer": [p["value"] for p in e["organizer"]],
                "attendees": [p["value"] for p in e["attendees"]],
            }
            for e in parsed["events"]
        ],
    }


class Parsers:
    """Parse a document with every parser and insist that they agree."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def everywhere(self, document: bytes) -> dict[str, Any]:
        """The document as all three parsers read it (after the line checks); they must agree."""
        check_lines(document)
        python = with_icalendar(document)
        strict = with_ical(document)
        mozilla = with_icaljs(document, self.tmp_path)
        assert python == strict, "icalendar and ical disagree"
        assert python == mozilla, "icalendar and ical.js disagree"
        return python


@pytest.fixture
def ics_parsers(tmp_path: Path) -> Parsers:
    """The three parsers; ical.js needs node and `npm ci --prefix tests/js` (skipped on a bare machine, failed in CI)."""
    if shutil.which("node") is None:
        missing_service("node (to run ical.js)", FileNotFoundError("node is not on PATH"))
    if not (JS_DIR / "node_modules" / "ical.js" / "package.json").is_file():
        missing_service("tests/js/node_modules/ical.js", FileNotFoundError("run `npm ci --prefix tests/js`"))
    return Parsers(tmp_path)


# -- the checker catches what it must ------------------------------------------------------------

VALID = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:PUBLISH\r\nNAME:Caf\\, \u00e9\r\n"
    "BEGIN:VEVENT\r\nUID:x-1@test\r\nDTSTAMP:20261122T150000Z\r\nDTSTART:20261123T130000Z\r\n"
    "DTEND:20261123T153000Z\r\nSEQUENCE:2\r\nSTATUS:CONFIRMED\r\nSUMMARY:R\u00e9union\r\nLOCATION:a\\;b\r\n"
    "DESCRIPTION:un\\ndeux\r\nORGANIZER;CN=\"X\":mailto:x@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_a_valid_document_reads_the_same_everywhere(ics_parsers):
    parsed = ics_parsers.everywhere(VALID.encode("utf-8"))
    assert parsed["name"] == "Caf, \u00e9" and parsed["method"] == "PUBLISH"
    [event] = parsed["events"]
    assert event["start"] == "2026-11-23T13:00:00Z" and event["sequence"] == 2
    assert event["location"] == "a;b" and event["description"] == "un\ndeux"
    assert event["organizer"] == ["mailto:x@example.org"] and event["attendees"] == []


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        (VALID.replace("\r\n", "\n").encode(), "bare LF"),
        (VALID.replace("NAME:Caf", "NAME:" + "x" * 80).encode(), "76 octets"),
        (VALID.encode().replace("SUMMARY:R\u00e9union".encode(), b"SUMMARY:" + b"a" * 66 + b"\xc3\r\n \xa9"),
         "a character split by folding"),
        (VALID.encode()[:-2], "no final CRLF"),
    ],
)
def test_the_line_checks_catch_broken_structure(broken, why):
    with pytest.raises(AssertionError):
        check_lines(broken)


def test_the_strict_parser_refuses_an_impossible_time():
    bad_hour = VALID.replace("DTSTART:20261123T130000Z", "DTSTART:20261123T250000Z").encode()
    with pytest.raises(CalendarParseError):
        with_ical(bad_hour)


def test_icaljs_reports_a_document_it_cannot_parse(ics_parsers, tmp_path):
    with pytest.raises(AssertionError, match="ical.js"):
        with_icaljs(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:notadate\r\n", tmp_path)
