"""Planning through the API: intake plans, changes re-plan, facilitators are replaced."""

import threading
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from service.agencies.models import Agency
from service.incidents.models import Incident
from service.planning import PlanningPolicy
from service.sessions.models import Assignment, Session
from service.sessions import service as sessions_service
from service.sessions.service import load_state

from tests.factories import incident_body, person, plan_reports, report_planned
from tests.integration.planning_helpers import add_roster, facilitator_key, overlapping_assignments


TORONTO = ZoneInfo("America/Toronto")


def report(client, keys, body, role="dispatch"):
    return report_planned(client, body, keys.auth(role))


def test_intake_plans_a_debriefing_in_the_window(client, keys):
    roster = add_roster(client, keys)
    incident = report(client, keys, incident_body())
    assert incident["status"] == "planned" and incident["problems"] == []
    [session] = incident["sessions"]
    assert session["kind"] == "debriefing" and session["status"] == "scheduled" and session["sequence"] == 0
    # The window opens at 08:00 Toronto time the next day; 07:00–22:00 availability leaves the 60-min buffer.
    assert session["starts_at"] == "2026-11-23T08:00:00-05:00" and session["ends_at"] == "2026-11-23T10:30:00-05:00"
    assert session["participant_count"] == 3 and session["group"] == "direct-en"
    kinds = sorted(f["kind"] for f in session["facilitators"])
    assert kinds == ["clinician", "peer"] and {f["id"] for f in session["facilitators"]} <= set(roster)
    assert [a["phase"] for a in session["agenda"]] == ["introduction", "fact", "thought", "reaction", "symptom", "teaching", "re-entry"]
    assert session["agenda"][1]["starts_at"] == "2026-11-23T08:15:00-05:00"
    assert session["location"] == {"mode": "in_person", "region": "north-east"}


def test_severity_4_adds_a_defusing_within_8_hours(client, keys):
    add_roster(client, keys)
    incident = report(client, keys, incident_body(severity=4))
    by_kind = {s["kind"]: s for s in incident["sessions"]}
    assert set(by_kind) == {"defusing", "debriefing"}
    defusing = by_kind["defusing"]
    # Planned at 10:00 (15:00 UTC): the first start with an hour's notice.
    assert defusing["starts_at"] == "2026-11-22T11:00:00-05:00" and defusing["ends_at"] == "2026-11-22T11:45:00-05:00"
    assert [f["kind"] for f in defusing["facilitators"]] == ["peer", "peer"]


def test_no_clinician_leaves_the_incident_needing_attention(client, keys):
    add_roster(client, keys, clinicians=0, peers=3)
    incident = report(client, keys, incident_body())
    assert incident["status"] == "needs_attention" and incident["sessions"] == []
    assert incident["problems"] == [{"group": "direct-en", "kind": "debriefing", "reasons": ["no_clinician_available"]}]


def test_groups_are_homogeneous_and_most_exposed_first(client, keys):
    add_roster(client, keys, clinicians=3, peers=6)
    people = [person(1), person(2), person(3, exposure="witness"), person(4, role="supervisor")]
    incident = report(client, keys, incident_body(personnel=people))
    groups = [s["group"] for s in incident["sessions"]]
    assert sorted(groups) == ["direct-command-en", "direct-en", "witness-en"]
    counts = {s["group"]: s["participant_count"] for s in incident["sessions"]}
    assert counts == {"direct-en": 2, "direct-command-en": 1, "witness-en": 1}


def test_conflicted_facilitators_are_never_chosen(client, keys):
    # Every facilitator belongs to the involved unit: nobody may debrief their own unit.
    add_roster(client, keys, unit="patrol-3")
    incident = report(client, keys, incident_body())
    assert incident["status"] == "needs_attention"
    assert incident["problems"][0]["reasons"] == ["all_candidates_conflicted"]


def test_session_is_visible_to_its_agency_and_team_only(app, client, keys):
    roster = add_roster(client, keys)
    session = report(client, keys, incident_body())["sessions"][0]
    url = f"/v1/sessions/{session['id']}"
    assert client.get(url, headers=keys.auth("coordinator")).get_json() == session
    assert client.get(url, headers=keys.auth("other_coordinator")).status_code == 404
    on_team = session["facilitators"][0]["id"]
    off_team = next(fid for fid in roster if fid not in {f["id"] for f in session["facilitators"]})
    assert client.get(url, headers=facilitator_key(app, on_team)).status_code == 200
    assert client.get(url, headers=facilitator_key(app, off_team)).status_code == 404
    assert client.get(url, headers=keys.auth("supervisor")).status_code == 403


def test_decline_finds_a_replacement_at_the_same_time(app, client, keys):
    add_roster(client, keys)
    session = report(client, keys, incident_body())["sessions"][0]
    peer = next(f["id"] for f in session["facilitators"] if f["kind"] == "peer")
    response = client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, peer))
    assert response.status_code == 200
    after = client.get(f"/v1/sessions/{session['id']}", headers=keys.auth("coordinator")).get_json()
    assert after["starts_at"] == session["starts_at"] and after["sequence"] == 1
    assert peer not in {f["id"] for f in after["facilitators"]}
    assert sorted(f["kind"] for f in after["facilitators"]) == ["clinician", "peer"]


def test_decline_without_replacement_keeps_the_session_and_flags_the_incident(app, client, keys):
    add_roster(client, keys, clinicians=1, peers=1)
    incident = report(client, keys, incident_body())
    session = incident["sessions"][0]
    clinician = next(f["id"] for f in session["facilitators"] if f["kind"] == "clinician")
    client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, clinician))
    after = client.get(f"/v1/incidents/{incident['id']}", headers=keys.auth("coordinator")).get_json()
    assert after["status"] == "needs_attention"
    [kept] = after["sessions"]
    assert kept["status"] == "scheduled" and kept["sequence"] == 1
    assert [f["kind"] for f in kept["facilitators"]] == ["peer"]
    assert after["problems"] == [{"group": "direct-en", "kind": "debriefing", "reasons": ["no_replacement"]}]


def test_a_facilitator_who_declined_is_never_put_back_on_the_session(app, client, keys):
    add_roster(client, keys, clinicians=1, peers=2)
    incident = report(client, keys, incident_body())
    session = incident["sessions"][0]
    first = next(f["id"] for f in session["facilitators"] if f["kind"] == "peer")
    assert client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, first)).status_code == 200
    replaced = client.get(f"/v1/sessions/{session['id']}", headers=keys.auth("coordinator")).get_json()
    second = next(f["id"] for f in replaced["facilitators"] if f["kind"] == "peer")
    assert second != first
    # The only free peer left is the one who declined: the session stays short rather than take them back,
    # and neither a decline nor a coordinator's re-plan puts them on it again.
    assert client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, second)).status_code == 200
    assert client.post(f"/v1/incidents/{incident['id']}/replan", headers=keys.auth("coordinator")).status_code == 200
    after = client.get(f"/v1/incidents/{incident['id']}", headers=keys.auth("coordinator")).get_json()
    [kept] = after["sessions"]
    assert {f["id"] for f in kept["facilitators"]} & {first, second} == set()
    assert after["status"] == "needs_attention"


def test_a_started_session_cannot_be_declined_cancelled_or_moved(app, client, keys, clock):
    add_roster(client, keys)
    session = report(client, keys, incident_body())["sessions"][0]
    clock.advance(hours=22, minutes=30)  # 13:30Z = 08:30 Toronto time on the 23rd: under way
    peer = next(f["id"] for f in session["facilitators"] if f["kind"] == "peer")
    assert client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, peer)).status_code == 409
    assert client.post(f"/v1/sessions/{session['id']}/cancel", headers=keys.auth("coordinator")).status_code == 409
    moved = client.post(f"/v1/sessions/{session['id']}/reschedule", json={"starts_at": "2026-11-24T13:30:00-05:00"},
                        headers=keys.auth("coordinator"))
    assert moved.status_code == 409
    after = client.get(f"/v1/sessions/{session['id']}", headers=keys.auth("coordinator")).get_json()
    assert after == session


def test_time_off_replaces_the_facilitator(client, keys):
    add_roster(client, keys, clinicians=2, peers=2)
    session = report(client, keys, incident_body())["sessions"][0]
    clinician = next(f["id"] for f in session["facilitators"] if f["kind"] == "clinician")
    availability = {"weekly": [{"day": d, "start": "07:00", "end": "22:00"} for d in ("mon", "tue", "wed")],
                    "exceptions": [{"start": "2026-11-23T00:00:00-05:00", "end": "2026-11-24T00:00:00-05:00"}]}
    assert client.put(f"/v1/facilitators/{clinician}/availability", json=availability, headers=keys.auth("coordinator")).status_code == 200
    after = client.get(f"/v1/sessions/{session['id']}", headers=keys.auth("coordinator")).get_json()
    assert clinician not in {f["id"] for f in after["facilitators"]}
    assert after["sequence"] == 1 and after["starts_at"] == session["starts_at"]


def test_deactivating_a_facilitator_replaces_them(client, keys):
    add_roster(client, keys, clinicians=2, peers=2)
    session = report(client, keys, incident_body())["sessions"][0]
    peer = next(f["id"] for f in session["facilitators"] if f["kind"] == "peer")
    client.patch(f"/v1/facilitators/{peer}", json={"active": False}, headers=keys.auth("coordinator"))
    after = client.get(f"/v1/sessions/{session['id']}", headers=keys.auth("coordinator")).get_json()
    assert peer not in {f["id"] for f in after["facilitators"]} and after["sequence"] == 1


def test_reschedule_is_checked_by_the_planning_rules(client, keys):
    add_roster(client, keys)
    session = report(client, keys, incident_body())["sessions"][0]
    url = f"/v1/sessions/{session['id']}/reschedule"
    moved = client.post(url, json={"starts_at": "2026-11-24T13:30:00-05:00"}, headers=keys.auth("coordinator"))
    assert moved.status_code == 200
    body = moved.get_json()
    assert body["starts_at"] == "2026-11-24T13:30:00-05:00" and body["sequence"] == 1
    assert body["agenda"][0]["starts_at"] == "2026-11-24T13:30:00-05:00"
    for bad in ("2026-11-24T13:10:00-05:00", "2026-11-24T19:00:00-05:00", "2026-11-26T09:00:00-05:00", "2026-11-24T13:30:00"):
        response = client.post(url, json={"starts_at": bad}, headers=keys.auth("coordinator"))
        assert response.status_code == 422, bad
    assert client.get(f"/v1/sessions/{session['id']}", headers=keys.auth("coordinator")).get_json()["sequence"] == 1


def test_reschedule_onto_a_busy_facilitator_is_409(client, keys):
    add_roster(client, keys, clinicians=1, peers=2)
    first = report(client, keys, incident_body("CAD-1"))["sessions"][0]
    # The only clinician now has a session on the 23rd; a second incident lands on another day (daily cap).
    second = report(client, keys, incident_body("CAD-2"))["sessions"][0]
    assert second["starts_at"][:10] != first["starts_at"][:10]
    response = client.post(f"/v1/sessions/{second['id']}/reschedule", json={"starts_at": "2026-11-23T14:00:00-05:00"}, headers=keys.auth("coordinator"))
    assert response.status_code == 409
    assert any("daily_cap" in reasons for reasons in response.get_json()["errors"].values())


def test_cancel_and_complete(client, keys, clock):
    add_roster(client, keys, clinicians=2, peers=4)
    incident = report(client, keys, incident_body(personnel=[person(1), person(2, exposure="witness")]))
    first, second = incident["sessions"]
    assert client.post(f"/v1/sessions/{first['id']}/complete", headers=keys.auth("coordinator")).status_code == 409
    cancelled = client.post(f"/v1/sessions/{second['id']}/cancel", headers=keys.auth("coordinator")).get_json()
    assert cancelled["status"] == "cancelled" and cancelled["facilitators"] == [] and cancelled["sequence"] == 1
    assert client.post(f"/v1/sessions/{second['id']}/cancel", headers=keys.auth("coordinator")).status_code == 409
    flagged = client.get(f"/v1/incidents/{incident['id']}", headers=keys.auth("coordinator")).get_json()
    assert flagged["status"] == "needs_attention"
    assert flagged["problems"] == [{"group": "witness-en", "kind": "debriefing", "reasons": ["cancelled_by_coordinator"]}]
    clock.advance(days=3)
    done = client.post(f"/v1/sessions/{first['id']}/complete", headers=keys.auth("coordinator")).get_json()
    assert done["status"] == "completed" and done["sequence"] == 1


def test_a_coordinator_cancel_is_not_undone_by_an_unrelated_change(client, keys):
    add_roster(client, keys, clinicians=3, peers=6)
    incident = report(client, keys, incident_body(personnel=[person(1), person(2, exposure="witness")]))
    witness = next(s for s in incident["sessions"] if s["group"] == "witness-en")
    client.post(f"/v1/sessions/{witness['id']}/cancel", headers=keys.auth("coordinator"))
    after = client.patch(f"/v1/incidents/{incident['id']}", json={"add_personnel": [person(3)]}, headers=keys.auth("dispatch")).get_json()
    assert [s["status"] for s in after["sessions"] if s["group"] == "witness-en"] == ["cancelled"]
    assert after["status"] == "needs_attention"
    # A change to the cancelled group itself plans it again.
    again = client.patch(f"/v1/incidents/{incident['id']}", json={"add_personnel": [person(4, exposure="witness")]},
                         headers=keys.auth("dispatch")).get_json()
    statuses = sorted(s["status"] for s in again["sessions"] if s["group"] == "witness-en")
    assert statuses == ["cancelled", "scheduled"] and again["status"] == "planned" and again["problems"] == []


def test_coordinator_replan_restores_a_cancelled_group(client, keys):
    add_roster(client, keys)
    incident = report(client, keys, incident_body())
    client.post(f"/v1/sessions/{incident['sessions'][0]['id']}/cancel", headers=keys.auth("coordinator"))
    assert client.post(f"/v1/incidents/{incident['id']}/replan", headers=keys.auth("dispatch")).status_code == 403
    replanned = client.post(f"/v1/incidents/{incident['id']}/replan", headers=keys.auth("coordinator")).get_json()
    assert sorted(s["status"] for s in replanned["sessions"]) == ["cancelled", "scheduled"]
    assert replanned["status"] == "planned" and replanned["problems"] == []


def test_a_group_that_outgrows_its_team_keeps_its_session_and_is_flagged(client, keys):
    add_roster(client, keys, clinicians=1, peers=1)
    incident = report(client, keys, incident_body(people=12))
    [session] = incident["sessions"]
    after = client.patch(f"/v1/incidents/{incident['id']}", json={"add_personnel": [person(13)]}, headers=keys.auth("dispatch")).get_json()
    [kept] = after["sessions"]
    assert kept["id"] == session["id"] and kept["status"] == "scheduled" and kept["participant_count"] == 13
    assert after["status"] == "needs_attention"
    assert after["problems"][0]["group"] == "direct-en" and after["problems"][0]["reasons"]


def test_cancelling_the_incident_cancels_its_sessions(client, keys):
    add_roster(client, keys)
    incident = report(client, keys, incident_body())
    cancelled = client.patch(f"/v1/incidents/{incident['id']}", json={"status": "cancelled"}, headers=keys.auth("dispatch")).get_json()
    assert cancelled["status"] == "cancelled"
    assert [s["status"] for s in cancelled["sessions"]] == ["cancelled"]
    assert cancelled["sessions"][0]["sequence"] == 1


def test_adding_personnel_replans_only_affected_groups(client, keys):
    add_roster(client, keys, clinicians=3, peers=6)
    incident = report(client, keys, incident_body(personnel=[person(1), person(2), person(3, exposure="witness")]))
    before = {s["group"]: s for s in incident["sessions"]}
    after = client.patch(
        f"/v1/incidents/{incident['id']}", json={"add_personnel": [person(4, exposure="witness"), person(5, exposure="support")]},
        headers=keys.auth("dispatch"),
    ).get_json()
    now = {s["group"]: s for s in after["sessions"]}
    assert set(now) == {"direct-en", "witness-en", "support-en"}
    assert now["direct-en"] == before["direct-en"]  # untouched
    assert now["witness-en"]["id"] == before["witness-en"]["id"]
    # Same time and team: invitations change, the calendar event does not (no sequence bump).
    assert now["witness-en"]["participant_count"] == 2 and now["witness-en"]["sequence"] == 0
    assert after["status"] == "planned"


def test_severity_raised_to_4_adds_defusings(client, keys):
    add_roster(client, keys)
    incident = report(client, keys, incident_body())
    after = client.patch(f"/v1/incidents/{incident['id']}", json={"severity": 4}, headers=keys.auth("dispatch")).get_json()
    assert sorted(s["kind"] for s in after["sessions"]) == ["debriefing", "defusing"]


def test_concurrent_intake_over_a_tight_pool_never_double_books(app, keys):
    client = app.test_client()
    add_roster(client, keys, clinicians=2, peers=3)
    barrier = threading.Barrier(8)
    statuses = []

    def send(n):
        c = app.test_client()
        barrier.wait()
        statuses.append(c.post("/v1/incidents", json=incident_body(f"CAD-{n}"), headers=keys.auth("dispatch")).status_code)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 8
    # Two planners at once: they take turns, and every report is planned once.
    planners = [threading.Thread(target=plan_reports, args=(app.test_client(),)) for _ in range(2)]
    for thread in planners:
        thread.start()
    for thread in planners:
        thread.join()
    with app.extensions["debrief"].session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Incident).where(Incident.status == "received")) == 0
    assert overlapping_assignments(app) == []
    # One group session per facilitator per local day, whatever the interleaving.
    with app.extensions["debrief"].session_factory() as session:
        rows = session.execute(
            select(Assignment.facilitator_id, Assignment.starts_at).where(Assignment.active, Assignment.group_session)
        ).all()
    days = [(fid, starts_at.astimezone(TORONTO).date()) for fid, starts_at in rows]
    assert len(days) == len(set(days)) and len(days) >= 2


def test_the_list_shows_each_incident_with_its_own_sessions(client, keys):
    add_roster(client, keys, clinicians=3, peers=6)
    first = report(client, keys, incident_body("CAD-1"))
    second = report(client, keys, incident_body("CAD-2", severity=4))
    listed = {i["id"]: i for i in client.get("/v1/incidents", headers=keys.auth("coordinator")).get_json()["items"]}
    assert listed[first["id"]]["sessions"] == first["sessions"]
    assert listed[second["id"]]["sessions"] == second["sessions"]
    assert len(second["sessions"]) == 2 and len(first["sessions"]) == 1


def test_older_sessions_count_towards_load_without_being_loaded_one_by_one(app, client, keys, clock):
    ids = add_roster(client, keys, clinicians=1, peers=2)
    peer = ids[1]
    now = clock.now
    with app.extensions["debrief"].session_factory() as db:
        agency_id = db.scalar(select(Agency.id).where(Agency.code == "north"))
        incident = Incident(agency_id=agency_id, external_id="EARLIER", type="other", severity=3,
                            occurred_at=now - timedelta(days=40), region="north-east", status="planned", problems=[],
                            fingerprint="-")
        db.add(incident)
        db.flush()
        # 40 days ago is outside the 30-day lookback; 25 and 9 days count without an index; 3 days is indexed.
        for days in (40, 25, 9, 3):
            starts_at = now - timedelta(days=days)
            session = Session(incident_id=incident.id, kind="debriefing", group_key="g", language="en", status="completed",
                              starts_at=starts_at, ends_at=starts_at + timedelta(hours=2), mode="in_person",
                              region="north-east", agenda=[])
            session.assignments.append(Assignment(facilitator_id=peer, starts_at=session.starts_at, ends_at=session.ends_at))
            db.add(session)
        db.commit()
        policy = PlanningPolicy()
        everyone = load_state(db, now=now, policy=policy)
        team = load_state(db, now=now, policy=policy, facilitator_ids=[peer, ids[0]])
        for state in (everyone, team):
            assert state.schedule.load(peer, now, policy) == 3
            assert state.schedule.load(ids[0], now, policy) == 0
            assert [b.start for b in state.schedule.bookings_of(peer)] == [now - timedelta(days=3)]
        short = replace(policy, load_lookback_days=5)
        assert load_state(db, now=now, policy=short).schedule.load(peer, now, short) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_planners_read_the_pool_under_the_booking_lock(client, keys, monkeypatch):
    """Concurrent planners would pick the same least-loaded people: they take turns instead of racing."""
    roster = add_roster(client, keys, clinicians=2, peers=4)
    locked_when_reading: list[int] = []  # advisory locks the transaction held at each read of the whole pool
    original = sessions_service.load_state

    def spying(db, **kwargs):
        if kwargs.get("facilitator_ids") is None:
            locked_when_reading.append(db.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()")).scalar())
        return original(db, **kwargs)

    monkeypatch.setattr(sessions_service, "load_state", spying)
    incident = report(client, keys, incident_body())
    [session] = incident["sessions"]
    decline = client.post(f"/v1/sessions/{session['id']}/decline",
                          headers=facilitator_key(client.application, session["facilitators"][0]["id"]))
    assert decline.status_code == 200, decline.get_json()
    # Intake, then the replacement of the facilitator who declined: each read the pool holding the lock.
    assert locked_when_reading == [1, 1]
    assert {f["id"] for f in decline.get_json()["facilitators"]} <= set(roster)
