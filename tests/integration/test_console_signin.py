"""Signing in to the console: an emailed one-time link, a server-side session, CSRF, rate limits, audit."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from service.accounts.models import Account, ConsoleSession, SigninLink
from service.app import create_app
from service.audit.models import AuditEntry
from service.console import SESSION_COOKIE
from service.outbox.models import EMAIL
from tests.conftest import seed_agencies, settings, wipe
from tests.console_helpers import (
    add_account, ask_for_link, emailed_link, post_form, press_sign_in, sign_in, signin_emails,
)
from tests.factories import facilitator_body

SUPERVISOR = "sup@north.example.org"


@pytest.fixture
def supervisor(app, keys):
    add_account(app, SUPERVISOR, "supervisor", "north")
    return SUPERVISOR


def count(app, model) -> int:
    with app.extensions["debrief"].session_factory() as db:
        return db.scalar(select(func.count()).select_from(model))


def session_cookie(client):
    return client.get_cookie(SESSION_COOKIE)


def test_a_supervisor_signs_in_from_the_emailed_link_and_lands_where_they_were_going(app, client, supervisor):
    first = client.get("/incidents")
    assert first.status_code == 303 and first.headers["Location"] == "/signin?next=/incidents"
    sent = ask_for_link(client, SUPERVISOR.upper(), next_path="/incidents")
    assert sent.status_code == 200 and "a sign-in link is on its way" in sent.get_data(as_text=True)
    [email] = signin_emails(app, SUPERVISOR)
    assert email.channel == EMAIL and email.status == "pending"
    assert "15 minutes" in email.payload["text"] and email.payload["html"].count("/signin/") == 1
    link = emailed_link(app, SUPERVISOR)
    shown = client.get(link)  # what a mail scanner fetches: a button, nothing more
    assert shown.status_code == 200 and "<button" in shown.get_data(as_text=True) and session_cookie(client) is None
    pressed = press_sign_in(client, link)
    assert pressed.status_code == 303 and pressed.headers["Location"] == "/incidents"
    cookie = pressed.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie and "Expires" not in cookie
    page = client.get("/incidents")
    assert page.status_code == 200 and f"Signed in as {SUPERVISOR}" in page.get_data(as_text=True)
    with app.extensions["debrief"].session_factory() as db:
        stored = db.scalars(select(ConsoleSession.id_hash)).all()
        token = link.rsplit("/", 1)[1]
        links = db.scalars(select(SigninLink.token_hash)).all()
    assert session_cookie(client).value not in stored and len(stored) == 1  # only the hash is kept
    assert token not in links and len(links[0]) == 64


def test_the_cookie_is_secure_when_the_service_is_published_on_https(database_url, clock):
    application = create_app(settings(database_url, public_base_url="https://debrief.example.org"), clock=clock)
    try:
        with application.extensions["debrief"].session_factory() as db:
            seed_agencies(db)
        add_account(application, SUPERVISOR, "supervisor", "north")
        client = application.test_client()
        answer = sign_in(client, application, SUPERVISOR)
        assert "Secure" in answer.headers["Set-Cookie"]
        assert emailed_link(application, SUPERVISOR).startswith("/signin/")
        assert "https://debrief.example.org/signin/" in signin_emails(application, SUPERVISOR)[0].payload["text"]
    finally:
        services = application.extensions["debrief"]
        wipe(services.engine)
        services.close()


def test_an_unknown_address_gets_the_same_answer_and_no_email(app, client, supervisor):
    def answer_for(address):
        html = ask_for_link(client, address).get_data(as_text=True)
        return CSRF_VALUE.sub("", html).replace(address, "ADDRESS")

    links_before = count(app, SigninLink)
    known, unknown = answer_for(SUPERVISOR), answer_for("nobody@north.example.org")
    assert known == unknown
    assert signin_emails(app, "nobody@north.example.org") == [] and len(signin_emails(app, SUPERVISOR)) == 1
    # The same work either way: a link row each time (the unknown one opens nothing).
    assert count(app, SigninLink) == links_before + 2


CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]+"')


def test_a_disabled_account_gets_no_link(app, client, supervisor):
    with app.extensions["debrief"].session_factory() as db:
        db.scalars(select(Account)).one().disabled_at = app.extensions["debrief"].clock()
        db.commit()
    assert ask_for_link(client, SUPERVISOR).status_code == 200
    assert signin_emails(app, SUPERVISOR) == []


def test_an_expired_link_offers_a_new_one(app, client, clock, supervisor):
    ask_for_link(client, SUPERVISOR)
    link = emailed_link(app, SUPERVISOR)
    clock.advance(minutes=15)
    page = client.get(link)
    assert page.status_code == 410
    html = page.get_data(as_text=True)
    assert "no longer works" in html and 'action="/signin"' in html and 'name="email"' in html
    assert press_sign_in(client, link).status_code == 410 and session_cookie(client) is None
    assert count(app, ConsoleSession) == 0


def test_a_link_works_once(app, client, supervisor):
    ask_for_link(client, SUPERVISOR)
    link = emailed_link(app, SUPERVISOR)
    assert press_sign_in(client, link).status_code == 303
    other = app.test_client()
    reused = press_sign_in(other, link)
    assert reused.status_code == 410 and "no longer works" in reused.get_data(as_text=True)
    assert session_cookie(other) is None and count(app, ConsoleSession) == 1
    assert client.get(link).status_code == 410


@pytest.mark.parametrize("token", ["x", "A" * 43, "A" * 5000])
def test_an_unknown_link_offers_a_new_one(client, token):
    assert client.get(f"/signin/{token}").status_code == 410


def test_a_session_ends_after_8_idle_hours_and_slides_with_use(app, client, clock, supervisor):
    sign_in(client, app, SUPERVISOR)
    for _ in range(3):
        clock.advance(hours=7, minutes=59)
        assert client.get("/incidents").status_code == 200
    clock.advance(hours=8)
    expired = client.get("/incidents")
    assert expired.status_code == 303 and expired.headers["Location"].startswith("/signin?next=")
    assert session_cookie(client) is None and count(app, ConsoleSession) == 0


def test_signing_out_ends_the_session_and_the_old_cookie_opens_nothing(app, client, supervisor):
    sign_in(client, app, SUPERVISOR)
    old = session_cookie(client).value
    answer = post_form(client, "/signout", {}, form_page="/incidents")
    assert answer.status_code == 303 and answer.headers["Location"] == "/signin?signed_out=1"
    assert session_cookie(client) is None and count(app, ConsoleSession) == 0
    client.set_cookie(SESSION_COOKIE, old)
    assert client.get("/incidents").status_code == 303
    assert "You are signed out" in client.get("/signin?signed_out=1").get_data(as_text=True)


def test_every_sign_in_makes_a_new_session_id(app, client, supervisor):
    sign_in(client, app, SUPERVISOR)
    first = session_cookie(client).value
    ask_for_link(app.test_client(), SUPERVISOR)  # e.g. from a phone, then the link opened on this computer
    assert press_sign_in(client, emailed_link(app, SUPERVISOR)).status_code == 303
    second = session_cookie(client).value
    assert first != second and count(app, ConsoleSession) == 1  # the browser's previous session ended
    fixed = app.test_client()
    fixed.set_cookie(SESSION_COOKIE, "chosen-by-an-attacker")
    press_sign_in(fixed, (ask_for_link(fixed, SUPERVISOR), emailed_link(app, SUPERVISOR))[1])
    assert session_cookie(fixed).value != "chosen-by-an-attacker"


def test_sign_ins_and_sign_outs_are_audited(app, client, supervisor):
    sign_in(client, app, SUPERVISOR)
    post_form(client, "/signout", {}, form_page="/incidents")
    with app.extensions["debrief"].session_factory() as db:
        rows = db.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        account_id = db.scalar(select(Account.id))
    assert [(r.action, r.actor_role, r.account_id) for r in rows] == [
        ("account.create", "operator", None),  # by `debrief users create`, at the server's shell
        ("console.signin", "supervisor", account_id), ("console.signout", "supervisor", account_id)]


def test_a_post_without_a_valid_csrf_token_is_a_400_page_and_changes_nothing(app, client, supervisor):
    for data in ({"email": SUPERVISOR}, {"email": SUPERVISOR, "csrf_token": "forged"}):
        answer = client.post("/signin", data=data)
        assert answer.status_code == 400 and answer.mimetype == "text/html"
        assert "This form has expired" in answer.get_data(as_text=True)
    assert signin_emails(app, SUPERVISOR) == []
    sign_in(client, app, SUPERVISOR)
    assert client.post("/signout").status_code == 400
    assert client.get("/incidents").status_code == 200  # still signed in


def test_the_sign_in_form_keeps_what_was_typed_and_says_what_is_wrong(client):
    answer = post_form(client, "/signin", {"email": "not an address"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'value="not an address"' in html and 'href="#email"' in html and 'aria-invalid="true"' in html


def test_link_requests_are_limited_per_address(app, client, supervisor):
    for _ in range(5):
        assert ask_for_link(client, SUPERVISOR).status_code == 200
    refused = ask_for_link(client, SUPERVISOR)
    assert refused.status_code == 429 and "Too many attempts" in refused.get_data(as_text=True)
    assert len(signin_emails(app, SUPERVISOR)) == 5
    assert ask_for_link(client, "someone-else@north.example.org").status_code == 200


def test_link_requests_are_limited_per_client_in_redis(database_url, redis_url, clock):
    application = create_app(settings(database_url, redis_url=redis_url), clock=clock)
    try:
        client = application.test_client()
        for n in range(30):
            assert ask_for_link(client, f"person{n}@north.example.org").status_code == 200
        assert ask_for_link(client, "person99@north.example.org").status_code == 429
        # Another app (another worker process) shares the count through Redis.
        again = create_app(settings(database_url, redis_url=redis_url), clock=clock)
        assert ask_for_link(again.test_client(), "person98@north.example.org").status_code == 429
        again.extensions["debrief"].close()
    finally:
        services = application.extensions["debrief"]
        wipe(services.engine)
        services.close()


def test_a_facilitator_signs_in_with_their_roster_email_and_sees_their_sessions(app, client, keys):
    body = facilitator_body(1, kind="clinician")
    assert client.post("/v1/facilitators", json=body, headers=keys.auth("coordinator")).status_code == 201
    answer = sign_in(client, app, body["email"])
    # Their own page (time off, calendar), through a fresh signed link.
    own = answer.headers["Location"]
    assert own.startswith("/f/")
    assert client.get(own).status_code == 200
    page = client.get("/my-sessions")
    assert page.status_code == 200 and "You have no session to come." in page.get_data(as_text=True)
    assert client.get("/").headers["Location"].startswith("/f/")
    assert client.get("/incidents").status_code == 403
