"""The RQ worker entrypoint: builds the app once, then works the Debrief queues."""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
import uuid
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from sqlalchemy.exc import DBAPIError

from service.config import Config
from workers import queues
from workers.channels import local_hostname

if TYPE_CHECKING:
    from service.app import Services

log = logging.getLogger("workers.worker")

# Seconds to wait before working again after RQ's loop ended without being asked to (Redis went away).
RESTART_PAUSE = 1.0


def warm_up(services: Services) -> None:
    """Do once, before the forks, what every work horse would otherwise redo for each job.

    Each job runs in a fresh fork of this process: the dialect's first-connect queries,
    compiled statements and lazy imports done here are inherited (create_app has configured
    the mappers); left undone, they cost several times a no-op job, every job.
    """
    import email.policy  # noqa: F401 - EmailMessage imports it lazily

    from workers.jobs import deliver_message  # RQ would import the job module in every horse

    # No row has this id: the claim is compiled and cached, and nothing changes.
    try:
        deliver_message(services, uuid.UUID(int=0))
    except DBAPIError as exc:
        # Only a speed-up: a worker started while the database is down must still start, and
        # its jobs fail and come back through the relay until the database answers again.
        log.warning("warm-up skipped, database unavailable (%s)", type(exc).__name__)
    local_hostname()
    services.engine.dispose()  # no connection may cross the fork
    gc.freeze()  # the horses share these pages instead of copying them on the first collection


# How long the worker's pubsub thread (RQ's commands, e.g. kill-horse) waits for a message at a time.
PUBSUB_POLL_SECONDS = 1.0


class PromptPubSub:
    """RQ's subscription to its command channel, with a pubsub thread that polls every second.

    RQ lets the thread wait 60 s for a message, and redis-py's PubSubWorkerThread.stop() now
    waits for that wait to end: a worker's shutdown then hung for up to a minute whenever the
    thread had already read the unsubscribe reply before being told to stop. Mixed into every
    RQ worker class Debrief runs (before RQ's class).
    """

    def subscribe(self) -> None:
        """Subscribe to the worker's command channel with a prompt pubsub thread."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)  # type: ignore[attr-defined]
        self.pubsub = self.connection.pubsub()  # type: ignore[attr-defined]
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})  # type: ignore[attr-defined]
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_POLL_SECONDS, daemon=True, exception_handler=self._pubsub_exception_handler)  # type: ignore[attr-defined]


class DeliveryWorker(PromptPubSub, Worker):
    """RQ's worker, remembering a stop request: its loop also ends unasked when Redis goes away mid-job."""

    stop_requested = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        """Warm shutdown (SIGTERM, SIGINT), noted so that run_worker does not start working again."""
        self.stop_requested = True
        super().request_stop(signum, frame)


def run_worker(config: Config, *, burst: bool = False) -> bool:
    """Work the queues until stopped (or until empty with `burst`), working again after a Redis outage."""
    from service.app import create_app

    app = create_app(config)
    warm_up(app.extensions["debrief"])
    # RQ forks a work horse per job: a pooled connection must never be shared across the fork.
    os.register_at_fork(after_in_child=lambda: app.extensions["debrief"].engine.dispose(close=False))
    connection = Redis.from_url(config.redis_url)
    worked = False
    stop: list[int] = []

    def note_stop(signum: int, _frame: Any) -> None:
        stop.append(signum)

    with app.app_context():
        try:
            while True:
                worker = None
                try:
                    # RQ's worker talks to Redis from its constructor on.
                    worker = DeliveryWorker([queues.queue(name, connection) for name in queues.ALL], connection=connection,
                                            serializer=queues.SERIALIZER)
                    worked = worker.work(burst=burst, with_scheduler=False) or worked
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    # RQ quits its loop when Redis vanishes mid-job, and its clean-up then fails as well.
                    log.warning("Redis unavailable (%s)", type(exc).__name__)
                finally:
                    # RQ's signal handlers belong to the worker that just ended: until the next one
                    # installs its own, a stop request is noted here.
                    for sig in (signal.SIGTERM, signal.SIGINT):
                        signal.signal(sig, note_stop)
                if burst or (worker is not None and worker.stop_requested) or stop:
                    return worked
                # Left alone, the deployment would stop delivering until someone restarts it; the jobs
                # Redis lost come back from the outbox through the relay's visibility timeout.
                log.warning("the worker loop ended unasked; working again in %.0f s", RESTART_PAUSE)
                deadline = time.monotonic() + RESTART_PAUSE
                while not stop and time.monotonic() < deadline:
                    time.sleep(0.1)
                if stop:
                    return worked
        except StopRequested:
            # A stop request taken by the ended worker's handler just before ours replaced it.
            return worked


class BurstWorker(PromptPubSub, SimpleWorker):
    """A worker that runs jobs in its own process until the queues are empty (tests and one-off runs)."""
