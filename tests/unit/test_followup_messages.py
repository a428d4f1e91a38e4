"""The words of messages and the response tokens: pure code."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from service.followups import messages, tokens
from service.followups.messages import ResponseLinks, SessionFacts
from service.i18n import translate
from service.planning.types import GROUP_REASONS

UTC = timezone.utc
LINKS = ResponseLinks(respond="https://d.example/r/T")
# 2026-11-23 08:00 in Toronto (EST, UTC-5).
SESSION = SessionFacts(kind="debriefing", starts_at=datetime(2026, 11, 23, 13, 0, tzinfo=UTC),
                       ends_at=datetime(2026, 11, 23, 15, 30, tzinfo=UTC), mode="in_person", region="north-east",
                       timezone="America/Toronto",
                       agenda=(("introduction", datetime(2026, 11, 23, 13, 0, tzinfo=UTC), 15),))


def participant_letters(lang: str):
    return [
        messages.invitation(lang, SESSION, LINKS), messages.invitation(lang, SESSION, LINKS, change="moved"),
        messages.invitation(lang, SESSION, LINKS, change="cancelled"),
        messages.offer(lang, LINKS, peer=LINKS.accept + "&choice=peer", clinician=LINKS.accept + "&choice=clinician"),
        messages.checkin(lang, LINKS), messages.screening(lang, LINKS), messages.booking_pending(lang, LINKS),
    ]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_every_participant_message_carries_the_consent_notice_and_the_opt_out_link(lang):
    for letter in participant_letters(lang):
        text = messages.as_text(letter)
        assert messages.consent(lang) in text and LINKS.opt_out in text
        # Who sees what, exactly: what the coordinators' list and the clinician's message show, and no more.
        assert translate(lang, messages.WHO_SEES) in text
        assert "{" not in text and "}" not in text  # no placeholder left unfilled


def test_no_message_promises_what_the_system_does_not_do():
    for lang in ("en", "fr"):
        for letter in participant_letters(lang):
            text = messages.as_text(letter)
            assert "Only the clinical team" not in text and "ne sont vues que par" not in text


def test_times_are_shown_in_the_agencys_zone_and_in_the_participants_language():
    en = messages.as_text(messages.invitation("en", SESSION, LINKS))
    fr = messages.as_text(messages.invitation("fr", SESSION, LINKS))
    assert "Monday, November 23, 2026 at 8:00\u202fa.m. (America/Toronto time), 150 min" in en
    assert "CISD)\u00a0: lundi 23 novembre 2026 à 8\u00a0h (heure de America/Toronto), 150\u00a0min" in fr


def test_a_session_across_the_dst_change_is_shown_in_local_time():
    # 2027-03-14: Toronto moves from UTC-5 to UTC-4 at 02:00.
    after = SessionFacts(kind="defusing", starts_at=datetime(2027, 3, 14, 13, 0, tzinfo=UTC),
                         ends_at=datetime(2027, 3, 14, 13, 45, tzinfo=UTC), mode="virtual", region="north-east",
                         timezone="America/Toronto")
    assert "Sunday, March 14, 2027 at 9:00\u202fa.m." in messages.as_text(messages.invitation("en", after, LINKS))


def test_the_screening_asks_the_five_pc_ptsd_5_questions_in_both_languages():
    for lang in ("en", "fr"):
        letter = messages.screening(lang, LINKS)
        assert len(letter.items) == 5 and letter.items == messages.SCREEN_ITEMS[lang]


def test_every_planning_reason_is_worded_in_both_languages():
    assert set(GROUP_REASONS) <= set(messages.REASONS)
    for reason in GROUP_REASONS:
        assert translate("en", messages.REASONS[reason]) == messages.REASONS[reason]
        assert translate("fr", messages.REASONS[reason]) != messages.REASONS[reason]


def test_html_escapes_every_value():
    letter = messages.Letter(subject="s", paragraphs=("<script>alert(1)</script>",),
                             links=(messages.Link("go", 'https://x.example/"><b>'),))
    body = messages.as_html(letter)
    assert "<script>" not in body and "&lt;script&gt;" in body and '"><b>' not in body


def test_a_token_opens_one_followup_until_it_expires():
    now = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    id = uuid.uuid4()
    token = tokens.sign("k" * 64, followup_id=id, kind="offer", expires_at=now + timedelta(days=30))
    claim = tokens.verify("k" * 64, token, now=now)
    assert (claim.followup_id, claim.kind) == (id, "offer")
    with pytest.raises(tokens.ExpiredToken):
        tokens.verify("k" * 64, token, now=now + timedelta(days=30))
    with pytest.raises(tokens.InvalidToken):
        tokens.verify("other" * 13, token, now=now)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (tampered, "", "not-a-token", "a.b", "é" * 10):
        with pytest.raises(tokens.InvalidToken):
            tokens.verify("k" * 64, bad, now=now)
