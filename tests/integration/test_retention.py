"""Retention: personal data of incidents closed long ago is erased, the counts stay."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, text

from service.incidents.models import Incident
from service.models import metadata
from service.retention import closed_at, erase_due
from tests.factories import incident_body, report_planned
from tests.integration.planning_helpers import add_roster


def every_row_as_text(app) -> str:
    with app.extensions["debrief"].engine.connect() as conn:
        return json.dumps([
            [str(value) for value in row]
            for table in metadata.sorted_tables for row in conn.execute(text(f"SELECT * FROM {table.name}"))
        ])


def test_an_incident_closed_90_days_ago_keeps_its_counts_and_loses_its_people(client, keys, app, clock):
    add_roster(client, keys)
    incident = report_planned(client, incident_body(people=4), keys.auth("dispatch"))
    services = app.extensions["debrief"]
    with services.session_factory() as db:
        closes = closed_at(db, db.get(Incident, __import__("uuid").UUID(incident["id"])))
    before = client.get(f"/v1/incidents/{incident['id']}/status", headers=keys.auth("supervisor")).get_json()
    assert "officer1@north.example.org" in every_row_as_text(app)

    clock.now = closes + timedelta(days=90) - timedelta(minutes=1)
    assert erase_due(services) == []
    clock.now = closes + timedelta(days=90, minutes=1)
    assert [str(id) for id in erase_due(services)] == [incident["id"]]
    assert erase_due(services) == []  # once

    rows = every_row_as_text(app)
    for n in range(1, 5):
        assert f"officer{n}@north.example.org" not in rows and f"Officer Number{n}" not in rows and f"B000{n}" not in rows
    assert "555 0100" not in rows
    after = client.get(f"/v1/incidents/{incident['id']}/status", headers=keys.auth("supervisor")).get_json()
    assert after["sessions"] == before["sessions"] and after["offers"] == before["offers"]
    assert client.get(f"/v1/incidents/{incident['id']}", headers=keys.auth("dispatch")).get_json()["personnel_count"] == 4
    with services.session_factory() as db:
        assert db.scalar(select(Incident.erased_at)) == clock.now


def test_the_retention_period_is_configurable(client, keys, app, clock):
    add_roster(client, keys)
    report_planned(client, incident_body(), keys.auth("dispatch"))
    services = app.extensions["debrief"]
    services.config = services.config.updated({"retention_days": 400})
    clock.advance(days=300)
    assert erase_due(services) == []
    clock.advance(days=200)
    assert len(erase_due(services)) == 1


def test_erasure_leaves_no_quasi_identifier_and_outcomes_only_as_counts(client, keys, app, clock):
    from service.followups.models import Escalation, Followup
    from service.incidents.models import Personnel
    from service.retention import keyed_hash

    add_roster(client, keys)
    body = incident_body(people=2)
    incident = report_planned(client, body, keys.auth("dispatch"))
    services = app.extensions["debrief"]
    with services.session_factory() as db:
        # Two people answered their 30-day screen, one positive and asking for contact (as the pages record it).
        screens = db.scalars(select(Followup).where(Followup.kind == "screening").order_by(Followup.personnel_id)).all()
        for screen, positive in zip(screens, (True, False)):
            screen.status, screen.answers, screen.positive, screen.contact_requested = "answered", [positive] * 5, positive, positive
        db.add(Escalation(incident_id=screens[0].incident_id, personnel_id=screens[0].personnel_id, followup_id=screens[0].id,
                          reason="positive_screen", created_at=clock.now))
        db.commit()
        closes = closed_at(db, db.get(Incident, __import__("uuid").UUID(incident["id"])))
    clock.now = closes + timedelta(days=91)
    assert len(erase_due(services)) == 1

    rows = every_row_as_text(app)
    assert "patrol-3" not in rows and body["external_id"] not in rows
    with services.session_factory() as db:
        erased = db.get(Incident, __import__("uuid").UUID(incident["id"]))
        assert erased.retained_outcomes == {"screens_answered": 2, "screens_positive": 1, "contact_requested": 1,
                                            "escalations": 1, "escalations_positive_screen": 1}
        assert erased.external_id == keyed_hash(services.signing_keys()[0], body["external_id"])
        assert {(p.role, p.unit) for p in db.scalars(select(Personnel))} == {("erased", None)}
        assert all(f.positive is None and not f.contact_requested and f.answers is None for f in db.scalars(select(Followup)))
        assert db.scalars(select(Escalation)).all() == []
