"""Facilitators' page links: signed for one facilitator, expiring, never a participant's token; their labels."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from service.facilitators import links
from service.followups import messages, tokens
from service.signing import link_serializer

KEY = ("k" * 64,)
NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)


def test_a_link_names_its_facilitator_until_it_expires():
    token = links.sign(KEY, facilitator_id=7, expires_at=NOW + timedelta(days=30))
    claim = links.verify(KEY, token, now=NOW)
    assert claim == links.FacilitatorClaim(7, NOW + timedelta(days=30))
    with pytest.raises(links.ExpiredToken):
        links.verify(KEY, token, now=NOW + timedelta(days=30))


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: t.replace(".", ".x", 1),
    lambda t: "",
    lambda t: "x" * 500,
])
def test_a_tampered_link_is_invalid(mangle):
    token = links.sign(KEY, facilitator_id=7, expires_at=NOW + timedelta(days=1))
    with pytest.raises(links.InvalidToken):
        links.verify(KEY, mangle(token), now=NOW)


def test_another_key_does_not_open_a_link():
    token = links.sign(("other" * 10,), facilitator_id=7, expires_at=NOW + timedelta(days=1))
    with pytest.raises(links.InvalidToken):
        links.verify(KEY, token, now=NOW)


def test_participant_and_facilitator_tokens_are_not_interchangeable():
    participant = tokens.sign(KEY, followup_id=uuid.uuid4(), kind="invitation", expires_at=NOW + timedelta(days=1))
    with pytest.raises(links.InvalidToken):
        links.verify(KEY, participant, now=NOW)
    facilitator = links.sign(KEY, facilitator_id=7, expires_at=NOW + timedelta(days=1))
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, facilitator, now=NOW)


@pytest.mark.parametrize("value", [[7], ["7", 1800000000], [True, 1800000000], [0, 1800000000], [7, 10**20], {"id": 7}])
def test_a_signed_value_of_another_shape_is_invalid(value):
    token = link_serializer(KEY, links.SALT).dumps(value)
    with pytest.raises(links.InvalidToken):
        links.verify(KEY, token, now=NOW)


def test_a_link_lasts_30_days_and_at_least_until_30_days_after_its_session():
    assert links.expiry(NOW) == NOW + timedelta(days=30)
    assert links.expiry(NOW, NOW + timedelta(days=2)) == NOW + timedelta(days=32)
    assert links.expiry(NOW, NOW - timedelta(days=2)) == NOW + timedelta(days=30)


def test_paths():
    session_id = uuid.uuid4()
    assert links.own_path("abc") == "/f/abc"
    assert links.session_path("abc", session_id) == f"/f/abc/sessions/{session_id}"


def test_the_links_of_a_facilitators_message_in_each_language():
    assert messages.facilitator_links("en", session_url="https://d/s", own_url="https://d/o") == (
        messages.Link("See this session, or say you cannot lead it", "https://d/s"),
        messages.Link("Your page (upcoming sessions, time off, calendar)", "https://d/o"),
    )
    assert messages.facilitator_links("fr", session_url=None, own_url="https://d/o") == (
        messages.Link("Votre page (séances à venir, congés, calendrier)", "https://d/o"),
    )
