"""Admins issue and revoke API keys in the console: the secret is shown once, a revoked key is refused."""

from __future__ import annotations

import re

from sqlalchemy import select

from service.auth.models import ApiKey
from tests.console_helpers import csrf_of, signed_in_client

ADMIN = "admin@cism.example.org"


signed_in = signed_in_client


def test_an_admin_issues_a_dispatch_key_shown_once_then_revokes_it(app, client, keys):
    admin = signed_in(app, ADMIN, "admin")
    form = admin.get("/keys/new")
    assert form.status_code == 200
    issued = admin.post("/keys/new", data={"csrf_token": csrf_of(form.get_data(as_text=True)), "role": "dispatch",
                                           "agency": "north", "expires_in_days": "30"})
    assert issued.status_code == 200
    html = issued.get_data(as_text=True)
    [secret] = re.findall(r"dbk_[A-Za-z0-9_-]+", html)
    assert issued.headers["Cache-Control"] == "no-store"
    # The key works, and the list never shows a secret again.
    assert client.get("/v1/incidents", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listing = admin.get("/keys").get_data(as_text=True)
    assert "dbk_" not in listing and "Dispatch system" in listing
    with app.extensions["debrief"].session_factory() as db:
        key = db.scalars(select(ApiKey).order_by(ApiKey.id.desc())).first()
    assert key.expires_at is not None
    revoked = admin.post(f"/keys/{key.id}/revoke", data={"csrf_token": csrf_of(listing)})
    assert revoked.status_code == 303
    assert client.get("/v1/incidents", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_a_bad_key_form_is_shown_again_with_errors_and_issues_nothing(app, keys):
    admin = signed_in(app, ADMIN, "admin")
    token = csrf_of(admin.get("/keys/new").get_data(as_text=True))
    with app.extensions["debrief"].session_factory() as db:
        before = len(db.scalars(select(ApiKey)).all())
    for data in ({"role": "", "agency": "north"}, {"role": "root", "agency": "north"},
                 {"role": "dispatch", "agency": ""}, {"role": "admin", "agency": "north"},
                 {"role": "dispatch", "agency": "north", "expires_in_days": "0"},
                 {"role": "dispatch", "agency": "nowhere"}, {"role": "dispatch", "agency": "north", "expires_in_days": "x"}):
        answer = admin.post("/keys/new", data={"csrf_token": token, **data})
        assert answer.status_code == 422, data
        assert "dbk_" not in answer.get_data(as_text=True)
    assert admin.post("/keys/new", data={"role": "dispatch", "agency": "north"}).status_code == 400  # no CSRF token
    with app.extensions["debrief"].session_factory() as db:
        assert len(db.scalars(select(ApiKey)).all()) == before


def test_only_admins_see_the_keys(app, keys):
    coordinator = signed_in(app, "coord@north.example.org", "coordinator", "north")
    assert coordinator.get("/keys").status_code == 403
    assert coordinator.get("/keys/new").status_code == 403
