"""Outbox delivery through RQ: 10,000 due email rows on 2 workers, next to 10,000 no-op jobs on the same workers.

Run from the repository root: `python -m bench jobs` (`--count 2000` for a quick run). It needs
PostgreSQL (127.0.0.1:5432, database `test`, user `root`) and Redis (127.0.0.1:6379); it works in
a PostgreSQL schema of its own, dropped at the end, and in Redis database 14, flushed.

Both runs use the same workers: two `python -m service worker --burst` processes (`debrief
worker`: rq's default Worker, which forks a work horse per job), timed from their start until
both have exited, i.e. until the queue is drained.
- baseline: 10,000 jobs of `noop` below, enqueued with the options the relay gives deliveries;
- outbox: 10,000 due plain-text email rows inserted by `queue_messages` and moved to RQ by
  `relay_once` with `rq_dispatch` (neither timed), delivered by `workers.jobs.deliver` to an
  SMTP sink (aiosmtpd, in a thread of this process). Afterwards every row must be `sent` and
  the sink must hold each row's Message-ID exactly once.
The workers get compiled bytecode (in the run's temporary directory), as an installed package
has. The machine may be shared: the load average is printed before and after, and the table also
gives the CPU time of the workers and their horses per job, which other load moves less than wall time.
Target (DESIGN.md section 6): outbox throughput >= 50% of the no-op jobs' throughput.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library up here (bench._harness keeps to it too): every work horse of the
# baseline imports this module to find `noop`, and a heavy import (alembic, aiosmtpd) would be
# charged to each no-op job. The project's modules are imported where they are used.
from bench._harness import ROOT, SECRET_KEY, create_schema, drop_schema, free_port, load_average

if TYPE_CHECKING:
    from service.app import Services

REDIS_URL = "redis://127.0.0.1:6379/14"
COUNT = 10_000
WORKERS = 2
# `python -m bench.jobs` runs this file as __main__, so the job names the function by its import path.
NOOP = "bench.jobs.noop"
UTC = timezone.utc


def noop() -> None:
    """The baseline job: does nothing, so that only RQ's own cost per job remains."""


class Sink:
    """An SMTP server that keeps the raw bytes of what it accepts (parsed after the clock stops)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[bytes] = []
        self.lock = threading.Lock()
        # server_hostname: otherwise aiosmtpd calls socket.getfqdn() for every connection.
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port(), server_hostname="bench-sink")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message and accept it."""
        with self.lock:
            self.received.append(envelope.content)
        return "250 Message accepted"

    def start(self) -> str:
        """Start listening; returns the SMTP_URL of the sink."""
        self.controller.start()
        return f"smtp://127.0.0.1:{self.controller.port}"

    def stop(self) -> None:
        """Stop listening."""
        self.controller.stop()

    def message_ids(self) -> list[str]:
        """The Message-ID of every accepted message, in order of arrival."""
        parser = BytesHeaderParser()
        with self.lock:
            return [str(parser.parsebytes(raw)["Message-ID"]) for raw in self.received]


def children_cpu() -> float:
    """CPU seconds of this process's reaped children and theirs (workers and their work horses)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_workers(env: dict[str, str], log_path: Path) -> tuple[float, float]:
    """Seconds from starting WORKERS `debrief worker --burst` until all have exited, and their CPU seconds."""
    with log_path.open("wb") as log:
        cpu, started = children_cpu(), time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-m", "service", "worker", "--burst"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT) for _ in range(WORKERS)]
        codes = [p.wait() for p in procs]
        elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    if any(codes):
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        raise SystemExit(f"a worker exited with {codes}; last lines of {log_path}:\n" + "\n".join(tail))
    return elapsed, cpu


def worker_env(database_url: str, smtp_url: str | None, workdir: Path) -> dict[str, str]:
    """The environment of the worker processes."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "SECRET_KEY": SECRET_KEY}
    # Bytecode as an installed package has it (pip compiles at install): with PYTHONDONTWRITEBYTECODE,
    # every work horse would compile the job's modules from source. The prefix keeps the tree clean.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    env.pop("SMTP_URL", None)
    if smtp_url:
        env["SMTP_URL"] = smtp_url
    return env


def baseline(count: int, database_url: str, workdir: Path) -> tuple[tuple[float, float], list[tuple[str, bool]]]:
    """Time `count` no-op jobs through the workers; returns the seconds and CPU seconds, and the checks."""
    from redis import Redis
    from rq import Queue
    from rq.registry import FailedJobRegistry

    from workers import queues
    from workers.relay import FAILED_JOB_TTL, JOB_TIMEOUT

    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    queue = queues.queue(queues.DELIVERY, redis)
    # The options rq_dispatch gives a delivery, so that RQ's bookkeeping per job is the same.
    for start in range(0, count, 1000):
        queue.enqueue_many([
            Queue.prepare_data(NOOP, job_id=f"noop-{n}", timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=FAILED_JOB_TTL)
            for n in range(start, min(start + 1000, count))
        ])
    timing = run_workers(worker_env(database_url, None, workdir), workdir / "baseline-workers.log")
    checks = [
        ("queue drained", queue.count == 0),
        ("no failed job", FailedJobRegistry(queues.DELIVERY, connection=redis).count == 0),
    ]
    redis.close()
    return timing, checks


def seed(services: Services, count: int) -> None:
    """Owe `count` plain-text emails, all due a minute ago."""
    from service.outbox.models import EMAIL
    from service.outbox.service import email_payload, queue_messages

    now = datetime.now(UTC)
    payload = email_payload(
        subject="Debriefing Tuesday 14:00: your invitation",
        text="Hello,\n\nA group debriefing is planned for your unit on Tuesday at 14:00 (90 minutes), "
             "at the north-east station.\nReply to this message if you cannot attend.\n\nDebrief",
    )
    with services.session_factory() as db:
        queue_messages(db, [
            dict(dedup_key=f"bench-{n}", kind="session_invitation", channel=EMAIL,
                 recipient=f"officer{n}@agency.example", payload=payload, due_at=now - timedelta(minutes=1))
            for n in range(count)
        ], now=now)
        db.commit()


def relay_all(services: Services) -> float:
    """Relay until nothing is due; returns the seconds it took."""
    from workers.relay import relay_once, rq_dispatch

    assert services.redis is not None, "REDIS_URL is set"
    dispatch = rq_dispatch(services.redis)
    started = time.perf_counter()
    while relay_once(services, dispatch):
        pass
    return time.perf_counter() - started


def delivery_checks(services: Services, sink: Sink, count: int) -> list[tuple[str, bool]]:
    """Every row sent, by SQL; every row's Message-ID received exactly once, by the sink."""
    from sqlalchemy import func, select

    from service.outbox.models import SENT, OutboxMessage

    with services.session_factory() as db:
        rows = db.scalar(select(func.count()).select_from(OutboxMessage))
        sent = db.scalar(select(func.count()).where(OutboxMessage.status == SENT))
        expected = {f"<{id}@debrief>" for id in db.scalars(select(OutboxMessage.id))}
    received = sink.message_ids()
    distinct = set(received)
    return [
        (f"rows in outbox: {rows:,}", rows == count),
        (f"rows sent (SQL): {sent:,}", sent == count),
        (f"emails received by the sink: {len(received):,}", len(received) == count),
        (f"distinct Message-IDs: {len(distinct):,} (duplicates: {len(received) - len(distinct):,})",
         len(distinct) == len(received)),
        (f"rows whose Message-ID never arrived: {len(expected - distinct):,}", expected == distinct),
    ]


def outbox(count: int, database_url: str, workdir: Path) -> tuple[tuple[float, float], float, list[tuple[str, bool]]]:
    """Time `count` outbox emails through the workers; returns seconds and CPU seconds, relay seconds, checks."""
    from service.app import create_app
    from service.config import Config

    sink = Sink()
    smtp_url = sink.start()
    try:
        config = Config(database_url=database_url, redis_url=REDIS_URL, smtp_url=smtp_url, secret_keys=(SECRET_KEY,))
        services = create_app(config).extensions["debrief"]
        redis = services.redis
        assert redis is not None, "REDIS_URL is set"
        redis.flushdb()
        seed(services, count)
        relay_seconds = relay_all(services)
        timing = run_workers(worker_env(database_url, smtp_url, workdir), workdir / "outbox-workers.log")
        checks = delivery_checks(services, sink, count)
        redis.flushdb()
        services.close()
    finally:
        sink.stop()
    return timing, relay_seconds, checks


def main(argv: list[str] | None = None) -> int:
    """Run the baseline and the outbox delivery, print the table, the checks and the ratio."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT, help=f"jobs and outbox rows (default {COUNT:,})")
    count = parser.parse_args(argv).count
    workdir = Path(tempfile.mkdtemp(prefix="debrief-bench-jobs-"))
    print(f"{count:,} jobs, {WORKERS} `debrief worker --burst` processes (rq Worker, fork per job), "
          f"{os.cpu_count()} CPUs; load average before: {load_average()}", flush=True)
    schema, database_url = create_schema("bench_jobs")
    try:
        (base_seconds, base_cpu), base_checks = baseline(count, database_url, workdir)
        print(f"baseline done in {base_seconds:.1f} s", flush=True)
        (out_seconds, out_cpu), relay_seconds, out_checks = outbox(count, database_url, workdir)
    finally:
        drop_schema(schema)

    # CPU of the workers and their horses only (not PostgreSQL, Redis or the sink): it moves less
    # than wall time when other processes share the machine.
    print(f"{'run':<28} {'jobs':>7} {'seconds':>8} {'jobs/s':>8} {'worker CPU ms/job':>18}")
    for label, seconds, cpu in (("no-op RQ jobs", base_seconds, base_cpu),
                                ("outbox emails (SMTP sink)", out_seconds, out_cpu)):
        print(f"{label:<28} {count:>7,} {seconds:>8.2f} {count / seconds:>8.1f} {cpu / count * 1000:>18.1f}")
    print(f"(not timed above: relay of {count:,} rows into RQ in {relay_seconds:.2f} s)")
    print(f"load average after: {load_average()}")
    failed = False
    for label, ok in base_checks + out_checks:
        print(f"check {'ok  ' if ok else 'FAIL'} {label}")
        failed = failed or not ok
    ratio = (count / out_seconds) / (count / base_seconds)
    print(f"ratio (outbox / no-op): {ratio:.2f} (target >= 0.50)")
    if failed:
        print(f"checks failed; worker logs in {workdir}")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
