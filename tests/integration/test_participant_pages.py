"""Participants' pages (/r/<token>): what each link shows, every action, bad answers, links that are not good."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from service.followups import messages
from service.followups.models import Followup
from service.i18n import translate
from service.incidents.models import Personnel
from tests.factories import incident_body, person
from tests.integration.planning_helpers import add_roster
from tests.integration.test_followup_messages import deliver_due, mail  # noqa: F401 (a fixture)
from tests.integration.test_responses import (  # noqa: F401 (incident is a fixture)
    db, escalations, followup, incident, individual_sessions, outbox, report, snapshot, token, token_of,
)

FORM = "application/x-www-form-urlencoded"
OTHER = {"fr": "en", "en": "fr"}
TIME_VALUE = re.compile(r'name="starts_at" value="(\d{4}-[^"]+)"')


def page(client, link: str, query: str = ""):
    return client.get(f"/r/{link}{query}")


def post(client, link: str, query: str = "", **form):
    return client.post(f"/r/{link}{query}", data=form, content_type=FORM)


def text(response) -> str:
    return response.get_data(as_text=True)


def heading(response) -> str:
    [h1] = re.findall(r"<h1>(.*?)</h1>", text(response), re.S)
    return " ".join(h1.split())


def due(app, clock, kind: str, n: int = 1) -> str:
    """The link of participant n's check-in or screening, with the clock at its due time."""
    item = followup(app, kind, n)
    clock.now = max(clock.now, item.due_at)
    return token_of(app, item)


def offered_times(client, link: str, choice: str) -> list[str]:
    response = page(client, link, f"?step=when&choice={choice}")
    assert response.status_code == 200, text(response)
    return TIME_VALUE.findall(text(response))


def stored(app, kind: str, n: int = 1) -> Followup:
    return followup(app, kind, n)


# -- every page, in both languages ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["invitation", "offer", "checkin", "screening"])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_page_shows_in_both_languages_with_the_switch_and_its_forms_keep_the_language(app, client, incident,
                                                                                           clock, kind, lang):
    link = due(app, clock, kind) if kind in ("checkin", "screening") else token(app, kind)
    response = page(client, link, f"?lang={lang}")
    assert response.status_code == 200, text(response)
    body = text(response)
    assert f'<html lang="{lang}">' in body and heading(response)
    assert f'hreflang="{OTHER[lang]}"' in body and f"lang={OTHER[lang]}" in body  # the switch
    assert re.search(rf'<form method="post" action="/r/{re.escape(link)}\?lang={lang}"', body)
    assert f'/r/{link}/unsubscribe?lang={lang}' in body
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
    assert "Officer Number" not in body and "@north.example.org" not in body  # no one's name or email


def test_a_page_speaks_the_participants_language_unless_they_switch(app, client, keys):
    add_roster(client, keys, languages=["en", "fr"])
    report(client, keys, incident_body(personnel=[person(1, language="fr")]))
    link = token(app, "invitation")
    french = page(client, link)
    assert '<html lang="fr">' in text(french) and heading(french) == "Invitation à un débriefing de groupe"
    assert "J’y serai" in text(french) and "Personne n’est obligé de prendre la parole." in text(french)
    english = page(client, link, "?lang=en")
    assert heading(english) == "Invitation to a group debriefing"


def test_showing_pages_changes_nothing(app, client, incident, clock):
    before = snapshot(app)
    for kind in ("invitation", "offer", "checkin", "screening"):
        link = token(app, kind)
        for query in ("", "?action=accept", "?action=accept&choice=peer", "?step=when&choice=clinician",
                      "?action=answer&contact_requested=true", "?action=opt_out"):
            assert page(client, link, query).status_code in (200, 303)
        assert client.get(f"/r/{link}/unsubscribe").status_code == 200
    assert snapshot(app) == before


def test_the_stop_all_messages_link_of_a_message_opens_the_opt_out_page(app, client, incident):
    link = token(app, "offer")
    response = page(client, link, "?action=opt_out&lang=fr")
    assert response.status_code == 303 and response.headers["Location"] == f"/r/{link}/unsubscribe?lang=fr"


# -- the invitation ---------------------------------------------------------------------------------


def test_the_invitation_explains_the_session_and_takes_an_answer(app, client, incident):
    link = token(app, "invitation")
    shown = text(page(client, link))
    assert "Invitation to a group debriefing" in shown and "You do not have to speak" in shown
    assert "In person, in the north-east region" in shown and "150 minutes" in shown
    assert "Sunday, November 22, 2026" in shown or "Monday, November 23, 2026" in shown
    assert "voluntary" in shown

    accepted = post(client, link, action="accept")
    assert accepted.status_code == 200 and heading(accepted) == "Thank you: you will attend"
    assert stored(app, "invitation").status == "accepted"
    assert "You said you will attend" in text(page(client, link))
    declined = post(client, link, "?lang=fr", action="decline")
    assert declined.status_code == 200 and heading(declined) == "Merci: vous n’y serez pas"
    assert stored(app, "invitation").status == "declined"


@pytest.mark.parametrize("form", [{}, {"action": "maybe"}, {"action": "opt_out"}])
def test_an_invitation_answered_badly_is_shown_again_with_the_error_and_stores_nothing(app, client, incident, form):
    link = token(app, "invitation")
    before = snapshot(app)
    response = post(client, link, **form)
    assert response.status_code == 422
    body = text(response)
    assert 'class="error-summary"' in body and 'href="#action-accept"' in body and 'id="action-accept"' in body
    assert 'id="action-error"' in body and "Say whether you will attend." in body
    assert "<title>Error: " in body
    assert snapshot(app) == before


def test_an_invitation_can_no_longer_be_answered_once_its_session_started(app, client, incident, clock):
    [session] = incident["sessions"]
    link = token(app, "invitation")
    clock.now = datetime.fromisoformat(session["starts_at"]) + timedelta(minutes=5)
    before = snapshot(app)
    shown = page(client, link)
    assert shown.status_code == 200 and "answers are no longer taken" in text(shown) and "I will attend" not in text(shown)
    refused = post(client, link, action="accept")
    assert refused.status_code == 409 and "answers are no longer taken" in text(refused)
    assert snapshot(app) == before


# -- the individual-session offer -------------------------------------------------------------------


def test_the_offer_takes_a_clinician_and_the_second_time_offered_then_confirms_it(app, client, incident, clock):
    link = token(app, "offer")
    first = page(client, link, "?action=accept&choice=clinician")
    assert 'value="clinician" aria-describedby="choice-clinician-hint" checked' in text(first)  # preselected, not taken
    chosen = post(client, link, "?lang=fr", action="choose", choice="clinician")
    assert chosen.status_code == 303
    assert chosen.headers["Location"] == f"/r/{link}?step=when&choice=clinician&lang=fr"
    times = offered_times(client, link, "clinician")
    assert len(times) >= 3 and times == sorted(times)
    for moment in times:
        starts_at = datetime.fromisoformat(moment)
        assert clock() + timedelta(hours=4) <= starts_at <= clock() + timedelta(days=7)

    booked = post(client, link, action="accept", choice="clinician", starts_at=times[1])
    assert booked.status_code == 200, text(booked)
    assert heading(booked) == "Your session is booked" and "A clinician" in text(booked)
    assert "Cancel this session" in text(booked)
    [session] = individual_sessions(app)
    assert session.starts_at == datetime.fromisoformat(times[1])
    assert [a.facilitator.kind for a in session.assignments] == ["clinician"]
    offer = stored(app, "offer")
    assert offer.status == "accepted" and offer.choice == "clinician" and offer.booked_session_id == session.id
    [invitation] = outbox(app, kind="invitation_new", session_id=session.id)
    assert invitation.recipient == "officer1@north.example.org" and invitation.payload["attachments"]
    # The link shows the booked session from now on.
    again = page(client, link)
    assert heading(again) == "Your individual session" and "Cancel this session" in text(again)


def test_no_time_offered_or_booked_overlaps_the_persons_own_group_sessions(app, client, incident):
    from service.sessions.models import Session, SessionParticipant

    link = token(app, "offer")
    with db(app) as session:
        person_id = session.scalar(select(Personnel.id).where(Personnel.email == "officer1@north.example.org"))
        own = session.execute(select(Session.starts_at, Session.ends_at).join(SessionParticipant)
                              .where(SessionParticipant.personnel_id == person_id)).all()
    assert own
    buffer = timedelta(minutes=60)
    for choice in ("peer", "clinician"):
        for moment in offered_times(client, link, choice):
            start = datetime.fromisoformat(moment)
            assert all(start + timedelta(hours=1) + buffer <= begins or start >= ends + buffer for begins, ends in own)
    assert post(client, link, action="accept", choice="peer", starts_at="first").status_code == 200
    [booked] = individual_sessions(app)
    assert all(booked.ends_at + buffer <= begins or booked.starts_at >= ends + buffer for begins, ends in own)


def test_the_first_available_time_books_the_earliest_offered(app, client, incident):
    link = token(app, "offer")
    times = offered_times(client, link, "peer")
    booked = post(client, link, action="accept", choice="peer", starts_at="first")
    assert booked.status_code == 200, text(booked)
    [session] = individual_sessions(app)
    assert session.starts_at == datetime.fromisoformat(times[0])


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"action": "choose"}, "choice", "Choose whom you would like to meet."),
    ({"action": "choose", "choice": "chaplain"}, "choice", "Choose whom you would like to meet."),
    ({"choice": ""}, "choice", "Choose whom you would like to meet."),
    ({"action": "accept", "choice": "pastor", "starts_at": "first"}, "choice", "Choose whom you would like to meet."),
    ({"action": "accept", "choice": "peer"}, "starts_at", "Choose a time."),
    ({"action": "accept", "choice": "peer", "starts_at": "next tuesday"}, "starts_at", "Choose one of the times shown."),
    ({"action": "accept", "choice": "peer", "starts_at": "2026-11-24T13:00:00"}, "starts_at",
     "Choose one of the times shown."),
])
def test_an_offer_answered_badly_is_shown_again_with_the_error_beside_the_field(app, client, incident, form, field,
                                                                               message):
    link = token(app, "offer")
    before = snapshot(app)
    response = post(client, link, **form)
    assert response.status_code == 422, text(response)
    body = text(response)
    assert f'id="{field}-error"' in body and message in body and 'class="error-summary"' in body
    if field == "starts_at":
        assert len(TIME_VALUE.findall(body)) >= 3  # the times are offered again
        assert 'name="choice" value="peer"' in body  # and the choice kept
    assert snapshot(app) == before


def test_a_time_taken_meanwhile_is_said_and_the_times_offered_again(app, client, incident):
    mine, theirs, others = token(app, "offer", 1), token(app, "offer", 2), token(app, "offer", 3)
    wanted = offered_times(client, mine, "clinician")[0]
    # Both clinicians are booked at that time by the other two participants before the first one confirms.
    for link in (theirs, others):
        assert post(client, link, action="accept", choice="clinician", starts_at=wanted).status_code == 200
    before = snapshot(app)
    response = post(client, mine, action="accept", choice="clinician", starts_at=wanted)
    assert response.status_code == 409
    body = text(response)
    assert "That time was just taken. Choose another time." in body and 'id="starts_at-error"' in body
    assert wanted not in TIME_VALUE.findall(body) and len(TIME_VALUE.findall(body)) >= 3
    assert snapshot(app) == before and stored(app, "offer", 1).status == "open"


def test_a_repeated_booking_books_nothing_twice(app, client, incident):
    link = token(app, "offer")
    times = offered_times(client, link, "peer")
    assert post(client, link, action="accept", choice="peer", starts_at=times[0]).status_code == 200
    before = snapshot(app)
    again = post(client, link, action="accept", choice="peer", starts_at=times[1])
    assert again.status_code == 409 and heading(again) == "Your individual session"
    assert snapshot(app) == before and len(individual_sessions(app)) == 1


def test_the_booked_session_can_be_cancelled_from_the_offer_and_another_booked(app, client, incident):
    link = token(app, "offer")
    times = offered_times(client, link, "peer")
    assert post(client, link, action="accept", choice="peer", starts_at=times[0]).status_code == 200
    [session] = individual_sessions(app)
    cancelled = post(client, link, action="cancel")
    assert cancelled.status_code == 200 and heading(cancelled) == "Your session is cancelled"
    [session] = individual_sessions(app)
    assert session.status == "cancelled" and not any(a.active for a in session.assignments)
    assert len(outbox(app, kind="assignment_cancelled", session_id=session.id)) == 1
    assert len(outbox(app, kind="invitation_cancelled", session_id=session.id)) == 1
    assert stored(app, "offer").status == "declined"
    assert followup(app, "invitation", session_id=session.id).status == "declined"
    # Cancelling again changes nothing; the offer is open again.
    before = snapshot(app)
    assert post(client, link, action="cancel").status_code == 409
    assert snapshot(app) == before
    reopened = page(client, link)
    assert "was cancelled" in text(reopened) and 'name="choice"' in text(reopened)
    assert post(client, link, action="accept", choice="peer", starts_at="first").status_code == 200
    assert sorted(s.status for s in individual_sessions(app)) == ["cancelled", "scheduled"]


def test_the_offer_can_be_declined(app, client, incident):
    link = token(app, "offer")
    response = post(client, link, action="decline")
    assert response.status_code == 200 and heading(response) == "Thank you for your answer"
    assert stored(app, "offer").status == "declined" and individual_sessions(app) == []


# -- the check-ins ----------------------------------------------------------------------------------


def test_the_checkin_asking_for_contact_tells_a_clinician(app, client, incident, clock):
    link = due(app, clock, "checkin")
    response = post(client, link, contact_requested="yes")
    assert response.status_code == 200 and heading(response) == "Someone will contact you"
    [escalation] = escalations(app)
    assert escalation.reason == "contact_requested"
    assert stored(app, "checkin").status == "answered" and stored(app, "checkin").contact_requested is True
    assert heading(page(client, link)) == "Your answer was recorded"


def test_the_checkin_saying_all_is_well_tells_no_one(app, client, incident, clock):
    response = post(client, due(app, clock, "checkin"), contact_requested="no")
    assert response.status_code == 200 and heading(response) == "Thank you"
    assert escalations(app) == [] and stored(app, "checkin").status == "answered"


@pytest.mark.parametrize("form", [{}, {"contact_requested": "perhaps"}])
def test_a_checkin_answered_badly_stores_nothing(app, client, incident, clock, form):
    link = due(app, clock, "checkin")
    before = snapshot(app)
    response = post(client, link, **form)
    assert response.status_code == 422 and 'id="contact_requested-error"' in text(response)
    assert snapshot(app) == before


def test_a_checkin_not_yet_due_says_when_it_opens(app, client, incident):
    response = page(client, token(app, "checkin"))
    assert response.status_code == 200 and heading(response) == "This check-in is not open yet"
    assert "I would like someone to contact me" not in text(response)


YES3 = {"q1": "yes", "q2": "no", "q3": "yes", "q4": "no", "q5": "yes"}


def test_the_screening_shows_the_instrument_and_a_positive_screen_gets_a_calm_page_and_a_clinician(app, client,
                                                                                                  incident, clock):
    link = due(app, clock, "screening")
    shown = text(page(client, link))
    assert "Sometimes things happen to people that are unusually or especially frightening" in shown
    assert "In the past month, have you…" in shown
    assert "had nightmares about the event(s) or thought about the event(s) when you did not want to?" in shown
    assert shown.count('type="radio"') == 10 and "not been validated" not in shown
    response = post(client, link, **YES3)
    assert response.status_code == 200, text(response)
    body = text(response)
    assert heading(response) == "Thank you for your answers"
    assert "A clinician of the team will contact you" in body and "988" in body and "1\u00a0866\u00a0APPELLE" in body
    shown_text = re.sub(r"<[^>]+>", " ", body.split("<main")[1])
    for word in ("score", "positive", "PTSD", "diagnos", "3 "):
        assert word not in shown_text, word
    screening = stored(app, "screening")
    assert screening.answers == [True, False, True, False, True] and screening.positive is True
    assert (screening.screen_instrument, screening.screen_version, screening.screen_language,
            screening.screen_cut_point, screening.screen_validated) == ("PC-PTSD-5", "2016", "en", 3, True)
    [escalation] = escalations(app)
    assert escalation.reason == "positive_screen"
    # Later, the link says the answers were recorded and can be given again, never what they were.
    later = page(client, link)
    assert heading(later) == "Thank you for your answers"
    assert "You can answer these questions again until" in text(later) and "988" in text(later)
    assert "checked" not in text(later) and "A clinician of the team will" not in text(later)


def test_an_answered_screening_shows_no_answers_and_takes_new_ones_but_a_clinician_stays_told(app, client, incident,
                                                                                             clock):
    link = due(app, clock, "screening")
    assert post(client, link, **YES3).status_code == 200
    negative = {name: "no" for name in YES3}
    assert post(client, due(app, clock, "screening", 2), **negative).status_code == 200
    # Whoever opens either link sees the same page: not what was answered, nor whether a clinician will call.
    pages = [re.sub(r"/r/[^\"?/]+", "/r/LINK", text(page(client, t)))
             for t in (link, token_of(app, followup(app, "screening", 2)))]
    assert pages[0] == pages[1]
    again = page(client, link, "?action=answer")
    assert again.status_code == 200 and text(again).count('type="radio"') == 10 and "checked" not in text(again)
    assert "You can answer these questions again until" in text(again)
    clock.advance(days=2)
    answered = post(client, link, **negative)
    # The latest answers stand; the clinician told of the first ones still calls, and the page says so.
    assert answered.status_code == 200 and "A clinician of the team will contact you" in text(answered)
    assert stored(app, "screening").answers == [False] * 5 and stored(app, "screening").positive is False
    [escalation] = escalations(app)
    assert escalation.reason == "positive_screen"
    assert [m.status for m in outbox(app, kind="escalation")] == ["pending"]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_page_that_asks_something_says_who_sees_what(app, client, incident, clock, lang):
    who_sees = translate(lang, messages.WHO_SEES)
    for kind in ("invitation", "offer", "checkin", "screening"):
        link = due(app, clock, kind) if kind in ("checkin", "screening") else token(app, kind)
        body = text(page(client, link, f"?lang={lang}"))
        assert who_sees in body, kind
        assert "Only the clinical team" not in body and "Seule l’équipe clinique" not in body


def test_opting_out_from_the_page_keeps_the_clinician_who_was_told(app, client, incident, clock):
    link = due(app, clock, "screening")
    assert post(client, link, **YES3).status_code == 200
    confirm = text(page(client, link, "/unsubscribe"))
    assert "If a clinician of the team was already asked to contact you, that request stands" in confirm
    done = post(client, link, "/unsubscribe")
    assert done.status_code == 200 and heading(done) == "You will receive no more messages about this incident"
    assert [m.status for m in outbox(app, kind="escalation")] == ["pending"] and len(escalations(app)) == 1
    assert stored(app, "offer").status == "cancelled"


def test_the_french_screening_says_its_text_is_not_validated_and_the_record_says_so(app, client, incident, clock):
    link = due(app, clock, "screening")
    shown = text(page(client, link, "?lang=fr"))
    assert "traduction non validée du PC-PTSD-5" in shown and "Au cours du dernier mois, avez-vous…" in shown
    response = post(client, link, "?lang=fr", q1="no", q2="no", q3="no", q4="no", q5="yes")
    assert response.status_code == 200 and heading(response) == "Merci de vos réponses"
    screening = stored(app, "screening")
    assert screening.positive is False and screening.screen_language == "fr" and screening.screen_validated is False
    assert escalations(app) == []


def test_a_negative_screen_asking_for_contact_tells_a_clinician(app, client, incident, clock):
    response = post(client, due(app, clock, "screening"), q1="no", q2="no", q3="no", q4="no", q5="no",
                    contact_requested="yes")
    assert response.status_code == 200 and "A clinician of the team will contact you" in text(response)
    [escalation] = escalations(app)
    assert escalation.reason == "contact_requested"


def test_a_screening_with_missing_answers_shows_each_error_and_keeps_the_answers(app, client, incident, clock):
    link = due(app, clock, "screening")
    before = snapshot(app)
    response = post(client, link, q1="yes", q3="no", q5="maybe", contact_requested="yes", note="junk")
    assert response.status_code == 422
    body = text(response)
    for name in ("q2", "q4", "q5"):
        assert f'id="{name}-error"' in body and f'href="#{name}-yes"' in body
    assert "Question 2: Answer yes or no." in body
    assert 'id="q1-error"' not in body and 'id="q3-error"' not in body
    assert 'id="q1-yes" name="q1" value="yes" checked' in body and 'id="q3-no" name="q3" value="no" checked' in body
    assert 'name="contact_requested" value="yes" checked' in body
    assert snapshot(app) == before


def test_a_screening_link_opened_from_the_contact_me_link_ticks_the_box(app, client, incident, clock):
    body = text(page(client, due(app, clock, "screening"), "?action=answer&contact_requested=true"))
    assert 'name="contact_requested" value="yes" checked' in body


# -- links that are not good, bodies too long -------------------------------------------------------


def test_a_tampered_link_is_a_404_page_and_an_expired_one_a_410_page(app, client, incident, clock):
    link = token(app, "invitation")
    tampered = link[:20] + ("A" if link[20] != "A" else "B") + link[21:]
    for response in (page(client, tampered), post(client, tampered, action="accept"), page(client, "x" * 500)):
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert heading(response) == "This link is not valid"
    [session] = incident["sessions"]
    clock.now = datetime.fromisoformat(session["ends_at"])
    before = snapshot(app)
    for response in (page(client, link), post(client, link, action="accept")):
        assert response.status_code == 410 and heading(response) == "This link has expired"
        assert "Traceback" not in text(response)
    assert snapshot(app) == before


def test_an_over_long_body_is_a_413_page(app, client, incident):
    before = snapshot(app)
    response = client.post(f"/r/{token(app, 'invitation')}", data={"action": "accept", "x": "y" * 3_000_000},
                           content_type=FORM)
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert heading(response) == "What you sent is too long"
    assert snapshot(app) == before


# -- opting out -----------------------------------------------------------------------------------


def test_opting_out_from_the_page_confirms_it(app, client, incident):
    link = token(app, "offer")
    confirm = client.get(f"/r/{link}/unsubscribe?lang=fr")
    assert confirm.status_code == 200 and heading(confirm) == "Ne plus recevoir de messages au sujet de cet événement?"
    done = client.post(f"/r/{link}/unsubscribe?lang=fr", data={"List-Unsubscribe": "One-Click"}, content_type=FORM)
    assert done.status_code == 200 and heading(done) == "Vous ne recevrez plus de messages au sujet de cet événement"
    with db(app) as s:
        assert s.scalars(select(Personnel.opted_out_at).where(Personnel.external_id == "B0001")).one() is not None
    # Every page of that person's links now says so, and asks nothing.
    shown = page(client, token(app, "invitation"))
    assert heading(shown) == "You will receive no more messages about this incident"
    assert "I will attend" not in text(shown)


def test_one_click_unsubscribe_works_with_a_bare_post_even_from_an_expired_link(app, client, incident, clock):
    link = token(app, "invitation")
    [session] = incident["sessions"]
    clock.now = datetime.fromisoformat(session["ends_at"]) + timedelta(days=1)  # the invitation link has expired
    response = client.post(f"/r/{link}/unsubscribe", data="List-Unsubscribe=One-Click", content_type=FORM)
    assert response.status_code == 200, text(response)
    assert "Set-Cookie" not in response.headers
    with db(app) as s:
        me = s.scalars(select(Personnel).where(Personnel.external_id == "B0001")).one()
        assert me.opted_out_at == clock()
    assert {f.status for f in [stored(app, "checkin"), stored(app, "screening"), stored(app, "offer")]} == {"cancelled"}
    before = snapshot(app)
    again = client.post(f"/r/{link}/unsubscribe", data="List-Unsubscribe=One-Click", content_type=FORM)
    assert again.status_code == 200 and snapshot(app) == before


# -- the messages' links and headers --------------------------------------------------------------------


def test_participant_emails_link_to_the_pages_and_carry_one_click_unsubscribe(app, client, keys, mail):
    add_roster(client, keys)
    report(client, keys, incident_body(people=1))
    deliver_due(app)
    to_participant = [m for m in mail.messages if m["To"] == "officer1@north.example.org"]
    assert {m["Subject"] for m in to_participant} >= {"Invitation to a support session",
                                                       "An individual session, if you would like one"}
    for message in to_participant:
        [link] = set(re.findall(r"http://127\.0\.0\.1:8000/r/([^?/\s]+)", message.get_body(("plain",)).get_content()))
        assert message["List-Unsubscribe"] == f"<http://127.0.0.1:8000/r/{link}/unsubscribe>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert client.get(f"/r/{link}").status_code == 200
    to_facilitators = [m for m in mail.messages if m["To"] != "officer1@north.example.org"]
    assert to_facilitators and all(m["List-Unsubscribe"] is None for m in to_facilitators)


def test_declining_the_individual_sessions_invitation_cancels_it_and_reopens_the_offer(app, client, incident):
    offer = token(app, "offer")
    assert post(client, offer, action="accept", choice="peer", starts_at="first").status_code == 200
    [session] = individual_sessions(app)
    link = token_of(app, followup(app, "invitation", session_id=session.id))
    shown = page(client, link)
    assert heading(shown) == "Your individual session" and "the session is cancelled" in text(shown)
    declined = post(client, link, action="decline")
    assert declined.status_code == 200 and heading(declined) == "Thank you: you will not attend"
    [session] = individual_sessions(app)
    assert session.status == "cancelled" and stored(app, "offer").status == "declined"
    assert 'name="choice"' in text(page(client, offer))
