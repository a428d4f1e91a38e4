"""The outbox end to end: rows written in a transaction, the relay, a real RQ worker, real receivers."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import func, select, update

from service.agencies.models import Agency
from service.agencies.webhook_address import WebhookRules
from service.auth.service import create_key
from service.config import Config
from service.outbox.models import CANCELLED, DEAD, EMAIL, PENDING, QUEUED, SENDING, SENT, OutboxMessage
from service.outbox.service import Attachment, cancel_pending, email_payload, queue_message, queue_messages
from tests.conftest import FakeClock, age_claims, environment, missing_service, wipe
from tests.receivers import DripFeeder, WebhookReceiver, self_signed_certificate
from workers import queues
from workers.channels import Delivery, DeliveryFailed, SmtpChannel, WebhookChannel, sign_webhook
from workers.jobs import deliver_message
from workers.relay import in_process_dispatch, relay_once, rq_dispatch, start_in_process_delivery
from workers.worker import BurstWorker

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
ICS = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


@pytest.fixture
def services(app, redis_url, sink):
    """The app's services, configured to deliver to the sink and sign webhooks (to the receiver on loopback)."""
    services = app.extensions["debrief"]
    services.config = services.config.updated({"smtp_url": sink.url, "delivery_max_attempts": 3,
                                               "webhook_allow_private_targets": True})
    services.redis = Redis.from_url(redis_url)
    with services.session_factory() as db:
        db.add(Agency(code="north", name="North Police", timezone="America/Toronto", policy={}, webhook_secret=SECRET))
        db.commit()
    return services


def agency_id(services, code="north") -> int:
    with services.session_factory() as db:
        return db.scalar(select(Agency.id).where(Agency.code == code))


def queue_webhook(services, receiver, dedup_key="hook", *, agency=None, url=None) -> uuid.UUID:
    with services.session_factory() as db:
        id = queue_message(db, dedup_key=dedup_key, kind="incident.planned", channel="webhook", recipient=url or receiver.url,
                           payload={"type": "incident.planned", "data": {"ref": "abc"}}, now=services.clock(),
                           agency_id=agency or agency_id(services))
        db.commit()
    return id


def relay_and_work(app, services) -> int:
    """One relay pass, then a real RQ worker in burst mode; returns how many rows the relay moved."""
    moved = relay_once(services, rq_dispatch(services.redis))
    work(app, services)
    return moved


def work(app, services) -> None:
    with app.app_context():
        BurstWorker([queues.queue(queues.DELIVERY, services.redis)], connection=services.redis,
                     serializer=queues.SERIALIZER).work(burst=True)


def queue_email(services, dedup_key="invite:1", *, due_in=timedelta(0), kind="invitation", **payload):
    with services.session_factory() as db:
        now = services.clock()
        id = queue_message(
            db, dedup_key=dedup_key, kind=kind, channel="email", recipient="officer@example.org",
            payload=email_payload(subject="Invitation", text="Hello", **payload), now=now, due_at=now + due_in,
        )
        db.commit()
    return id


def row(services, id) -> OutboxMessage:
    with services.session_factory() as db:
        return db.get(OutboxMessage, id)


class Planted:
    """What someone with access to Redis could put in a pickled job: unpickling it runs code."""

    def __init__(self, path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_jobs_are_json_and_a_pickled_job_planted_in_redis_never_runs(services, sink, database_url, redis_url, tmp_path):
    id = queue_email(services)
    relay_once(services, rq_dispatch(services.redis))
    stored = zlib.decompress(services.redis.hget(f"rq:job:{id}", "data"))
    assert json.loads(stored) == ["workers.jobs.deliver", None, [str(id)], {}]
    planted = tmp_path / "ran"
    Queue(queues.DELIVERY, connection=services.redis).enqueue("workers.jobs.deliver", Planted(planted))  # pickled
    env = {**os.environ, **environment(database_url), "REDIS_URL": redis_url, "SMTP_URL": sink.url}
    subprocess.run([sys.executable, "-m", "service", "worker", "--burst"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    assert not planted.exists()
    assert sink.message_ids() == [f"<{id}@debrief>"]


def test_a_message_queued_in_a_rolled_back_transaction_is_never_delivered(app, services, sink):
    with services.session_factory() as db:
        queue_message(db, dedup_key="k", kind="invitation", channel="email", recipient="a@example.org",
                      payload=email_payload(subject="s", text="t"), now=services.clock())
        db.rollback()
    assert relay_and_work(app, services) == 0
    with services.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert sink.messages == []


def test_due_messages_are_delivered_once_by_email_and_signed_webhook(app, services, sink, receiver):
    email_id = queue_email(services, html="<p>Hello</p>", attachments=[Attachment("invitation.ics", "text/calendar", ICS)])
    hook_id = queue_webhook(services, receiver)

    assert relay_and_work(app, services) == 2
    assert relay_and_work(app, services) == 0

    [message] = sink.messages
    assert message["Message-ID"] == f"<{email_id}@debrief>"
    assert message.get_body(("plain",)).get_content().strip() == "Hello"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello</p>"
    [ics] = list(message.iter_attachments())
    assert ics.get_content_type() == "text/calendar" and ics.get_filename() == "invitation.ics"
    assert ics.get_payload(decode=True) == ICS

    [hook] = receiver.requests
    assert hook.path == "/hooks/debrief" and hook.headers["webhook-id"] == str(hook_id)
    expected = sign_webhook(SECRET, hook.headers["webhook-id"], int(hook.headers["webhook-timestamp"]), hook.body)
    assert hook.headers["webhook-signature"] == expected
    assert json.loads(hook.body) == {"type": "incident.planned", "data": {"ref": "abc"}}

    for id in (email_id, hook_id):
        sent = row(services, id)
        assert (sent.status, sent.attempts, sent.sent_at) == (SENT, 1, services.clock())


def test_a_message_due_later_waits_for_the_clock(app, services, sink, clock):
    id = queue_email(services, due_in=timedelta(hours=2))
    assert relay_and_work(app, services) == 0
    clock.advance(hours=1, minutes=59)
    assert relay_and_work(app, services) == 0
    assert sink.messages == [] and row(services, id).status == PENDING
    clock.advance(minutes=1)
    assert relay_and_work(app, services) == 1
    assert sink.message_ids() == [f"<{id}@debrief>"]


def test_a_redis_flush_loses_nothing_and_delivers_once(app, services, sink):
    id = queue_email(services)
    assert relay_once(services, rq_dispatch(services.redis)) == 1
    services.redis.flushdb()  # the job is gone; the row still says queued
    work(app, services)
    assert sink.messages == [] and row(services, id).status == QUEUED

    age_claims(services.session_factory, services.config.delivery_visibility_seconds - 30)
    assert relay_and_work(app, services) == 0  # not yet taken for lost
    age_claims(services.session_factory, 31)
    assert relay_and_work(app, services) == 1
    assert relay_and_work(app, services) == 0
    assert sink.message_ids() == [f"<{id}@debrief>"]
    assert row(services, id).status == SENT


def test_a_job_enqueued_twice_delivers_once(app, services, sink):
    id = queue_email(services)
    relay_once(services, rq_dispatch(services.redis))
    rq_dispatch(services.redis)([id])  # e.g. re-enqueued by a relay that thought it lost
    work(app, services)
    rq_dispatch(services.redis)([id])  # and once more after it was sent
    work(app, services)
    assert sink.message_ids() == [f"<{id}@debrief>"]
    assert row(services, id).attempts == 1


@pytest.mark.parametrize("refusal", ["rcpt:554 5.7.1 <officer@example.org> rejected", "data:451 4.3.0 try again later"])
def test_a_refusing_smtp_server_gets_retries_with_backoff_then_the_message_is_dead(app, services, sink, clock, refusal):
    where, answer = refusal.split(":", 1)
    setattr(sink, f"refuse_{where}", answer)
    id = queue_email(services)
    code = answer.split()[0]

    assert relay_and_work(app, services) == 1
    first = row(services, id)
    assert (first.status, first.attempts, first.due_at) == (PENDING, 1, clock.now + timedelta(minutes=1))
    assert code in first.last_error and "example.org" not in first.last_error

    clock.advance(seconds=59)
    assert relay_and_work(app, services) == 0  # backing off
    clock.advance(seconds=1)
    assert relay_and_work(app, services) == 1
    second = row(services, id)
    assert (second.status, second.attempts, second.due_at) == (PENDING, 2, clock.now + timedelta(minutes=5))

    clock.advance(minutes=5)
    assert relay_and_work(app, services) == 1
    dead = row(services, id)
    assert (dead.status, dead.attempts) == (DEAD, 3) and code in dead.last_error
    clock.advance(days=1)
    assert relay_and_work(app, services) == 0
    assert sink.messages == [] and sink.attempts == 3


def test_a_message_refused_once_is_delivered_on_retry(app, services, sink, clock):
    sink.refuse_data = "451 4.3.0 try again later"
    id = queue_email(services)
    relay_and_work(app, services)
    sink.refuse_data = None
    clock.advance(minutes=1)
    assert relay_and_work(app, services) == 1
    assert sink.message_ids() == [f"<{id}@debrief>"]
    sent = row(services, id)
    assert (sent.status, sent.attempts, sent.last_error) == (SENT, 2, None)


def test_a_failure_reason_longer_than_its_column_is_cut_to_fit(app, services, monkeypatch):
    def refuse(_channel, _delivery):
        raise DeliveryFailed("smtp " + "refused " * 60)

    monkeypatch.setattr(SmtpChannel, "send", refuse)
    id = queue_email(services)
    assert relay_and_work(app, services) == 1
    failed = row(services, id)
    # On PostgreSQL the whole reason would fail the update and leave the message `sending` until its lease ran out.
    assert (failed.status, failed.attempts) == (PENDING, 1)
    assert failed.last_error.startswith("smtp refused") and len(failed.last_error) == 200


def test_a_webhook_answered_with_an_error_is_retried(app, services, receiver, clock):
    receiver.status = 500
    id = queue_webhook(services, receiver)
    relay_and_work(app, services)
    failed = row(services, id)
    assert (failed.status, failed.last_error) == (PENDING, "http 500")
    receiver.status = 200
    clock.advance(minutes=1)
    relay_and_work(app, services)
    assert row(services, id).status == SENT
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(id), str(id)]


def test_the_same_dedup_key_queued_twice_is_one_message(app, services, sink):
    first = queue_email(services, "offer:p1")
    second = queue_email(services, "offer:p1")
    with services.session_factory() as db:
        both = [
            queue_message(db, dedup_key="offer:p2", kind="offer", channel="email", recipient="b@example.org",
                          payload=email_payload(subject="s", text=str(n)), now=services.clock())
            for n in range(2)
        ]
        db.commit()
        assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 2
    assert first == second and both[0] == both[1]
    relay_and_work(app, services)
    assert sorted(sink.message_ids()) == sorted([f"<{first}@debrief>", f"<{both[0]}@debrief>"])


def test_a_dedup_key_given_twice_in_one_batch_keeps_its_first_message(app, services):
    message = dict(kind="offer", channel="email", recipient="a@example.org", due_at=services.clock())
    with services.session_factory() as db:
        queue_messages(db, [
            {**message, "dedup_key": "offer:p3", "payload": email_payload(subject="first", text="1")},
            {**message, "dedup_key": "offer:p4", "payload": email_payload(subject="other", text="2")},
            {**message, "dedup_key": "offer:p3", "payload": email_payload(subject="second", text="3")},
        ], now=services.clock())
        db.commit()
        kept = dict(db.execute(select(OutboxMessage.dedup_key, OutboxMessage.payload)).all())
    assert sorted(kept) == ["offer:p3", "offer:p4"]
    assert kept["offer:p3"]["subject"] == "first"
    with services.session_factory() as db, pytest.raises(ValueError, match="not outbox columns"):
        queue_messages(db, [{**message, "dedup_key": "offer:p5", "payload": {}, "recipent": "typo"}], now=services.clock())


def test_cancelled_messages_are_not_delivered_even_when_already_queued(app, services, sink):
    queued = queue_email(services, "a")
    relay_once(services, rq_dispatch(services.redis))
    pending = queue_email(services, "b", due_in=timedelta(days=30))
    kept = queue_email(services, "c")
    with services.session_factory() as db:
        assert cancel_pending(db, OutboxMessage.dedup_key.in_(["a", "b"])) == 2
        db.commit()
    relay_and_work(app, services)
    assert sink.message_ids() == [f"<{kept}@debrief>"]
    assert row(services, queued).status == row(services, pending).status == CANCELLED
    with services.session_factory() as db, pytest.raises(ValueError):
        cancel_pending(db)


# -- slow receivers: a deadline per attempt, a lane per channel, escalations first -----------------------

# What a drip feeder sends, a byte a second: far longer than the 2 s deadline the tests give an attempt.
DRIPPED = {"webhook": b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", "email": b"220 slow.example.org ESMTP ready\r\n"}


def wait_until(condition, timeout: float = 20) -> bool:
    ends = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= ends:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("channel", ["webhook", "email"])
def test_a_receiver_dripping_its_answer_never_holds_an_attempt_past_its_deadline(app, services, clock, channel):
    feeder = DripFeeder(DRIPPED[channel], interval=1.0)
    feeder.start()
    try:
        services.config = services.config.updated({"delivery_deadline_seconds": 2, "smtp_url": feeder.smtp_url})
        id = queue_webhook(services, feeder) if channel == "webhook" else queue_email(services)
        assert relay_once(services, in_process_dispatch(services)) == 1
        failed = row(services, id)
        protocol = "http" if channel == "webhook" else "smtp"
        assert (failed.status, failed.attempts, failed.last_error) == (PENDING, 1, f"{protocol} timed out after 2 s")
        assert failed.due_at == clock.now + timedelta(minutes=1)
        # The attempt ended while the receiver still had most of its answer to send.
        assert feeder.connected.is_set() and not feeder.finished.is_set()
    finally:
        feeder.stop()


def test_an_escalation_goes_out_while_a_webhook_receiver_hangs(app, services, sink, receiver, clock):
    # Longer than this test waits: the webhook's attempt is still hanging when the escalation goes out.
    services.config = services.config.updated({"delivery_deadline_seconds": 60})
    receiver.hold = threading.Event()
    hook = queue_webhook(services, receiver)
    clock.advance(minutes=1)
    escalation = queue_email(services, "escalation:1", kind="escalation")
    delivery = start_in_process_delivery(services, interval=0.05)
    try:
        assert receiver.got_request.wait(20)
        assert wait_until(lambda: sink.messages), "the escalation waited for the webhook"
        assert sink.message_ids() == [f"<{escalation}@debrief>"]
        assert row(services, hook).status == SENDING
    finally:
        receiver.hold.set()
        delivery.stop(timeout=30)
    assert not any(lane.is_alive() for lane in delivery.lanes)
    assert row(services, hook).status == SENT


def test_escalations_are_claimed_before_messages_due_earlier(app, services, clock):
    reminder = queue_email(services, "reminder:1", kind="reminder")
    clock.advance(minutes=5)
    escalation = queue_email(services, "escalation:1", kind="escalation_unassigned")
    taken: list = []
    assert relay_once(services, taken.extend, batch=1) == 1
    assert relay_once(services, taken.extend, batch=1) == 1
    assert taken == [escalation, reminder]


def test_the_relay_command_puts_escalations_before_the_jobs_waiting(app, services, sink, clock, database_url, redis_url,
                                                                    monkeypatch):
    from click.testing import CliRunner

    from service.cli import main

    waiting = [queue_email(services, f"reminder:{n}", kind="reminder") for n in range(2)]
    assert relay_once(services, rq_dispatch(services.redis)) == 2
    escalations = []
    for n, kind in enumerate(("escalation", "escalation_unassigned")):
        clock.advance(seconds=1)
        escalations.append(queue_email(services, f"escalation:{n}", kind=kind))
    for name, value in environment(database_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = CliRunner().invoke(main, ["relay", "--once"], catch_exceptions=False)
    assert result.exit_code == 0 and "2 messages relayed" in result.output
    in_order = escalations + waiting
    assert queues.queue(queues.DELIVERY, services.redis).job_ids == [str(id) for id in in_order]
    work(app, services)
    assert sink.message_ids() == [f"<{id}@debrief>" for id in in_order]


@pytest.fixture
def services_ahead(database_url, clock):
    """Another process's services on the same database, its clock an hour past the visibility timeout ahead."""
    from service.app import create_app

    ahead = FakeClock(clock.now + timedelta(seconds=Config().delivery_visibility_seconds, hours=1))
    services = create_app({"database_url": database_url}, clock=ahead).extensions["debrief"]
    yield services
    services.close()


class RelayMidDelivery:
    """An email channel that, while a message is being sent, has another process's relay look for lost messages."""

    def __init__(self, services) -> None:
        self.services = services
        self.taken: list = []

    def send(self, delivery: Delivery) -> None:
        relay_once(self.services, self.taken.extend)


def test_a_relay_whose_clock_runs_ahead_takes_no_fresh_claim_for_lost(app, services, services_ahead):
    sending, queued = queue_email(services, "a"), queue_email(services, "b")
    assert relay_once(services, lambda ids: None) == 2
    channel = RelayMidDelivery(services_ahead)
    assert deliver_message(services, sending, channels={EMAIL: channel}) == SENT
    assert channel.taken == []
    assert relay_once(services_ahead, channel.taken.extend) == 0
    assert (row(services, sending).status, row(services, queued).status) == (SENT, QUEUED)


# -- PostgreSQL: concurrent relays ---------------------------------------------------------------


@pytest.fixture
def pg_services(postgres_url, clock):
    from service.app import create_app

    application = create_app({"database_url": postgres_url}, clock=clock)
    services = application.extensions["debrief"]
    yield services
    wipe(services.engine)
    services.close()


def queue_many(services, n: int) -> set:
    with services.session_factory() as db:
        ids = {
            queue_message(db, dedup_key=f"m{i}", kind="reminder", channel="email", recipient="x@example.org",
                          payload=email_payload(subject="s", text="t"), now=services.clock())
            for i in range(n)
        }
        db.commit()
    return ids


def test_a_relay_skips_rows_another_relay_is_claiming(pg_services):
    ids = queue_many(pg_services, 10)
    with pg_services.session_factory() as other:
        # Another relay in the middle of its claim: it holds these rows' locks.
        locked = set(other.scalars(select(OutboxMessage.id).order_by(OutboxMessage.due_at, OutboxMessage.id).limit(4).with_for_update()))
        taken: list = []
        relay = threading.Thread(target=relay_once, args=(pg_services, taken.extend))
        relay.start()
        relay.join(10)
        assert not relay.is_alive(), "the relay waited for locked rows instead of skipping them"
        assert set(taken) == ids - locked
        other.rollback()
    assert set(relay_once_collect(pg_services)) == locked


def relay_once_collect(services, batch: int = 500) -> list:
    taken: list = []
    relay_once(services, taken.extend, batch=batch)
    return taken


def test_concurrent_relays_never_claim_the_same_row(pg_services):
    ids = queue_many(pg_services, 300)
    taken: list = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def relay() -> None:
        start.wait()
        while True:
            batch = relay_once_collect(pg_services, batch=7)
            if not batch:
                return
            with lock:
                taken.extend(batch)

    threads = [threading.Thread(target=relay) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(taken) == len(set(taken)) == 300 and set(taken) == ids
    with pg_services.session_factory() as db:
        assert set(db.scalars(select(OutboxMessage.status))) == {QUEUED}


# -- the `debrief relay` command ---------------------------------------------------------------


def test_the_relay_command_enqueues_due_messages_for_the_worker(app, services, sink, database_url, redis_url, monkeypatch):
    from click.testing import CliRunner

    from service.cli import main

    id = queue_email(services)  # due at the fixed test time, long past for the command's real clock
    for name, value in environment(database_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    refused = CliRunner().invoke(main, ["relay", "--once"])
    assert refused.exit_code == 2 and "REDIS_URL" in refused.output
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = CliRunner().invoke(main, ["relay", "--once"], catch_exceptions=False)
    assert result.exit_code == 0 and "1 messages relayed" in result.output
    assert queues.queue(queues.DELIVERY, services.redis).job_ids == [str(id)]
    work(app, services)
    assert sink.message_ids() == [f"<{id}@debrief>"]


# -- webhook secrets: each agency's own, rotated with a day of overlap -------------------------------


def test_an_agency_without_its_own_secret_gets_no_unsigned_or_shared_signed_webhook(app, services, receiver, monkeypatch):
    # WEBHOOK_SECRET was a fallback shared by every agency: one agency's receiver could forge events to another.
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    services.config = Config.from_env().updated({"database_url": services.config.database_url, "delivery_max_attempts": 3,
                                                 "webhook_allow_private_targets": True})
    with services.session_factory() as db:
        db.add(Agency(code="south", name="South Police", timezone="America/Vancouver", policy={}, webhook_url=receiver.url))
        db.commit()
    id = queue_webhook(services, receiver, agency=agency_id(services, "south"))
    relay_and_work(app, services)
    assert receiver.requests == []
    assert (row(services, id).status, row(services, id).last_error) == (PENDING, "the agency has no webhook secret")


def test_setting_a_webhook_url_needs_the_agencys_secret_first(app, services):
    client = app.test_client()
    with services.session_factory() as db:
        db.add(Agency(code="south", name="South Police", timezone="America/Vancouver", policy={}))
        db.commit()
        admin = {"Authorization": f"Bearer {create_key(db=db, role='admin')}"}
    hook = {"webhook_url": "https://hooks.south.example.org/debrief"}
    refused = client.patch("/v1/agencies/south", json=hook, headers=admin)
    assert refused.status_code == 409 and "webhook_url" in refused.get_json()["errors"]
    assert client.get("/v1/agencies/south", headers=admin).get_json()["webhook_url"] is None
    issued = client.post("/v1/agencies/south/webhook-secret", headers=admin).get_json()
    assert issued["webhook_secret"].startswith("whsec_") and issued["previous_valid_until"] is None
    assert client.patch("/v1/agencies/south", json=hook, headers=admin).status_code == 200


def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(app, services, receiver, clock):
    client = app.test_client()
    with services.session_factory() as db:
        admin = {"Authorization": f"Bearer {create_key(db=db, role='admin')}"}
    rotated = client.post("/v1/agencies/north/webhook-secret", headers=admin)
    assert rotated.status_code == 201
    new = rotated.get_json()["webhook_secret"]
    assert datetime.fromisoformat(rotated.get_json()["previous_valid_until"]) == clock() + timedelta(hours=24)

    queue_webhook(services, receiver, "hook:1")
    relay_and_work(app, services)
    clock.advance(hours=24)
    queue_webhook(services, receiver, "hook:2")
    relay_and_work(app, services)

    during, after = receiver.requests
    for request, secrets_used in ((during, (new, SECRET)), (after, (new,))):
        signed = (request.headers["webhook-id"], int(request.headers["webhook-timestamp"]), request.body)
        # Standard Webhooks: space-separated signatures, the receiver accepts any one it can verify.
        assert request.headers["webhook-signature"] == " ".join(sign_webhook(s, *signed) for s in secrets_used)


# -- webhook addresses: public receivers only, vetted when set and at delivery ------------------------------

REFUSED_WEBHOOK_URLS = (
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public internet address (link-local)"),
    ("https://[::1]/hooks", "::1 is not a public internet address (loopback)"),
    ("https://0x7f000001/hooks", "0x7f000001 is not a public internet address (loopback)"),
    ("https://2130706433/", "2130706433 is not a public internet address (loopback)"),
    ("https://localhost:6379/", "localhost is a local name"),
    ("https://redis:6379/", "redis is a local name"),
    ("https://10.0.0.8/hooks", "(private)"),
    ("https://0/", "(unspecified)"),
    # Spellings the URL's own check already refuses.
    ("https://127.1/", "Not a valid URL."), ("https://0177.0.0.1/", "Not a valid URL."),
    ("https://[::ffff:127.0.0.1]/", "Not a valid URL."),
)


def test_a_webhook_url_inside_our_network_is_refused_with_a_422_that_changes_nothing(app, keys):
    client, admin = app.test_client(), keys.auth("admin")
    client.post("/v1/agencies/north/webhook-secret", headers=admin)
    assert client.patch("/v1/agencies/north", json={"webhook_url": "https://hooks.north.example.org/debrief"},
                        headers=admin).status_code == 200
    before = client.get("/v1/agencies/north", headers=admin).get_json()
    for url, why in REFUSED_WEBHOOK_URLS:
        refused = client.patch("/v1/agencies/north", json={"name": "Renamed", "webhook_url": url}, headers=admin)
        assert refused.status_code == 422 and refused.mimetype == "application/problem+json", (url, refused.get_json())
        [reason] = refused.get_json()["errors"]["webhook_url"]
        assert why in reason, reason
        assert client.get("/v1/agencies/north", headers=admin).get_json() == before
    # Plain http only in the embedded default (a SQLite file and no Redis), where this app runs on SQLite.
    plain = client.patch("/v1/agencies/north", json={"webhook_url": "http://hooks.north.example.org/debrief"}, headers=admin)
    if app.extensions["debrief"].config.embedded:
        assert plain.status_code == 200
    else:
        assert plain.status_code == 422 and "https only" in plain.get_json()["errors"]["webhook_url"][0]
        assert client.get("/v1/agencies/north", headers=admin).get_json() == before


def test_a_webhook_to_this_machine_is_never_posted_and_dies_at_once_with_its_reason(app, services, receiver):
    # Rows written before addresses were vetted, or a name that now resolves to loopback: delivery vets again.
    services.config = services.config.updated({"webhook_allow_private_targets": False})
    port = receiver.port
    urls = [receiver.url] + [f"https://{host}:{port}/hooks/debrief"
                             for host in ("127.0.0.1", "0x7f000001", "2130706433", "127.1", "[::ffff:127.0.0.1]", "localhost")]
    ids = [queue_webhook(services, receiver, f"hook:{n}", url=url) for n, url in enumerate(urls)]
    relay_and_work(app, services)
    assert receiver.requests == []
    for id, url in zip(ids, urls):
        message = row(services, id)
        # Dead at the first attempt: no later attempt can succeed.
        assert (message.status, message.attempts) == (DEAD, 1), (url, message.last_error)
        assert message.last_error.startswith("webhook address refused: "), message.last_error
        if url.startswith("https://"):
            assert "(loopback)" in message.last_error or "local name" in message.last_error, message.last_error


def test_a_delivery_connects_to_the_address_it_vetted_never_to_a_second_lookups_answer(receiver):
    # DNS rebinding: the name answers one address to the check and another to the connection.
    # The receiver is on loopback, so the explicit setting lets it through; the second answer is unroutable.
    lookups: list[str] = []

    def resolve(host, port, *args, **kwargs):
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "192.0.2.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    channel = WebhookChannel(lambda: datetime.now(timezone.utc), WebhookRules(allow_http=True, allow_private=True),
                             resolve=resolve, deadline=5)
    port = receiver.port
    channel.send(Delivery(uuid.uuid4(), "incident.planned", f"http://hooks.north.example.org:{port}/hooks/debrief",
                          {"type": "incident.planned"}, (SECRET,)))
    assert lookups == ["hooks.north.example.org"]
    [request] = receiver.requests
    # The receiver sees the URL's host name, not the address it was reached at.
    assert request.path == "/hooks/debrief" and request.headers["host"] == f"hooks.north.example.org:{port}"


@pytest.fixture(scope="module")
def hooks_certificate(tmp_path_factory):
    """A certificate for hooks.north.example.org, from an authority of the test's own."""
    if shutil.which("openssl") is None:
        missing_service("openssl", FileNotFoundError("openssl"))
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), "hooks.north.example.org")


def test_https_to_the_vetted_address_checks_the_certificate_against_the_urls_host_name(hooks_certificate):
    cert, key = hooks_certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    receiver = WebhookReceiver(tls=server_tls)
    receiver.start()
    def on_loopback(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    try:
        channel = WebhookChannel(lambda: datetime.now(timezone.utc), WebhookRules(allow_private=True), resolve=on_loopback,
                                 deadline=5)
        channel.tls = ssl.create_default_context(cafile=str(cert))  # trusts the test's authority only
        channel.send(Delivery(uuid.uuid4(), "incident.planned", f"https://hooks.north.example.org:{receiver.port}/hooks/debrief",
                              {"type": "incident.planned"}, (SECRET,)))
        [request] = receiver.requests
        assert request.headers["host"] == f"hooks.north.example.org:{receiver.port}"
        # The same address under a name the certificate is not for: nothing is posted.
        with pytest.raises(DeliveryFailed, match="http SSLCertVerificationError"):
            channel.send(Delivery(uuid.uuid4(), "incident.planned", f"https://hooks.south.example.org:{receiver.port}/hooks/debrief",
                                  {"type": "incident.planned"}, (SECRET,)))
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()
