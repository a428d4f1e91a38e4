"""Supervisors: the plan's state as counts, incidents at risk, and nothing about any person."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select, update

from service.followups.models import Followup
from service.outbox.models import OutboxMessage
from tests.factories import NOW, incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster

LINK = re.compile(r"/r/([^?/\s]+)")


def report(client, keys, body):
    return report_planned(client, body, keys.auth("dispatch"))


def status(client, keys, incident, role="supervisor"):
    return client.get(f"/v1/incidents/{incident['id']}/status", headers=keys.auth(role))


def token_of(app, personnel_external_id: str, kind: str) -> str:
    with app.extensions["debrief"].session_factory() as db:
        from service.incidents.models import Personnel

        pid = db.scalar(select(Personnel.id).where(Personnel.external_id == personnel_external_id))
        followup = db.scalar(select(Followup).where(Followup.personnel_id == pid, Followup.kind == kind))
        message = db.scalars(select(OutboxMessage).where(OutboxMessage.followup_id == followup.id)).first()
        return LINK.search(message.payload["text"]).group(1)


def test_a_supervisor_sees_the_plan_as_counts(client, keys, app):
    add_roster(client, keys)
    incident = report(client, keys, incident_body(people=6))
    response = status(client, keys, incident)
    assert response.status_code == 200, response.get_json()
    shown = response.get_json()
    assert shown["status"] == "planned" and shown["at_risk"] is False
    [session] = shown["sessions"]
    assert session["participant_count"] == 6 and session["facilitator_count"] == 2 and session["kind"] == "debriefing"
    assert shown["offers"] == {"scheduled": 6, "sent": 0, "accepted": 0, "declined": 0, "closed": 0}
    assert shown["checkins"] == {"scheduled": 12, "sent": 0, "completed": 0, "closed": 0}
    body = json.dumps(shown)
    for n in range(1, 7):
        assert f"Number{n}" not in body and f"officer{n}@" not in body and f"B000{n}" not in body


def test_a_session_of_one_or_two_people_is_masked_with_one_more_of_its_kind(client, keys, app):
    add_roster(client, keys, clinicians=3, peers=6)
    people = [person(n) for n in range(1, 5)] + [person(5, exposure="witness")]
    incident = report(client, keys, incident_body(personnel=people))
    shown = status(client, keys, incident).get_json()
    debriefings = [s["participant_count"] for s in shown["sessions"] if s["kind"] == "debriefing"]
    # 4 direct, 1 witness: the 1 is masked, and the 4 too, or 5 people involved minus 4 would give it.
    assert sorted(map(str, debriefings)) == ["masked", "masked"]


def test_one_or_two_answers_are_never_shown_as_1_or_2(client, keys, app, clock):
    add_roster(client, keys)
    incident = report(client, keys, incident_body(people=6))
    clock.advance(minutes=10)
    response = client.post(f"/v1/responses/{token_of(app, 'B0001', 'offer')}", json={"action": "decline"})
    assert response.status_code == 200, response.get_json()
    offers = status(client, keys, incident).get_json()["offers"]
    assert offers == {"scheduled": 5, "sent": "masked", "accepted": "masked", "declined": "masked", "closed": "masked"}
    for n in (2, 3):
        client.post(f"/v1/responses/{token_of(app, f'B000{n}', 'offer')}", json={"action": "decline"})
    offers = status(client, keys, incident).get_json()["offers"]
    assert offers == {"scheduled": 3, "sent": 0, "accepted": 0, "declined": 3, "closed": 0}


def test_screening_outcomes_and_escalations_are_never_shown_not_even_as_counts(client, keys, app, clock):
    add_roster(client, keys)
    positive = report(client, keys, incident_body("CAD-POSITIVE", people=4))
    negative = report(client, keys, incident_body("CAD-NEGATIVE", personnel=[person(n) for n in range(11, 15)]))
    clock.advance(days=30)
    for external_id, answers in (("B0001", [True] * 5), ("B0011", [False] * 5)):
        answer = client.post(f"/v1/responses/{token_of(app, external_id, 'screening')}",
                             json={"action": "answer", "answers": answers})
        assert answer.status_code == 200, answer.get_json()
    shown = [status(client, keys, incident).get_json() for incident in (positive, negative)]
    # A positive screen (escalated to a clinician) and a negative one read exactly alike.
    assert shown[0]["offers"] == shown[1]["offers"] and shown[0]["checkins"] == shown[1]["checkins"]
    assert shown[0]["checkins"]["completed"] == "masked"
    body = json.dumps(shown)
    for word in ("escalat", "positive", "screen", "clinician"):
        assert word not in body


def test_status_answers_the_agencys_supervisor_coordinator_and_dispatch_only(client, keys):
    add_roster(client, keys)
    incident = report(client, keys, incident_body())
    for role in ("supervisor", "coordinator", "dispatch"):
        assert status(client, keys, incident, role).status_code == 200
    assert status(client, keys, incident, "other_dispatch").status_code == 404
    assert status(client, keys, incident, "admin").status_code == 403


def test_incidents_at_risk_are_listed_by_window_close(client, keys, app, clock):
    add_roster(client, keys, clinicians=0, peers=3)  # no clinician: every plan needs attention
    late = report(client, keys, incident_body("CAD-LATE", occurred_at=(NOW - timedelta(hours=1)).isoformat()))
    early = report(client, keys, incident_body("CAD-EARLY", occurred_at=(NOW - timedelta(hours=5)).isoformat()))
    add_roster(client, keys, clinicians=1, peers=0, start=20)
    fine = report(client, keys, incident_body("CAD-FINE", personnel=[person(9)],
                                              occurred_at=(NOW - timedelta(hours=3)).isoformat()))
    assert fine["status"] == "planned"
    listed = client.get("/v1/incidents?at_risk=true", headers=keys.auth("supervisor"))
    assert listed.status_code == 200, listed.get_json()
    assert [i["external_id"] for i in listed.get_json()["items"]] == ["CAD-EARLY", "CAD-LATE"]
    first = client.get("/v1/incidents?at_risk=true&limit=1", headers=keys.auth("supervisor")).get_json()
    assert [i["external_id"] for i in first["items"]] == ["CAD-EARLY"] and first["next_cursor"]
    second = client.get(f"/v1/incidents?at_risk=true&limit=1&cursor={first['next_cursor']}", headers=keys.auth("supervisor")).get_json()
    assert [i["external_id"] for i in second["items"]] == ["CAD-LATE"] and second["next_cursor"] is None
    assert status(client, keys, early).get_json()["at_risk"] is True
    assert status(client, keys, late).get_json()["at_risk"] is True


def test_an_unplanned_incident_is_at_risk_only_within_12_hours_of_its_window_closing(client, keys, app, clock):
    incident = report(client, keys, incident_body())
    with app.extensions["debrief"].session_factory() as db:
        from service.incidents.models import Incident

        db.execute(update(Incident).values(status="received", problems=[]))
        db.commit()
    assert status(client, keys, incident).get_json()["at_risk"] is False
    closes = status(client, keys, incident).get_json()["window"]["closes_at"]
    clock.now = __import__("datetime").datetime.fromisoformat(closes) - timedelta(hours=12)
    assert status(client, keys, incident).get_json()["at_risk"] is True


def test_admins_read_the_audit_log_of_followup_reads(client, keys, app):
    add_roster(client, keys)
    incident = report(client, keys, incident_body())
    for _ in range(2):
        assert client.get(f"/v1/incidents/{incident['id']}/followups", headers=keys.auth("coordinator")).status_code == 200
    log = client.get("/v1/audit", headers=keys.auth("admin"))
    assert log.status_code == 200, log.get_json()
    items = log.get_json()["items"]
    assert len(items) == 2 and {e["action"] for e in items} == {"followups.read"}
    assert {e["incident_id"] for e in items} == {incident["id"]} and {e["actor_role"] for e in items} == {"coordinator"}
    page = client.get("/v1/audit?limit=1", headers=keys.auth("admin")).get_json()
    rest = client.get(f"/v1/audit?limit=1&cursor={page['next_cursor']}", headers=keys.auth("admin")).get_json()
    assert len(page["items"]) == len(rest["items"]) == 1 and page["items"][0]["id"] != rest["items"][0]["id"]
    for role in ("coordinator", "supervisor", "dispatch"):
        assert client.get("/v1/audit", headers=keys.auth(role)).status_code == 403


def test_a_supervisor_lists_incidents_as_their_status_only(client, keys):
    add_roster(client, keys)
    incident = report(client, keys, incident_body())
    assert incident["sessions"] and incident["sessions"][0]["group"]
    for query in ("", "?at_risk=true", "?status=planned"):
        listed = client.get(f"/v1/incidents{query}", headers=keys.auth("supervisor"))
        assert listed.status_code == 200
        for item in listed.get_json()["items"]:
            # No sessions, groups (their keys name a language, an exposure, command staff) or problems.
            assert set(item) == {"id", "external_id", "status", "window", "at_risk"}, item
    [item] = client.get("/v1/incidents", headers=keys.auth("supervisor")).get_json()["items"]
    assert item == {"id": incident["id"], "external_id": incident["external_id"], "status": "planned",
                    "window": incident["window"], "at_risk": False}
    [whole] = client.get("/v1/incidents", headers=keys.auth("coordinator")).get_json()["items"]
    assert whole["sessions"] == incident["sessions"]
