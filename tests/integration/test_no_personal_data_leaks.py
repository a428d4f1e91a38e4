"""A seeded scenario end to end: no participant's name, email, phone or answer in logs, metrics or feeds."""

from __future__ import annotations

import logging
import re

from tests.factories import incident_body, person, report_planned
from tests.integration.planning_helpers import add_roster, facilitator_key
from workers.relay import in_process_dispatch, relay_once

LINK = re.compile(r"/r/([^?/\s]+)")
PEOPLE = [person(n, name=f"Participant Seeded{n}", email=f"seeded{n}@north.example.org", phone=f"+1 416 555 01{n:02d}")
          for n in range(1, 7)]


def test_a_whole_scenario_leaves_no_personal_data_in_logs_metrics_or_feeds(app, client, keys, clock, sink, caplog):
    services = app.extensions["debrief"]
    services.config = services.config.updated({"smtp_url": sink.url})
    caplog.set_level(logging.DEBUG)
    add_roster(client, keys)
    incident = report_planned(client, incident_body(personnel=PEOPLE, severity=4), keys.auth("dispatch"))
    relay_once(services, in_process_dispatch(services))
    links = {}
    for message in sink.messages:
        found = LINK.search(message.get_body(("plain",)).get_content())
        if found:
            links.setdefault(message["To"], []).append(found.group(1))
    tokens = [token for each in links.values() for token in each]
    # Participants act: declines and an opt-out now, a positive screening a month later.
    clock.advance(minutes=10)
    for token in tokens[:3]:
        client.get(f"/v1/responses/{token}")
        client.get(f"/r/{token}")  # the participant's page too
        client.post(f"/v1/responses/{token}", json={"action": "decline"})
    client.post(f"/v1/responses/{tokens[-1]}", json={"action": "opt_out"})
    [session] = [s for s in incident["sessions"] if s["kind"] == "debriefing"]
    facilitator_id = session["facilitators"][0]["id"]
    client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, facilitator_id))
    client.get(f"/v1/incidents/{incident['id']}/followups", headers=keys.auth("coordinator"))
    client.get(f"/v1/incidents/{incident['id']}/status", headers=keys.auth("supervisor"))
    issued = client.post(f"/v1/facilitators/{facilitator_id}/calendar-token", headers=keys.auth("coordinator")).get_json()
    feed = client.get("/v1/calendars/" + issued["calendar_url"]["https"].rsplit("/", 1)[1]).get_data(as_text=True)
    clock.advance(days=31)
    relay_once(services, in_process_dispatch(services))  # the check-ins and screenings go out
    screening = next(m for m in sink.messages if m["Subject"] == "One month after the incident: five questions"
                     and m["To"] != PEOPLE[-1]["email"])
    token = LINK.search(screening.get_body(("plain",)).get_content()).group(1)
    tokens.append(token)
    answered = client.post(f"/v1/responses/{token}", json={"action": "answer", "answers": [True] * 5})
    assert answered.status_code == 200, answered.get_json()
    relay_once(services, in_process_dispatch(services))  # the escalation goes to a clinician
    assert any(m["Subject"] == "Clinical follow-up needed" for m in sink.messages)
    outputs = {
        # Everything the service logs (the SMTP sink's own "mail.log" is the receiver's, not ours).
        "logs": "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records if not r.name.startswith("mail.")),
        "metrics": client.get("/metrics").get_data(as_text=True),
        "feed": feed,
    }
    assert len(caplog.records) > 10 and "BEGIN:VEVENT" in feed
    for where, text in outputs.items():
        for p in PEOPLE:
            for value in (p["name"], p["email"], p["phone"], p["external_id"]):
                assert value not in text, f"{value!r} in the {where}"
        for token in tokens:
            assert token not in text, f"a response token in the {where}"
