"""The service as a user meets it: gunicorn over HTTP."""

import subprocess
import sys
import threading

from sqlalchemy import create_engine, text

from tests.e2e.conftest import Server, base_env, issue_key, start_server, stop, wait_until_planned
from tests.factories import facilitator_body, incident_body
from tests.conftest import wipe


def test_demo_prints_a_key_per_role(demo_server):
    assert set(demo_server.keys) == {"admin", "dispatch", "supervisor", "coordinator", "facilitator"}


def test_demo_prints_a_working_feed_url_and_facilitator_key(demo_server):
    assert demo_server.feed_url.startswith("webcal://")
    path = "/" + demo_server.feed_url.split("/", 3)[3]
    feed = demo_server.request("GET", path)
    assert feed.status == 200 and feed.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert feed.body.startswith(b"BEGIN:VCALENDAR\r\n")
    me = demo_server.request("GET", "/v1/facilitators", key=demo_server.keys["facilitator"])
    assert me.status == 403  # a facilitator reads themself, not the roster


def test_readme_flow_post_twice_one_incident(demo_server):
    from datetime import datetime, timedelta, timezone

    body = incident_body(occurred_at=(datetime.now(timezone.utc) - timedelta(hours=1)).isoformat())
    first = demo_server.request("POST", "/v1/incidents", body=body, key=demo_server.keys["dispatch"])
    second = demo_server.request("POST", "/v1/incidents", body=body, key=demo_server.keys["dispatch"])
    assert (first.status, second.status) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    listed = demo_server.request("GET", "/v1/incidents", key=demo_server.keys["coordinator"]).json()
    assert [item["id"] for item in listed["items"]] == [first.json()["id"]]


def test_demo_curl_plans_a_debriefing(demo_server):
    from datetime import datetime, timedelta, timezone

    body = incident_body("CAD-DEMO", region="north", occurred_at=(datetime.now(timezone.utc) - timedelta(hours=2)).isoformat())
    reply = demo_server.request("POST", "/v1/incidents", body=body, key=demo_server.keys["dispatch"],
                                headers={"Prefer": "wait=10"})
    assert reply.status == 201 and reply.headers["Preference-Applied"] == "wait=10"
    answer = reply.json()
    assert answer["status"] == "planned", answer["problems"]
    [session] = answer["sessions"]
    assert session["kind"] == "debriefing" and len(session["facilitators"]) == 2


def test_a_planner_that_dies_is_started_again(demo_server):
    import os
    import signal
    import time
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    def planners() -> list[int]:
        pid = demo_server.process.pid
        found = []
        # Children of every thread: the planner started again is a child of the thread that watches it.
        children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
        for child in children:
            try:
                if b"planner" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except FileNotFoundError:
                pass  # a child that has just gone
        return found

    [first] = planners()
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while planners() in ([], [first]):
        assert time.monotonic() < deadline, "no planner was started again"
        time.sleep(0.1)
    body = incident_body("CAD-AFTER", region="north", occurred_at=(datetime.now(timezone.utc) - timedelta(hours=2)).isoformat())
    reply = demo_server.request("POST", "/v1/incidents", body=body, key=demo_server.keys["dispatch"],
                                headers={"Prefer": "wait=20"})
    assert reply.status == 201 and reply.json()["status"] != "received", reply.json()


def test_the_demo_mailbox_shows_emails_whose_links_reach_this_server(demo_server):
    import re
    import time
    from datetime import datetime, timedelta, timezone

    body = incident_body("CAD-MAIL", region="north", occurred_at=(datetime.now(timezone.utc) - timedelta(hours=2)).isoformat())
    assert demo_server.request("POST", "/v1/incidents", body=body, key=demo_server.keys["dispatch"]).status == 201
    deadline = time.monotonic() + 20
    while True:  # the embedded relay delivers within a second or two
        mailbox = demo_server.request("GET", "/demo/messages", headers={"Accept": "text/html"}).body.decode()
        opened = re.findall(r'href="(/demo/messages/[0-9a-f-]+)', mailbox)
        if opened or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    letters = [demo_server.request("GET", path).body.decode() for path in opened]
    links = [link for letter in letters for link in re.findall(r'href="(http[^"]+)"', letter)]
    assert links and all(link.startswith(demo_server.base_url + "/") for link in links)
    page = next(link for link in links if "/r/" in link).removeprefix(demo_server.base_url).split("?")[0]
    assert demo_server.request("GET", page).status == 200


def test_malformed_requests_get_problems_over_http(demo_server):
    key = demo_server.keys["dispatch"]
    for raw, status in ((b"{", 400), (b'{"external_id": 1}', 422), (b"\xff", 400), (b"x" * (3 * 1024 * 1024), 413)):
        answer = demo_server.request("POST", "/v1/incidents", raw=raw, key=key)
        assert answer.status == status
        assert answer.headers["Content-Type"] == "application/problem+json"
    assert demo_server.request("GET", "/v1/incidents").status == 401


def test_metrics_and_spec_are_served(demo_server):
    demo_server.request("GET", "/healthz")
    metrics = demo_server.request("GET", "/metrics").body.decode()
    assert 'route="/healthz"' in metrics
    spec = demo_server.request("GET", "/openapi.yaml")
    assert spec.status == 200 and spec.body.startswith(b"components:")


def test_gunicorn_opens_no_control_socket(demo_server):
    home = demo_server.output.parent
    assert not list(home.rglob("*.ctl")) and not (home / ".gunicorn").exists()


def test_request_log_names_routes_never_keys_or_bodies(demo_server):
    key = demo_server.keys["dispatch"]
    demo_server.request("POST", "/v1/incidents", body=incident_body("CAD-LOG"), key=key)
    log = demo_server.output.read_text()
    assert key not in log and "Officer Number1" not in log


def test_racing_posts_across_gunicorn_workers_on_postgresql(postgres_url, tmp_path):
    env = base_env(DATABASE_URL=postgres_url)
    cli = [sys.executable, "-m", "service"]
    engine = create_engine(postgres_url)
    try:
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO agencies (code, name, timezone, policy, created_at) "
                              "VALUES ('race', 'Race Police', 'America/Toronto', '{}', now())"))
        key, coordinator = (issue_key(env, role, agency="race") for role in ("dispatch", "coordinator"))
        process, output, port = start_server(["--workers", "4"], env, tmp_path)
        server = Server(f"http://127.0.0.1:{port}", process, output)
        try:
            from datetime import datetime, timedelta, timezone

            body = incident_body(occurred_at=(datetime.now(timezone.utc) - timedelta(hours=1)).isoformat())
            barrier, statuses = threading.Barrier(12), []

            def send():
                barrier.wait()
                statuses.append(server.request("POST", "/v1/incidents", body=body, key=key).status)

            threads = [threading.Thread(target=send) for _ in range(12)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(statuses) == [200] * 11 + [201]
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM incidents")).scalar() == 1

            # Distinct incidents racing over a tight pool: never a double-booked facilitator.
            for n in range(3):
                kind = "clinician" if n == 0 else "peer"
                fac = facilitator_body(n, kind=kind)
                assert server.request("POST", "/v1/facilitators", body=fac, key=coordinator).status == 201
            barrier, statuses = threading.Barrier(10), []

            def send_distinct(n):
                distinct = incident_body(f"CAD-R{n}", occurred_at=body["occurred_at"])
                barrier.wait()
                statuses.append(server.request("POST", "/v1/incidents", body=distinct, key=key).status)

            threads = [threading.Thread(target=send_distinct, args=(n,)) for n in range(10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert statuses == [201] * 10
            wait_until_planned(engine)  # by the planner `debrief serve` runs beside gunicorn
            with engine.connect() as conn:
                overlaps = conn.execute(text(
                    "SELECT count(*) FROM assignments a JOIN assignments b ON a.facilitator_id = b.facilitator_id "
                    "AND a.id < b.id AND a.active AND b.active AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
                )).scalar()
                booked = conn.execute(text("SELECT count(*) FROM assignments WHERE active")).scalar()
            assert overlaps == 0 and booked >= 2
        finally:
            stop(process)
    finally:
        wipe(engine)
        engine.dispose()
