"""Helpers of the console tests: accounts, CSRF tokens, and signing in through the emailed link."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from service.accounts import service as accounts
from service.outbox.models import OutboxMessage

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SIGNIN_LINK = re.compile(r"(/signin/[A-Za-z0-9_-]+)")


def csrf_of(html: str) -> str:
    """The CSRF token of a page's first form."""
    return CSRF.search(html).group(1)


def add_account(app, email: str, role: str, agency: str | None = None) -> int:
    """An account, created as `debrief users create` does; returns its id."""
    services = app.extensions["debrief"]
    with services.session_factory() as db:
        return accounts.create_account(db, email=email, role=role, agency_code=agency, now=services.clock()).id


def signin_emails(app, address: str) -> list[OutboxMessage]:
    """The sign-in emails queued for an address, oldest first."""
    with app.extensions["debrief"].session_factory() as db:
        return list(db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "signin_link",
                                                           OutboxMessage.recipient == address)
                               .order_by(OutboxMessage.created_at)))


def ask_for_link(client, address: str, *, next_path: str = "") -> Any:
    """Fill in the sign-in form with an address; returns the answer."""
    token = csrf_of(client.get("/signin").get_data(as_text=True))
    return client.post("/signin", data={"csrf_token": token, "email": address, "next": next_path})


def emailed_link(app, address: str) -> str:
    """The path of the newest sign-in link emailed to an address."""
    return SIGNIN_LINK.search(signin_emails(app, address)[-1].payload["text"]).group(1)


def press_sign_in(client, link: str) -> Any:
    """Open an emailed link and press its "Sign in" button; returns the answer to the press."""
    # The link's page, or the page that offers a new link: either carries a form token.
    token = csrf_of(client.get(link).get_data(as_text=True))
    return client.post(link, data={"csrf_token": token})


def sign_in(client, app, address: str, *, next_path: str = "") -> Any:
    """Sign in as the owner of an address, the way a person does; returns the answer to the button."""
    asked = ask_for_link(client, address, next_path=next_path)
    assert asked.status_code == 200, asked.get_data(as_text=True)
    answer = press_sign_in(client, emailed_link(app, address))
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return answer


def post_form(client, path: str, data: dict[str, Any], *, form_page: str | None = None) -> Any:
    """Post a console form with the CSRF token of the page it is on."""
    token = csrf_of(client.get(form_page or path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def signed_in_client(app, email: str, role: str, agency: str | None = None) -> Any:
    """A test client signed in to the console with a new account."""
    add_account(app, email, role, agency)
    client = app.test_client()
    sign_in(client, app, email)
    return client


def seed_live_console(live, *people: tuple[str, str, str | None]) -> tuple[Any, Any]:
    """The live server's agencies and keys, and an account for each (email, role, agency): (keys, an API client)."""
    from service.accounts import service as accounts
    from tests.conftest import seed_agencies

    services = live.app.extensions["debrief"]
    with services.session_factory() as db:
        keys = seed_agencies(db)
        for email, role, agency in people:
            accounts.create_account(db, email=email, role=role, agency_code=agency, now=services.clock())
    return keys, live.app.test_client()
