"""The demo's mailbox: every email the service would send, readable in the browser, in demo mode only."""

import re

import pytest

from service.app import create_app
from tests.conftest import seed_agencies, settings, wipe
from tests.factories import incident_body, report_planned
from tests.integration.planning_helpers import add_roster


@pytest.fixture
def demo_app(database_url, clock):
    application = create_app(settings(database_url, demo=True), clock=clock)
    yield application
    services = application.extensions["debrief"]
    wipe(services.engine)
    services.close()


def test_the_mailbox_lists_every_email_and_shows_each_with_its_links(demo_app):
    client = demo_app.test_client()
    with demo_app.extensions["debrief"].session_factory() as db:
        keys = seed_agencies(db)
    add_roster(client, keys)
    report_planned(client, incident_body(), keys.auth("dispatch"))
    mailbox = client.get("/demo/messages?lang=en")
    assert mailbox.status_code == 200
    html = mailbox.get_data(as_text=True)
    assert "Demo mailbox" in html
    first = re.search(r'href="(/demo/messages/[0-9a-f-]+)[^"]*"', html).group(1)
    letter = client.get(first).get_data(as_text=True)
    assert "<a href=\"http" in letter  # the message's links can be followed
    assert client.get("/demo/messages/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/demo/messages?lang=fr").get_data(as_text=True).count("Boîte de courriel de démonstration") >= 1


def test_there_is_no_mailbox_outside_demo_mode(client):
    answer = client.get("/demo/messages", headers={"Accept": "text/html"})
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"


def test_the_demo_prints_console_accounts_whose_sign_in_link_is_in_the_mailbox(demo_app):
    from service.demo import seed
    from tests.console_helpers import ask_for_link, csrf_of

    printed = seed(demo_app, base_url="http://127.0.0.1:8000")
    assert "supervisor@demo.example.org (supervisor)" in printed and "admin@demo.example.org (admin)" in printed
    assert ("sign in at http://127.0.0.1:8000/signin; the sign-in link appears in the demo mailbox "
            "http://127.0.0.1:8000/demo/messages") in printed
    assert seed(demo_app, base_url="http://127.0.0.1:8000").count("coordinator@demo.example.org") == 1  # twice: no error
    client = demo_app.test_client()
    ask_for_link(client, "supervisor@demo.example.org")
    mailbox = client.get("/demo/messages?lang=en").get_data(as_text=True)
    letter_path = re.search(r'href="(/demo/messages/[0-9a-f-]+)[^"]*">Your link to sign in to Debrief', mailbox).group(1)
    link = re.search(r"http://127\.0\.0\.1:8000(/signin/[A-Za-z0-9_-]+)", client.get(letter_path).get_data(as_text=True)).group(1)
    page = client.get(link)
    assert client.post(link, data={"csrf_token": csrf_of(page.get_data(as_text=True))}).status_code == 303
    assert client.get("/incidents").status_code == 200
