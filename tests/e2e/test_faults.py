"""Faults under load: Redis stopped, PostgreSQL restarted, with gunicorn, the relay and RQ workers running.

The database is the system of record and Redis a transport: through either outage nothing
accepted is lost, no message goes out twice, the API answers (a 503 problem while the
database is away, never a 500 or a hang), and every process recovers without a restart.
Each test runs its own redis-server and, for the database restarts, its own PostgreSQL
cluster: the machine's shared servers are never stopped. Besides the two outages under load,
three short tests pin down, one at a time, the moments where a restart used to hurt: a
delivery made just before the database went away, an answer made just before it did, and a
worker started while it was away.

A worker SIGKILLed mid-job is covered in test_delivery.py
(test_an_incident_reported_to_a_deployment_reaches_everyone_once_despite_a_killed_worker, and
test_a_worker_killed_mid_delivery_is_retried_with_the_same_message_id for the retry itself).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from service import migrate
from service.agencies import service as agencies
from service.app import create_app
from service.auth.service import create_key
from service.db import utcnow
from service.outbox.models import EMAIL, SENT, OutboxMessage
from service.outbox.service import email_payload, queue_message
from tests.conftest import age_claims, missing_service, wipe
from tests.e2e.conftest import base_env, create_keys, free_port, issue_key, start_server, stop, wait_until_planned
from tests.factories import facilitator_body, incident_body, person
from workers.channels import Delivery, SmtpChannel
from workers.jobs import deliver_message
from workers.relay import relay_once, rq_dispatch

pytestmark = pytest.mark.e2e

AGENCY = "harbour"
# A request must be answered within this many seconds, outage or not.
ANSWER_BOUND = 10.0
# Seconds before the relay takes a queued or sending message for lost: short, so that jobs Redis
# lost come back within the test, yet far above a delivery's duration.
VISIBILITY_SECONDS = "6"
# Through a database restart: a worker keeps trying to record a delivery for half this time.
VISIBILITY_SECONDS_DB_RESTART = "12"
CLI = [sys.executable, "-m", "service"]


# -- private servers --------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own, without persistence, that the test may kill and restart."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The REDIS_URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (empty: nothing is saved) and wait until it answers."""
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while not self._answers_ping():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start: {(self.workdir / 'redis.log').read_text()}")
            time.sleep(0.05)

    def _answers_ping(self) -> bool:
        # A socket of its own, closed on every path: a client library's connection that fails while
        # the server boots can be left for the garbage collector, and its ResourceWarning fails the test.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """Stop the server abruptly: every job it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server on a free port, for this test alone."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing_service("redis-server (to run a private Redis)", FileNotFoundError("redis-server not on PATH"))
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = PrivateRedis(binary, workdir)
    server.start()
    yield server
    server.kill()


def postgres_bindir() -> Path | None:
    """The directory of initdb and pg_ctl: on PATH, else the newest Debian/Ubuntu install."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (trust auth, TCP on a free port), stopped and started at will."""

    def __init__(self, bindir: Path, root: Path, owner: list[str]) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.owner = owner  # runs the server binaries as a non-root account when we are root
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one of the cluster's databases."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database (the cluster is started if a previous test left it stopped); its URL."""
        self.start()
        name = f"debrief_{secrets.token_hex(4)}"
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
        finally:
            admin.dispose()
        return self.url(name)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.owner, str(self.bindir / tool), *args], check=True, capture_output=True, timeout=90,
                       stdin=subprocess.DEVNULL)

    def init(self) -> None:
        """Create the cluster."""
        self._run("initdb", "-D", str(self.data), "--auth=trust", "--username=postgres", "--encoding=UTF8",
                  "--no-sync", "--no-instructions")

    def start(self) -> None:
        """Start the server, if stopped, and wait until it accepts connections."""
        if self.running():
            return
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options)

    def running(self) -> bool:
        """Whether the server is up."""
        status = subprocess.run([*self.owner, str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)],
                                capture_output=True, stdin=subprocess.DEVNULL)
        return status.returncode == 0

    def stop(self, mode: str) -> None:
        """Stop the server: `fast` ends sessions cleanly, `immediate` is a crash (recovery at the next start)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own, on a free port (each test makes its own database in it)."""
    bindir = postgres_bindir()
    if bindir is None:
        missing_service("PostgreSQL server binaries (initdb, pg_ctl)", FileNotFoundError("no initdb on PATH or in /usr/lib/postgresql"))
    owner: list[str] = []
    account = None
    if os.geteuid() == 0:
        # initdb refuses to run as root: the cluster belongs to the postgres account.
        runuser = shutil.which("runuser")
        try:
            account = pwd.getpwnam("postgres")
        except KeyError as exc:
            missing_service("a `postgres` account to own a private cluster", exc)
        if runuser is None:
            missing_service("runuser (to run initdb as postgres)", FileNotFoundError("runuser not on PATH"))
        owner = [runuser, "-u", "postgres", "--"]
    # Under /tmp itself: the postgres account cannot enter pytest's root-only temporary directories.
    root = Path(tempfile.mkdtemp(prefix="debrief-pg-", dir="/tmp"))
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    cluster = PrivatePostgres(bindir, root, owner)
    try:
        try:
            cluster.init()
            cluster.start()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            log = cluster.log.read_text() if cluster.log.exists() else ""
            missing_service("a private PostgreSQL cluster", RuntimeError(f"{exc}: {detail.decode(errors='replace')}{log}"))
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass  # not running
        shutil.rmtree(root, ignore_errors=True)


# -- load ------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One answer of the load, or the failure to get one."""

    what: str
    status: int | None
    content_type: str
    retry_after: str | None
    body: Any
    seconds: float
    error: str | None = None


@dataclass
class Client:
    """Talks to the API with a bounded wait, and keeps every reply."""

    base_url: str
    replies: list[Reply] = field(default_factory=list)

    def send(self, what: str, method: str, path: str, *, key: str | None = None, body: Any = None) -> Reply:
        """One request; a connection failure or a timeout is recorded as a reply without status."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        started = time.monotonic()
        try:
            try:
                with urllib.request.urlopen(request, timeout=ANSWER_BOUND * 2) as response:
                    status, headers, raw = response.status, response.headers, response.read()
            except urllib.error.HTTPError as error:
                with error:  # closed even when reading its body fails: else its socket is left to the collector
                    status, headers, raw = error.code, error.headers, error.read()
            content_type = headers.get("Content-Type", "")
            parsed = json.loads(raw) if raw and "json" in content_type else raw
            reply = Reply(what, status, content_type, headers.get("Retry-After"), parsed, time.monotonic() - started)
        except (OSError, ValueError) as exc:
            reply = Reply(what, None, "", None, None, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
        self.replies.append(reply)
        return reply


class Reporter(threading.Thread):
    """Dispatch reporting incidents one after the other, as a CAD system does: a report left
    unanswered or answered 503 is sent again, the same body, until it is accepted."""

    def __init__(self, client: Client, key: str, prefix: str, pause: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.client, self.key, self.prefix, self.pause = client, key, prefix, pause
        self.halt = threading.Event()
        self.bodies: dict[str, dict] = {}
        self.accepted: dict[str, str] = {}  # external_id -> incident id, from 200/201 answers
        self.unsettled: str | None = None  # the report still refused when told to stop

    def run(self) -> None:
        """Report until halted."""
        external_id = None
        while not self.halt.is_set():
            if external_id is None:
                external_id = f"{self.prefix}-{len(self.bodies):03d}"
                self.bodies[external_id] = report_body(external_id)
            reply = self.client.send("report", "POST", "/v1/incidents", key=self.key, body=self.bodies[external_id])
            if reply.status in (200, 201):
                self.accepted[external_id] = reply.body["id"]
            if reply.status not in (None, 503):
                external_id = None  # anything but an outage is final (and checked by the test)
            time.sleep(self.pause)
        self.unsettled = external_id

    def finish(self) -> None:
        """Stop after the report in flight."""
        self.halt.set()
        self.join(timeout=ANSWER_BOUND * 3)
        assert not self.is_alive()


def report_body(external_id: str) -> dict:
    """An incident that occurred an hour ago, with two officers."""
    occurred_at = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
    people = [person(n, email=f"{external_id.lower()}-{n}@harbour.example.org") for n in range(1, 3)]
    return incident_body(external_id, occurred_at=occurred_at.isoformat(), personnel=people)


def wait_for(condition, timeout: float, interval: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@dataclass
class Deployment:
    """gunicorn, the relay and RQ workers, as docker-compose runs them, on the given database and Redis."""

    env: dict[str, str]
    workdir: Path
    server: subprocess.Popen | None = None
    server_log: Path | None = None
    base_url: str = ""
    helpers: list[subprocess.Popen] = field(default_factory=list)
    dispatch: str = ""

    def start(self, *, workers: int) -> None:
        """Start the relay, `workers` RQ workers and gunicorn; seed an agency and a pool of facilitators."""
        log = (self.workdir / "workers.log").open("ab")
        try:
            for command in (["relay", "--interval", "0.2"], ["planner"], *[["worker"]] * workers):
                self.helpers.append(subprocess.Popen([*CLI, *command], env=self.env, cwd=self.workdir, stdout=log, stderr=log))
        finally:
            log.close()
        with ThreadPoolExecutor(max_workers=1) as pool:
            booting = pool.submit(start_server, ["--workers", "2"], self.env, self.workdir)
            admin = issue_key(self.env, "admin")
            self.server, self.server_log, port = booting.result()
        self.base_url = f"http://127.0.0.1:{port}"
        seed = Client(self.base_url)
        assert seed.send("seed", "POST", "/v1/agencies", key=admin,
                         body={"code": AGENCY, "name": "Harbour Police", "timezone": "America/Toronto"}).status == 201
        # The coordinators' mailbox gets the alerts of incidents the pool cannot cover.
        assert seed.send("seed", "PATCH", f"/v1/agencies/{AGENCY}", key=admin,
                         body={"coordinator_email": "cism@harbour.example.org"}).status == 200
        self.dispatch, coordinator = create_keys(self.env["DATABASE_URL"], [("dispatch", AGENCY, None), ("coordinator", AGENCY, None)])
        for n, kind in enumerate(("clinician", "clinician", "clinician", "peer", "peer", "peer")):
            reply = seed.send("seed", "POST", "/v1/facilitators", key=coordinator, body=facilitator_body(n, kind=kind))
            assert reply.status == 201, reply.body

    def logs(self) -> str:
        """What gunicorn and the workers wrote, for a failing assertion."""
        parts = [path.read_text(errors="replace")[-20000:] for path in (self.server_log, self.workdir / "workers.log")
                 if path is not None and path.exists()]
        return "\n----\n".join(parts)

    def booted_workers(self) -> int:
        """How many gunicorn workers have booted so far (a restarted worker boots again)."""
        assert self.server_log is not None
        return self.server_log.read_text(errors="replace").count("Booting worker")

    def assert_running(self) -> None:
        """gunicorn, the relay and every worker are still the processes started at the beginning."""
        assert self.server is not None and self.server.poll() is None, self.logs()
        assert [p.poll() for p in self.helpers] == [None] * len(self.helpers), self.logs()

    def stop(self) -> None:
        """Stop every process of the deployment."""
        for process in self.helpers:
            process.terminate()
        for process in self.helpers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.server is not None:
            stop(self.server)


def assert_delivered_exactly_once(engine: Engine, sink, deployment: Deployment, timeout: float = 60) -> int:
    """Every message owed by now reaches the sink, each one once (by Message-ID); returns how many."""

    def settled() -> bool:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*) FROM outbox WHERE due_at <= now() AND status NOT IN ('sent', 'cancelled')")).scalar() == 0

    assert wait_for(settled, timeout=timeout, interval=0.5), deployment.logs()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status FROM outbox WHERE due_at <= now() AND status = 'sent'")).all()
        # An outage must not count as a failed delivery: nothing was refused, nothing waits for a retry.
        failed = conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'dead' OR last_error IS NOT NULL")).scalar()
    assert failed == 0
    expected = {f"<{id}@debrief>" for id, _ in rows}
    # The sink has the message once the worker's SMTP conversation ends, before the row says sent.
    assert wait_for(lambda: set(sink.message_ids()) >= expected, timeout=10)
    counts = Counter(sink.message_ids())
    assert set(counts) == expected
    assert [id for id, n in counts.items() if n > 1] == []
    return len(expected)


def assert_problem_503(reply: Reply) -> None:
    """An outage answer: 503 problem+json that says when to retry."""
    assert reply.content_type == "application/problem+json", reply
    assert reply.body["status"] == 503 and reply.body["title"] and reply.body["detail"], reply
    assert reply.retry_after is not None and int(reply.retry_after) > 0, reply


# -- the tests ---------------------------------------------------------------------------------------


def test_redis_stopped_mid_load_loses_nothing_and_delivers_each_message_once(postgres_url, private_redis, sink, tmp_path):
    env = base_env(DATABASE_URL=postgres_url, REDIS_URL=private_redis.url, SMTP_URL=sink.url,
                   DELIVERY_VISIBILITY_SECONDS=VISIBILITY_SECONDS)
    engine = create_engine(postgres_url)
    deployment = Deployment(env, tmp_path)
    reporters: list[Reporter] = []
    try:
        deployment.start(workers=2)
        client = Client(deployment.base_url)
        reporter = Reporter(client, deployment.dispatch, "CAD-R")
        reporters.append(reporter)
        reporter.start()
        assert wait_for(lambda: len(reporter.accepted) >= 4 and sink.messages, timeout=60), deployment.logs()

        private_redis.kill()
        delivered_before = len(sink.messages)
        accepted_before = len(reporter.accepted)
        # Still ready (intake needs only the database), and it says that Redis is away.
        ready = client.send("readyz", "GET", "/readyz")
        assert ready.status == 200 and ready.body["checks"] == {"database": "ok", "redis": "unavailable"}, ready
        # Reports keep being accepted: what they owe is written to the database, not to Redis.
        down_since = time.monotonic()
        assert wait_for(lambda: len(reporter.accepted) >= accepted_before + 4 and time.monotonic() > down_since + 3,
                        timeout=30), deployment.logs()

        private_redis.start()
        assert wait_for(lambda: client.send("readyz", "GET", "/readyz").body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}},
                        timeout=15)
        time.sleep(1)
        reporter.finish()

        assert reporter.unsettled is None
        assert [r for r in client.replies if r.what == "report" and r.status != 201] == []
        assert max(r.seconds for r in client.replies) < ANSWER_BOUND
        with engine.connect() as conn:
            stored = {external_id: str(id) for id, external_id in conn.execute(text("SELECT id, external_id FROM incidents"))}
        assert stored == reporter.accepted

        delivered = assert_delivered_exactly_once(engine, sink, deployment)
        assert delivered > delivered_before  # what was owed across the outage went out after it
        deployment.assert_running()
    finally:
        for reporter in reporters:
            reporter.halt.set()
        deployment.stop()
        wipe(engine)
        engine.dispose()


def test_postgresql_restarted_under_load_answers_503_then_recovers_without_restart(private_postgres, private_redis, sink, tmp_path):
    url = private_postgres.new_database()
    env = base_env(DATABASE_URL=url, REDIS_URL=private_redis.url, SMTP_URL=sink.url,
                   DELIVERY_VISIBILITY_SECONDS=VISIBILITY_SECONDS_DB_RESTART)
    subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    engine = create_engine(url)
    deployment = Deployment(env, tmp_path)
    reporters: list[Reporter] = []
    try:
        deployment.start(workers=1)
        booted = deployment.booted_workers()
        client = Client(deployment.base_url)
        reporters.extend(Reporter(client, deployment.dispatch, f"CAD-P{n}") for n in range(2))
        for reporter in reporters:
            reporter.start()
        # The whole deployment is at work (reports accepted, messages delivered) before the database goes.
        assert wait_for(lambda: sum(len(r.accepted) for r in reporters) >= 4 and sink.messages, timeout=60), deployment.logs()

        for mode in ("fast", "immediate"):
            replies_before = len(client.replies)
            private_postgres.stop(mode)
            # While the database is away the API keeps answering, with 503s.
            assert wait_for(lambda: any(r.status == 503 for r in client.replies[replies_before:]), timeout=ANSWER_BOUND * 2)
            for path in ("/readyz", "/v1/incidents?limit=5"):
                assert_problem_503(client.send("outage", "GET", path, key=deployment.dispatch))
            time.sleep(1)
            private_postgres.start()
            restarted_at = len(client.replies)
            # It recovers by itself: reports are accepted again without restarting anything.
            assert wait_for(lambda: any(r.status == 201 for r in client.replies[restarted_at:]), timeout=ANSWER_BOUND * 2), \
                deployment.logs()
        time.sleep(1)
        for reporter in reporters:
            reporter.finish()

        failures = [r for r in client.replies if r.status is None or (r.status >= 500 and r.status != 503)]
        assert failures == [], deployment.logs()
        for reply in client.replies:
            if reply.status == 503:
                assert_problem_503(reply)
        assert max(r.seconds for r in client.replies) < ANSWER_BOUND
        assert {r.status for r in client.replies if r.what == "report"} <= {200, 201, 503}
        assert any(r.status == 503 for r in client.replies if r.what == "report")
        assert deployment.booted_workers() == booted  # gunicorn never replaced a worker
        deployment.assert_running()

        # Dispatch sends again what was still refused; the same body is the same incident, never a second one.
        accepted: dict[str, str] = {}
        posted: set[str] = set()
        for reporter in reporters:
            accepted.update(reporter.accepted)
            posted.update(reporter.bodies)
            if reporter.unsettled is not None:
                reply = client.send("report", "POST", "/v1/incidents", key=deployment.dispatch,
                                    body=reporter.bodies[reporter.unsettled])
                assert reply.status in (200, 201), reply
                accepted[reporter.unsettled] = reply.body["id"]
        # Nothing accepted is missing, a report sent again never made a second incident, none is left unplanned.
        wait_until_planned(engine)
        with engine.connect() as conn:
            stored = {external_id: str(id) for id, external_id in conn.execute(text("SELECT id, external_id FROM incidents"))}
            unplanned = conn.execute(text("SELECT count(*) FROM incidents WHERE status = 'received'")).scalar()
        assert stored == accepted and set(stored) == posted
        assert unplanned == 0

        assert_delivered_exactly_once(engine, sink, deployment)
        deployment.assert_running()
    finally:
        for reporter in reporters:
            reporter.halt.set()
        deployment.stop()
        engine.dispose()


class RestartingDatabaseChannel:
    """The real SMTP channel; the moment the receiver has the message, PostgreSQL stops, and starts again later."""

    def __init__(self, smtp: SmtpChannel, cluster: PrivatePostgres, down_for: float) -> None:
        self.smtp, self.cluster, self.down_for = smtp, cluster, down_for
        self.restart: threading.Thread | None = None

    def send(self, delivery: Delivery) -> None:
        """Deliver, then take the database away for `down_for` seconds."""
        self.smtp.send(delivery)
        self.cluster.stop("fast")
        self.restart = threading.Thread(target=lambda: (time.sleep(self.down_for), self.cluster.start()))
        self.restart.start()


def test_a_message_delivered_while_postgresql_restarts_is_recorded_sent_and_not_sent_again(private_postgres, sink):
    url = private_postgres.new_database()
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    app = create_app({"database_url": url, "smtp_url": sink.url, "delivery_visibility_seconds": 30})
    services = app.extensions["debrief"]
    channel = RestartingDatabaseChannel(SmtpChannel(sink.url, services.config.mail_from), private_postgres, down_for=2)
    try:
        with services.session_factory() as db:
            id = queue_message(db, dedup_key="restart", kind="invitation", channel=EMAIL, recipient="officer@example.org",
                               payload=email_payload(subject="Invitation", text="Hello"), now=utcnow())
            db.commit()
        handed_out: list = []
        assert relay_once(services, handed_out.extend) == 1 and handed_out == [id]

        assert deliver_message(services, id, channels={EMAIL: channel}) == SENT
        assert channel.restart is not None
        channel.restart.join(timeout=60)
        with services.session_factory() as db:
            row = db.get(OutboxMessage, id)
            assert (row.status, row.attempts) == (SENT, 1)
        # Past the visibility timeout the relay finds nothing lost: the receiver never gets it twice.
        age_claims(services.session_factory, services.config.delivery_visibility_seconds + 1)
        assert relay_once(services, handed_out.extend) == 0
        assert sink.message_ids() == [f"<{id}@debrief>"]
    finally:
        if channel.restart is not None:
            channel.restart.join(timeout=60)
        services.close()


def test_an_answer_made_before_the_database_went_away_is_still_sent(private_postgres):
    url = private_postgres.new_database()
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    app = create_app({"database_url": url})
    services = app.extensions["debrief"]
    try:
        with services.session_factory() as db:
            agencies.create(db=db, data={"code": AGENCY, "name": "Harbour Police", "timezone": "America/Toronto"})
            key = create_key(db=db, role="dispatch", agency_code=AGENCY)

        @app.after_request
        def database_goes_away(response):
            # After the view has answered, before the request's session is closed.
            private_postgres.stop("fast")
            return response

        answer = app.test_client().get("/v1/incidents", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200 and answer.get_json()["items"] == []
    finally:
        private_postgres.start()
        services.close()


def test_a_worker_started_while_postgresql_is_down_delivers_once_it_is_back(private_postgres, private_redis, sink, tmp_path):
    url = private_postgres.new_database()
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    env = base_env(DATABASE_URL=url, REDIS_URL=private_redis.url, SMTP_URL=sink.url)
    log_path = tmp_path / "worker.log"
    app = create_app({"database_url": url, "redis_url": private_redis.url})
    services = app.extensions["debrief"]
    private_postgres.stop("fast")
    with log_path.open("wb") as log:
        worker = subprocess.Popen([*CLI, "worker"], env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        assert wait_for(lambda: "Listening on" in log_path.read_text() or worker.poll() is not None, timeout=30)
        assert worker.poll() is None, log_path.read_text()
        private_postgres.start()
        with services.session_factory() as db:
            id = queue_message(db, dedup_key="late-start", kind="invitation", channel=EMAIL, recipient="officer@example.org",
                               payload=email_payload(subject="Invitation", text="Hello"), now=utcnow())
            db.commit()
        assert relay_once(services, rq_dispatch(services.redis)) == 1
        assert wait_for(lambda: sink.messages, timeout=30), log_path.read_text()
        assert sink.message_ids() == [f"<{id}@debrief>"] and worker.poll() is None
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)  # a warm shutdown of an idle worker takes about a second
        finally:
            # Whatever happened above, nothing of this test may outlive it.
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            private_postgres.start()
            services.close()
