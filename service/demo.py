"""Demo data for `debrief serve --demo`: an agency, a small roster, one key per role, and console accounts."""

from __future__ import annotations

from datetime import date, time, timedelta

from flask import Flask

from sqlalchemy import func, select

from service.accounts.models import Account
from service.accounts.service import create_account
from service.agencies import service as agencies
from service.auth.service import Principal, create_key
from service.facilitators import service as facilitators
from service.facilitators.models import Facilitator

DEMO_AGENCY = "demo-police"
# Console accounts of the demo agency: their sign-in links land in the demo mailbox.
DEMO_ACCOUNTS = (("coordinator@demo.example.org", "coordinator", DEMO_AGENCY),
                 ("supervisor@demo.example.org", "supervisor", DEMO_AGENCY), ("admin@demo.example.org", "admin", None))
DEMO_REGION = "north"
EVERY_DAY = [{"day": day, "start": time(7), "end": time(22)} for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
ROSTER = [
    ("Dr. Camille Roy", "clinician", ["fr", "en"]),
    ("Dr. Sam Okafor", "clinician", ["en"]),
    ("Jordan Tremblay", "peer", ["fr", "en"]),
    ("Priya Singh", "peer", ["en"]),
    ("Luc Gagnon", "peer", ["fr"]),
    ("Maya Chen", "peer", ["en"]),
    ("Sophie Bouchard", "peer", ["fr"]),
]


ADMIN = Principal(key_id=0, role="admin", agency_id=None, facilitator_id=None)


def _seed_roster(session, now) -> None:
    """Six facilitators of the provincial pool serving the demo region, unless already there."""
    if session.scalar(select(func.count()).select_from(Facilitator)):
        return
    expires = date(now.year + 1, 12, 31)
    for n, (name, kind, languages) in enumerate(ROSTER, start=1):
        certifications = [{"name": "GCI", "expires_on": expires}]
        if kind == "clinician":
            certifications.append({"name": "LICENSE", "expires_on": expires})
        facilitators.create(db=session, caller=ADMIN, data={
            "name": name, "email": f"facilitator{n}@cism.example.org", "kind": kind, "agency": None,
            "unit": f"cism-team-{n}", "languages": languages, "regions": [DEMO_REGION], "virtual_ok": True,
            "timezone": "America/Toronto", "certifications": certifications,
            "availability": {"weekly": EVERY_DAY, "exceptions": []},
        })


def _seed_accounts(session, now) -> None:
    """The demo's console accounts, unless already there."""
    for email, role, agency in DEMO_ACCOUNTS:
        if session.scalar(select(Account.id).where(Account.email == email)) is None:
            create_account(session, email=email, role=role, agency_code=agency, now=now)


def seed(app: Flask, *, base_url: str) -> str:
    """Seed the demo agency and fresh keys; return the text to print."""
    session = app.extensions["debrief"].session_factory()
    try:
        agency = agencies.get_or_create(db=session, code=DEMO_AGENCY, name="Demo Police Service", timezone="America/Toronto")
        if agency.coordinator_email is None:
            # Planning problems and follow-ups to arrange go here (to the log unless SMTP_URL is set).
            agency.coordinator_email = "cism-team@demo.example.org"
            session.commit()
        _seed_roster(session, app.extensions["debrief"].clock())
        _seed_accounts(session, app.extensions["debrief"].clock())
        keys = {
            "admin": create_key(db=session, role="admin"),
            "dispatch": create_key(db=session, role="dispatch", agency_code=DEMO_AGENCY),
            "supervisor": create_key(db=session, role="supervisor", agency_code=DEMO_AGENCY),
            "coordinator": create_key(db=session, role="coordinator", agency_code=DEMO_AGENCY),
        }
        first = session.scalar(select(Facilitator).order_by(Facilitator.id).limit(1))
        assert first is not None
        keys["facilitator"] = create_key(db=session, role="facilitator", agency_code=DEMO_AGENCY, facilitator_id=first.id)
        feed = facilitators.rotate_calendar_token(db=session, caller=ADMIN, facilitator_id=first.id, base_url=base_url)
        facilitator_name = first.name
        facilitator_email = first.email
    finally:
        session.close()
    occurred_at = (app.extensions["debrief"].clock() - timedelta(hours=2)).replace(microsecond=0).isoformat()
    lines = [f"Demo agency: {DEMO_AGENCY} (America/Toronto), {len(ROSTER)} facilitators serving region {DEMO_REGION!r}",
             "API keys (shown once):"]
    lines += [f"  {role:<12} {secret}" for role, secret in keys.items()]
    lines += [f"  (the facilitator key is {facilitator_name}'s)", "",
              f"{facilitator_name}'s calendar feed (subscribe in any calendar app): {feed.calendar_url.webcal}"]
    lines += [
        "",
        "Report an incident:",
        f"  curl -s -X POST {base_url}/v1/incidents \\",
        f"    -H 'Authorization: Bearer {keys['dispatch']}' -H 'Content-Type: application/json' -H 'Prefer: wait=10' \\",
        "    -d '{\"external_id\": \"CAD-2026-0001\", \"type\": \"officer_involved_shooting\", \"severity\": 4,"
        f" \"occurred_at\": \"{occurred_at}\", \"region\": \"north\","
        " \"personnel\": [{\"external_id\": \"B1234\", \"name\": \"Alex Martin\", \"email\": \"alex.martin@example.org\","
        " \"role\": \"officer\", \"unit\": \"patrol-3\", \"exposure\": \"direct\", \"language\": \"en\"},"
        " {\"external_id\": \"B5678\", \"name\": \"Julie Tremblay\", \"email\": \"julie.tremblay@example.org\","
        " \"role\": \"officer\", \"unit\": \"patrol-3\", \"exposure\": \"direct\", \"language\": \"fr\"}]}'",
        "",
        f"Emails the service sends (demo only; open them to answer as a participant or a facilitator): {base_url}/demo/messages",
        "",
        "Console accounts: " + ", ".join(f"{email} ({role})" for email, role, _agency in DEMO_ACCOUNTS),
        f"  sign in at {base_url}/signin; the sign-in link appears in the demo mailbox {base_url}/demo/messages",
        f"  (facilitators sign in with their roster email, e.g. {facilitator_email})",
        f"API docs: {base_url}/docs  (contract: {base_url}/openapi.yaml)",
    ]
    return "\n".join(lines)
