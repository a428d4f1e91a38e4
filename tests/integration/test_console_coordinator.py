"""The coordinators' board and incident pages: at risk first with problems in words, and every action
(re-plan, reschedule, cancel, complete, add personnel, follow-ups) through the same services as the API."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import icalendar
import pytest
from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.incidents.models import Personnel
from service.outbox.models import OutboxMessage
from tests.console_helpers import add_account, csrf_of, post_form, sign_in, signed_in_client
from tests.factories import incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster

COORDINATOR = "coord@north.example.org"
SUPERVISOR = "sup@north.example.org"
NO_CLINICIAN = "No clinician is free in the window: add one to the roster, or let one lead sessions by video (roster)."


def words(answer, status: int = 200) -> str:
    assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True)[:2000])
    html = answer.get_data(as_text=True)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&amp;", "&")


@pytest.fixture
def coordinator(app, keys):
    return signed_in_client(app, COORDINATOR, "coordinator", "north")


def report(client, keys, body=None):
    return report_planned(client, body or incident_body(), keys.auth("dispatch"))


def api_incident(client, keys, incident_id):
    return client.get(f"/v1/incidents/{incident_id}", headers=keys.auth("coordinator")).get_json()


def outbox(app, kind: str) -> list[OutboxMessage]:
    with app.extensions["debrief"].session_factory() as db:
        return list(db.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def test_the_board_puts_incidents_at_risk_first_with_their_problems_in_words(app, client, keys, coordinator):
    add_roster(client, keys, clinicians=0, peers=4)  # no clinician: every incident needs attention
    report(client, keys, incident_body("CAD-OLD"))
    add_roster(client, keys, clinicians=2, peers=0, start=20)
    report(client, keys, incident_body("CAD-FINE"))  # planned: not at risk
    page = words(coordinator.get("/incidents"))
    at_risk, others = page.split("Other incidents")
    assert "CAD-OLD" in at_risk and "Needs attention" in at_risk and NO_CLINICIAN in at_risk
    assert "CAD-FINE" in others and "CAD-FINE" not in at_risk and "Closes in 70 h" in others
    html = coordinator.get("/incidents").get_data(as_text=True)
    assert "Updated at" in page and "http-equiv" not in html and "/incidents?refresh=1" in html
    refreshing = coordinator.get("/incidents?refresh=1").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="60">' in refreshing and "Stop refreshing" in refreshing
    assert "<table" not in html  # cards, for phones
    only = words(coordinator.get("/incidents?at_risk=1"))
    assert "CAD-OLD" in only and "CAD-FINE" not in only
    french = words(coordinator.get("/incidents?lang=fr"))
    assert "Aucun clinicien" in french and "Mis à jour" in french


def test_the_incident_page_shows_the_sessions_team_by_name_and_agenda(app, client, keys, coordinator):
    add_roster(client, keys)
    incident = report(client, keys)
    page = words(coordinator.get(f"/incidents/{incident['id']}"))
    for fact in ("CAD-2026-0001", "Officer-involved shooting", "3 out of 5", "north-east", "Planned",
                 "Group debriefing (CISD)", "In person, region north-east", "Introduction", "Facilitator 1 (Clinician)",
                 "Reschedule", "Cancel", "Re-plan the incident", "Add a person"):
        assert fact in page, fact
    assert "Officer Number1" not in page  # participants' names only on the follow-ups page
    assert f'href="/incidents/{incident["id"]}"' in coordinator.get("/incidents").get_data(as_text=True)


def test_replan_after_a_clinician_joins_the_roster_plans_the_incident(app, client, keys, coordinator):
    add_roster(client, keys, clinicians=0, peers=4)
    incident = report(client, keys)
    assert incident["status"] == "needs_attention"
    assert NO_CLINICIAN in words(coordinator.get(f"/incidents/{incident['id']}"))
    add_roster(client, keys, clinicians=1, peers=0, start=20)
    answer = post_form(coordinator, f"/incidents/{incident['id']}/replan", {}, form_page=f"/incidents/{incident['id']}")
    assert answer.status_code == 303 and answer.headers["Location"] == f"/incidents/{incident['id']}"
    page = words(coordinator.get(f"/incidents/{incident['id']}"))
    assert "Re-planned: every group has its session." in page and NO_CLINICIAN not in page
    assert api_incident(client, keys, incident["id"])["status"] == "planned"


def test_reschedule_offers_only_times_the_service_accepts_and_moves_the_session(app, client, keys, coordinator):
    add_roster(client, keys)
    incident = report(client, keys)
    [session] = incident["sessions"]
    url = f"/incidents/{incident['id']}/sessions/{session['id']}/reschedule"
    html = coordinator.get(url).get_data(as_text=True)
    offered = re.findall(r'name="starts_at" value="([^"]+)"', html)
    assert offered and session["starts_at"] not in offered
    assert all(datetime.fromisoformat(o).minute in (0, 30) for o in offered)
    # Nothing chosen, or a time that is not offered: the form again, nothing moved.
    assert "Choose one of the times." in words(post_form(coordinator, url, {}), 422)
    off_grid = words(post_form(coordinator, url, {"starts_at": "2026-11-24T13:10:00-05:00"}), 422)
    assert "That time can no longer be offered" in off_grid
    assert api_incident(client, keys, incident["id"])["sessions"][0]["sequence"] == session["sequence"]
    chosen = offered[-1]
    answer = post_form(coordinator, url, {"starts_at": chosen})
    assert answer.status_code == 303
    moved = api_incident(client, keys, incident["id"])["sessions"][0]
    assert datetime.fromisoformat(moved["starts_at"]) == datetime.fromisoformat(chosen)
    assert moved["sequence"] == session["sequence"] + 1
    assert len(outbox(app, "assignment_moved")) == len(session["facilitators"])
    assert len(outbox(app, "invitation_moved")) == incident["personnel_count"]
    assert "The session was moved" in words(coordinator.get(f"/incidents/{incident['id']}"))
    # Each facilitator's calendar feed has the session at its new time.
    for member in session["facilitators"]:
        rotated = client.post(f"/v1/facilitators/{member['id']}/calendar-token", headers=keys.auth("coordinator"))
        feed_path = "/v1/calendars/" + rotated.get_json()["calendar_url"]["https"].rsplit("/", 1)[-1]
        [event] = [e for e in icalendar.Calendar.from_ical(client.get(feed_path).data).walk("VEVENT")
                   if str(e["UID"]).startswith(session["id"])]
        assert event.decoded("DTSTART") == datetime.fromisoformat(chosen)


def test_cancel_asks_first_then_cancels_and_complete_marks_a_started_session_held(app, client, keys, clock, coordinator):
    add_roster(client, keys)
    incident = report(client, keys)
    [session] = incident["sessions"]
    base = f"/incidents/{incident['id']}/sessions/{session['id']}"
    confirm = words(coordinator.get(f"{base}/cancel"))
    assert "Cancel the session?" in confirm
    assert api_incident(client, keys, incident["id"])["sessions"][0]["status"] == "scheduled"
    # Not started: it cannot be marked as held.
    early = post_form(coordinator, f"{base}/complete", {}, form_page=f"/incidents/{incident['id']}")
    assert early.status_code == 303
    assert "can be marked as held" in words(coordinator.get(f"/incidents/{incident['id']}"))
    assert post_form(coordinator, f"{base}/cancel", {}).status_code == 303
    after = api_incident(client, keys, incident["id"])
    assert after["sessions"][0]["status"] == "cancelled" and after["status"] == "needs_attention"
    page = words(coordinator.get(f"/incidents/{incident['id']}"))
    assert "A coordinator cancelled the session: re-plan to schedule it again." in page
    # Twice: a message, not an error page.
    again = post_form(coordinator, f"{base}/cancel", {}, form_page=f"/incidents/{incident['id']}")
    assert again.status_code == 303

    # Re-plan, then once the new session has started it can be marked as held.
    post_form(coordinator, f"/incidents/{incident['id']}/replan", {}, form_page=f"/incidents/{incident['id']}")
    [new] = [s for s in api_incident(client, keys, incident["id"])["sessions"] if s["status"] == "scheduled"]
    clock.advance(seconds=(datetime.fromisoformat(new["starts_at"]) - clock()).total_seconds())
    sign_in(coordinator, app, COORDINATOR)
    held = post_form(coordinator, f"/incidents/{incident['id']}/sessions/{new['id']}/complete", {},
                     form_page=f"/incidents/{incident['id']}")
    assert held.status_code == 303
    assert [s["status"] for s in api_incident(client, keys, incident["id"])["sessions"] if s["id"] == new["id"]] == ["completed"]


def test_add_personnel_keeps_what_was_typed_on_a_bad_form_and_adds_on_a_good_one(app, client, keys, coordinator):
    add_roster(client, keys)
    incident = report(client, keys)
    url = f"/incidents/{incident['id']}/personnel"
    bad = post_form(coordinator, url, {"external_id": "B0009", "name": "Officer Nine", "email": "not-an-email",
                                       "role": "wizard", "exposure": "direct", "language": "en", "unit": ""})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'value="Officer Nine"' in html and 'value="not-an-email"' in html
    assert "Enter an email address in the form name@example.org." in html and "Choose one of the options." in html
    known = post_form(coordinator, url, {**person(1), "unit": "patrol-3"})
    assert known.status_code == 422 and "already listed" in known.get_data(as_text=True)
    assert api_incident(client, keys, incident["id"])["personnel_count"] == 3
    added = post_form(coordinator, url, {**person(9, language="fr"), "unit": ""})
    assert added.status_code == 303
    assert api_incident(client, keys, incident["id"])["personnel_count"] == 4
    with app.extensions["debrief"].session_factory() as db:
        new = db.scalar(select(Personnel).where(Personnel.external_id == "B0009"))
        assert (new.name, new.language, new.unit, new.exposure) == ("Officer Number9", "fr", None, "direct")


def test_a_booked_individual_session_reads_as_such_on_the_followups_page(app, client, keys, coordinator):
    from tests.integration.test_supervisor_status import token_of

    add_roster(client, keys)
    incident = report(client, keys, incident_body(people=1))
    booked = client.post(f"/v1/responses/{token_of(app, 'B0001', 'offer')}", json={"action": "accept", "choice": "peer"})
    assert booked.status_code == 200, booked.get_json()
    page = words(coordinator.get(f"/incidents/{incident['id']}/followups"))
    assert page.count("Invitation to the group session") == 1 and page.count("Invitation to the individual session") == 1


def test_the_followups_page_is_audited_and_says_who_needs_clinical_follow_up(app, client, keys, clock, coordinator):
    from tests.integration.test_supervisor_status import token_of

    add_roster(client, keys)
    incident = report(client, keys, incident_body(people=2))
    clock.advance(days=30)
    screened = client.post(f"/v1/responses/{token_of(app, 'B0002', 'screening')}",
                           json={"action": "answer", "answers": [True] * 5})
    assert screened.status_code == 200
    sign_in(coordinator, app, COORDINATOR)

    def audits() -> int:
        with app.extensions["debrief"].session_factory() as db:
            return db.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "followups.read", AuditEntry.incident_id == uuid.UUID(incident["id"])))

    assert audits() == 0
    page = words(coordinator.get(f"/incidents/{incident['id']}/followups"))
    assert audits() == 1
    assert "Officer Number1" in page and "Officer Number2" in page
    assert page.count("Needs clinical follow-up") == 1 and "Invitation to the group session" in page
    for raw in ("True", "answers", "positive", "score"):
        assert raw not in page
    # Better since: the latest answers stand, but the person still needs the clinician who was told.
    again = client.post(f"/v1/responses/{token_of(app, 'B0002', 'screening')}",
                        json={"action": "answer", "answers": [False] * 5})
    assert again.status_code == 200, again.get_json()
    assert words(coordinator.get(f"/incidents/{incident['id']}/followups")).count("Needs clinical follow-up") == 1


def test_supervisors_get_403_and_another_agencys_incident_is_a_404(app, client, keys, coordinator):
    add_roster(client, keys)
    own = report(client, keys)
    other = report_planned(client, incident_body("CAD-SOUTH"), keys.auth("other_dispatch"))
    add_account(app, SUPERVISOR, "supervisor", "north")
    supervisor = app.test_client()
    sign_in(supervisor, app, SUPERVISOR)
    for path in (f"/incidents/{own['id']}", f"/incidents/{own['id']}/followups", f"/incidents/{own['id']}/personnel"):
        assert supervisor.get(path).status_code == 403
    for path in (f"/incidents/{other['id']}", f"/incidents/{other['id']}/followups", f"/incidents/{other['id']}/personnel"):
        answer = coordinator.get(path)
        assert answer.status_code == 404 and "CAD-SOUTH" not in answer.get_data(as_text=True)
    # A session of the own incident under another incident's address: 404.
    session = own["sessions"][0]["id"]
    assert coordinator.get(f"/incidents/{other['id']}/sessions/{session}/reschedule").status_code == 404
    token = csrf_of(coordinator.get("/incidents").get_data(as_text=True))
    assert coordinator.post(f"/incidents/{other['id']}/replan", data={"csrf_token": token}).status_code == 404
    # Without the form token: refused, nothing planned again.
    assert coordinator.post(f"/incidents/{own['id']}/replan").status_code == 400
