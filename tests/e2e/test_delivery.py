"""Delivery as deployed: `debrief serve` without Redis, and an RQ worker killed mid-delivery."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from datetime import timedelta

import pytest
from sqlalchemy import create_engine

from service import migrate
from service.agencies.models import Agency
from service.app import create_app
from service.db import make_session_factory, utcnow
from service.outbox.models import SENT, OutboxMessage
from service.outbox.service import email_payload, queue_message
from tests.conftest import age_claims
from tests.e2e.conftest import base_env, issue_key, start_server, stop
from tests.receivers import SmtpSink, WebhookReceiver
from workers import queues
from workers.channels import sign_webhook
from workers.relay import relay_once, rq_dispatch
from workers.worker import BurstWorker

pytestmark = pytest.mark.e2e


def wait_for(condition, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_serve_without_redis_delivers_queued_messages_in_process(tmp_path):
    sink = SmtpSink()
    sink.controller.start()
    url = f"sqlite:///{tmp_path}/serve.sqlite3"
    process, output, _port = start_server([], base_env(DATABASE_URL=url, SMTP_URL=sink.url), tmp_path)
    engine = create_engine(url)
    try:
        with make_session_factory(engine)() as db:
            id = queue_message(db, dedup_key="e2e", kind="invitation", channel="email", recipient="officer@example.org",
                               payload=email_payload(subject="Invitation", text="Hello"), now=utcnow())
            db.commit()
        assert wait_for(lambda: sink.messages), output.read_text()
        assert sink.message_ids() == [f"<{id}@debrief>"]
        with make_session_factory(engine)() as db:
            assert wait_for(lambda: db.get(OutboxMessage, id, populate_existing=True).status == SENT)
    finally:
        stop(process)
        engine.dispose()
        sink.controller.stop()


def test_a_worker_killed_mid_delivery_is_retried_with_the_same_message_id(tmp_path, redis_url):
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    url = f"sqlite:///{tmp_path}/worker.sqlite3"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    receiver = WebhookReceiver(hold=__import__("threading").Event())
    receiver.start()
    # The receiver listens on loopback: only the explicit setting lets webhooks go there.
    app = create_app({"database_url": url, "redis_url": redis_url, "webhook_allow_private_targets": True})
    services = app.extensions["debrief"]
    try:
        with services.session_factory() as db:
            agency = Agency(code="north", name="North Police", timezone="America/Toronto", policy={}, webhook_secret=secret)
            db.add(agency)
            db.flush()
            id = queue_message(db, dedup_key="hook", kind="incident.planned", channel="webhook", recipient=receiver.url,
                               payload={"type": "incident.planned"}, now=utcnow(), agency_id=agency.id)
            db.commit()
        assert relay_once(services, rq_dispatch(services.redis)) == 1
        env = base_env(DATABASE_URL=url, REDIS_URL=redis_url, WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
        worker = subprocess.Popen([sys.executable, "-m", "service", "worker"], env=env, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert receiver.got_request.wait(30), "the worker never reached the receiver"
            # The whole worker dies mid-delivery: the work horse (in a process group of its own) and
            # its parent at once, so nothing in RQ records the job's end.
            horses = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
            worker.kill()
            for horse in horses:
                os.kill(int(horse), signal.SIGKILL)
        finally:
            worker.kill()
            worker.wait()
        receiver.hold.set()
        with services.session_factory() as db:
            assert db.get(OutboxMessage, id).status == "sending"

        # Later, past the visibility timeout, a relay takes the message for lost and a worker delivers it.
        age_claims(services.session_factory, services.config.delivery_visibility_seconds + 1)
        receiver.hold = None
        assert relay_once(services, rq_dispatch(services.redis)) == 1
        with app.app_context():
            BurstWorker([queues.queue(queues.DELIVERY, services.redis)], connection=services.redis,
                         serializer=queues.SERIALIZER).work(burst=True)
        with services.session_factory() as db:
            row = db.get(OutboxMessage, id)
            assert (row.status, row.attempts) == (SENT, 2)
        first, second = receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(id)
        for request in (first, second):
            assert request.headers["webhook-signature"] == sign_webhook(
                secret, str(id), int(request.headers["webhook-timestamp"]), request.body)
    finally:
        services.close()
        receiver.stop()


def test_an_incident_reported_to_a_deployment_reaches_everyone_once_despite_a_killed_worker(postgres_url, redis_url, tmp_path):
    """serve (gunicorn) + relay + 2 RQ workers on PostgreSQL and Redis; one worker is SIGKILLed mid-run."""
    import re
    from collections import Counter
    from datetime import datetime, timezone

    from sqlalchemy import text

    from tests.conftest import wipe
    from tests.e2e.conftest import Server
    from tests.factories import facilitator_body, incident_body, person

    sink = SmtpSink()
    sink.controller.start()
    engine = create_engine(postgres_url)
    env = base_env(DATABASE_URL=postgres_url, REDIS_URL=redis_url, SMTP_URL=sink.url, DELIVERY_VISIBILITY_SECONDS="5")
    cli = [sys.executable, "-m", "service"]
    processes: list[subprocess.Popen] = []
    log = (tmp_path / "workers.log").open("wb")
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO agencies (code, name, timezone, policy, created_at) "
                              "VALUES ('north', 'North Police', 'America/Toronto', '{}', now())"))
        dispatch, coordinator = (issue_key(env, role, agency="north") for role in ("dispatch", "coordinator"))
        process, output, port = start_server(["--workers", "2"], env, tmp_path)
        processes.append(process)
        server = Server(f"http://127.0.0.1:{port}", process, output)
        for n, kind in enumerate(("clinician", "peer", "peer")):
            assert server.request("POST", "/v1/facilitators", body=facilitator_body(n, kind=kind), key=coordinator).status == 201
        occurred = datetime.now(timezone.utc) - timedelta(hours=1)
        body = incident_body(occurred_at=occurred.isoformat(), personnel=[person(n) for n in range(1, 7)])
        processes.append(subprocess.Popen([*cli, "planner"], env=env, cwd=tmp_path, stdout=log, stderr=log))
        answer = server.request("POST", "/v1/incidents", body=body, key=dispatch, headers={"Prefer": "wait=20"})
        assert answer.status == 201 and answer.json()["sessions"], answer.body

        for command in (["relay", "--interval", "0.2"], ["worker"], ["worker"]):
            processes.append(subprocess.Popen([*cli, *command], env=env, cwd=tmp_path, stdout=log, stderr=log))
        assert wait_for(lambda: len(sink.messages) >= 3, timeout=60), (tmp_path / "workers.log").read_text()
        victim = processes[2]
        horses = Path(f"/proc/{victim.pid}/task/{victim.pid}/children").read_text().split()
        victim.kill()
        for horse in horses:
            os.kill(int(horse), signal.SIGKILL)

        with engine.connect() as conn:
            due = {str(id) for (id,) in conn.execute(text("SELECT id FROM outbox WHERE due_at <= now()"))}
        assert len(due) == 6 * 2 + 2  # an invitation and an offer each, and the team's assignments
        expected = {f"<{id}@debrief>" for id in due}

        def all_sent() -> bool:
            with engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM outbox WHERE due_at <= now() AND status <> 'sent'")).scalar() == 0

        # The killed worker's message comes back after the visibility timeout (5 s here).
        assert wait_for(all_sent, timeout=90), (tmp_path / "workers.log").read_text()
        counts = Counter(sink.message_ids())
        assert set(counts) == expected
        # At least once: a message the killed worker handed over before recording it goes again,
        # with the same Message-ID for the receiver to drop; no other message ever goes twice.
        with engine.connect() as conn:
            retried = {f"<{id}@debrief>" for (id,) in conn.execute(text("SELECT id FROM outbox WHERE attempts > 1"))}
        assert {id for id, n in counts.items() if n > 1} <= retried and len(retried) <= 1

        # The link in a real invitation opens, without any key, on the server that sent it.
        invitation = next(m for m in sink.messages if m["Subject"] == "Invitation to a support session")
        [token] = re.findall(r"/r/([^?\s/]+)", invitation.get_body(("plain",)).get_content())[:1]
        page = server.request("GET", f"/r/{token}")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "I will attend" in page.body.decode()
        shown = server.request("GET", f"/v1/responses/{token}")
        assert shown.status == 200 and shown.json()["kind"] == "invitation"
    finally:
        log.close()
        for process in processes[1:]:
            process.kill()
            process.wait()
        if processes:
            stop(processes[0])
        wipe(engine)
        engine.dispose()
        sink.controller.stop()
