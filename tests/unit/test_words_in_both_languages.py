"""Every email and the feed's words come from the catalogs: French readers get no English, and back.

A message missing from the compiled French catalog falls back to its English msgid, so each
letter is rendered in both languages and compared: every line differs, and no English phrase of
the catalogs shows in the French rendering. Composed outside any request, as workers do.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from babel.messages.pofile import read_po
from flask import has_request_context

from service.calendars.render import render_feed, wording
from service.catalogs import po_path
from service.followups import messages
from service.followups.messages import Letter, ResponseLinks, SessionFacts
from tests.unit.test_ics import ENTRIES, ORGANIZER
from tests.unit.test_ics_parsers import with_icalendar

UTC = timezone.utc
LINKS = ResponseLinks(respond="https://d.example/r/T")
START = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
SESSION = SessionFacts(
    kind="debriefing", starts_at=START, ends_at=START + timedelta(minutes=150), mode="in_person", region="north-east",
    timezone="America/Toronto",
    agenda=(("introduction", START, 15), ("fact", START + timedelta(minutes=15), 20),
            ("re-entry", START + timedelta(minutes=130), 20)),
)
VIRTUAL = SessionFacts(kind="defusing", starts_at=START, ends_at=START + timedelta(minutes=45), mode="virtual",
                       region="north-east", timezone="America/Toronto")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def letters(lang: str) -> dict[str, Letter]:
    """Every letter a participant or a facilitator can get, by a name for the failure message."""
    found = {
        f"invitation_{change}": messages.invitation(lang, SESSION, LINKS, change=change)
        for change in ("new", "moved", "cancelled")
    }
    found["invitation_virtual"] = messages.invitation(lang, VIRTUAL, LINKS)
    found["offer"] = messages.offer(lang, LINKS, peer=LINKS.accept + "&choice=peer",
                                    clinician=LINKS.accept + "&choice=clinician")
    found["checkin"] = messages.checkin(lang, LINKS)
    found["screening"] = messages.screening(lang, LINKS)
    found["booking_pending"] = messages.booking_pending(lang, LINKS)
    for change in ("new", "moved", "cancelled", "reminder"):
        found[f"assignment_{change}"] = messages.assignment(lang, SESSION, change=change, reference="S-1")
    for reason in ("positive_screen", "contact_requested"):
        found[f"escalation_{reason}"] = messages.escalation(
            lang, reason=reason, name="Sam Roy", email="sam@example.org", phone=None, participant_language="fr",
            incident_type="line_of_duty_death", occurred_at=START, timezone="America/Toronto")
    found["escalation_update"] = messages.escalation(
        lang, reason="positive_screen", name="Sam Roy", email="sam@example.org", phone=None, participant_language="fr",
        incident_type="line_of_duty_death", occurred_at=START, timezone="America/Toronto", update=True)
    return found


def english_phrases() -> set[str]:
    """The words of every message whose French differs from its English: the runs of two words or more between values."""
    with po_path("fr").open("rb") as handle:
        catalog = read_po(handle)
    phrases = set()
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string != message.id:
            for run in PLACEHOLDER.split(message.id):
                run = run.strip(" ,.:;()")
                if " " in run:
                    phrases.add(run)
    return phrases


def test_every_letter_is_composed_outside_a_request_in_both_languages():
    assert not has_request_context()
    assert letters("fr").keys() == letters("en").keys()


@pytest.mark.parametrize("name", sorted(letters("en")))
def test_the_french_letter_differs_from_the_english_one_line_by_line(name):
    fr, en = letters("fr")[name], letters("en")[name]
    assert fr.subject != en.subject
    assert len(fr.paragraphs) == len(en.paragraphs) and len(fr.items) == len(en.items)
    for french, english in zip(fr.paragraphs + fr.items, en.paragraphs + en.items):
        assert french != english
    assert [link.url for link in fr.links] == [link.url for link in en.links]
    for french, english in zip(fr.links, en.links):
        assert french.label != english.label
    assert (fr.notice is None) == (en.notice is None) and (fr.notice is None or fr.notice != en.notice)


@pytest.mark.parametrize("name", sorted(letters("en")))
def test_no_english_is_left_in_a_french_letter(name):
    text = messages.as_text(letters("fr")[name]) + letters("fr")[name].subject
    assert [phrase for phrase in english_phrases() if phrase in text] == []
    assert "%(" not in text and "{" not in text


def test_the_coordinators_letters_say_everything_in_both_languages():
    problem = messages.planning_problem(external_id="CAD-9", incident_type="other", closes_at=START,
                                        timezone="America/Toronto",
                                        problems=[("debriefing", "direct-en", ["no_clinician_available", "window_closed"])])
    # French then English: the same paragraphs, each translated.
    half = len(problem.paragraphs) // 2
    for french, english in zip(problem.paragraphs[:half], problem.paragraphs[half:]):
        assert french != english
    assert "CAD-9" in problem.paragraphs[0] and "CAD-9" in problem.paragraphs[half]
    assert "aucun clinicien n’est disponible" in problem.paragraphs[1]
    assert "no clinician is available" in problem.paragraphs[half + 1]
    assert problem.subject == "Debrief — plan incomplet / plan incomplete: CAD-9"
    for what in ("escalation", "booking"):
        letter = messages.unassigned(what=what, name="Sam Roy", email="sam@example.org", phone=None, external_id="CAD-9")
        french, english, confidential = letter.paragraphs
        assert french != english and french.startswith("Une personne") and english.startswith("A person")
        assert confidential == "Confidentiel\u00a0: ne pas transmettre à la hiérarchie. / Confidential: not for the chain of command."
        assert letter.subject == "Debrief — suivi à organiser / follow-up to arrange: CAD-9"


def test_every_calendar_word_is_translated():
    fr, en = wording("fr"), wording("en")
    same = []
    for field in fr.__dataclass_fields__:
        if field in ("language", "fingerprint"):
            continue
        french, english = getattr(fr, field), getattr(en, field)
        if isinstance(french, dict):
            assert french.keys() == english.keys()
            same += [key for key in french if french[key] == english[key]]
        elif french == english:
            same.append(field)
    # The same word in both languages, and nothing else.
    assert sorted(same) == ["exploration", "information", "introduction"]
    assert fr.fingerprint != en.fingerprint


def test_no_english_is_left_in_a_french_feed():
    document = render_feed(facilitator_name="Émilie", languages=["fr"], organizer=ORGANIZER, entries=ENTRIES)
    read = with_icalendar(document)
    text = "\n".join([read["name"]] + [e[k] for e in read["events"] for k in ("summary", "location", "description")])
    assert [phrase for phrase in english_phrases() if phrase in text] == []
    assert "%(" not in text
    for english in ("Cancelled", "Local time", "Agenda", "Reference", "a.m.", "p.m."):
        assert english not in text
