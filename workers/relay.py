"""The outbox relay: moves due outbox rows into the delivery queue.

The database is the system of record and Redis only a transport: a row is marked `queued`
(and committed) before its job is enqueued, with the row id as the job id. A row left
`queued` or `sending` longer than the visibility timeout (Redis lost the job, or a worker
died) is handed out again; the job's claim makes a duplicate a no-op. The visibility
timeout must exceed JOB_TIMEOUT, so that no live job still holds a row handed out again.

Two clocks: whether a row is due is business time, the app's clock (`services.clock`, which tests
move); how long a row has been queued or sending is a lease shared by processes on several
machines, timed by the database's clock alone, so that a process whose clock runs ahead cannot
take another's fresh claim for lost.

Escalations are claimed first. Without Redis, each channel has its own lane (a thread claiming
one message of its channel at a time): a receiver that hangs until the attempt's deadline holds
up only its own channel, and an escalation waits for at most one attempt of its lane.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import and_, case, or_, select, update

from service.db import db_now
from service.outbox.models import CHANNELS, EMAIL, ESCALATIONS, PENDING, QUEUED, SENDING, OutboxMessage
from service.retention import erase_due
from workers import queues

if TYPE_CHECKING:
    from service.app import Services

log = logging.getLogger("workers.relay")

BATCH = 500
JOB_TIMEOUT = 120  # seconds; above an attempt's deadline (DELIVERY_DEADLINE_SECONDS)
FAILED_JOB_TTL = 24 * 3600  # the outbox row keeps the history; RQ's failed registry need not
RETENTION_INTERVAL = 3600.0  # seconds between retention passes of a running relay
# Without Redis, a lane claims one message at a time: a message claimed waits for no one else's attempt.
LANE_BATCH = 1

Dispatch = Callable[[Sequence[uuid.UUID]], None]


def relay_once(services: Services, dispatch: Dispatch, *, batch: int = BATCH, channel: str | None = None,
               urgent: Dispatch | None = None) -> int:
    """Claim up to `batch` due or lost rows, escalations first, mark them queued, then dispatch them; returns how many.

    Only rows of `channel` when given. Escalations go to `urgent` when given, else first to `dispatch`.
    """
    now = services.clock()
    lost_before = db_now(-services.config.delivery_visibility_seconds)
    claimable = or_(
        and_(OutboxMessage.status == PENDING, OutboxMessage.due_at <= now),
        and_(OutboxMessage.status == QUEUED, OutboxMessage.enqueued_at < lost_before),
        and_(OutboxMessage.status == SENDING, OutboxMessage.claimed_at < lost_before),
    )
    if channel is not None:
        claimable = and_(OutboxMessage.channel == channel, claimable)
    with services.session_factory() as db:
        rows = db.execute(
            select(OutboxMessage.id, OutboxMessage.kind)
            .where(claimable)
            .order_by(case((OutboxMessage.kind.in_(ESCALATIONS), 0), else_=1), OutboxMessage.due_at)
            .limit(batch)
            # PostgreSQL: concurrent relays skip each other's rows instead of taking them twice.
            # SQLite: ignored; the write lock taken at BEGIN serializes relays.
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            db.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_([id for id, _kind in rows]))
                .values(status=QUEUED, enqueued_at=db_now())
                .execution_options(synchronize_session=False)
            )
        db.commit()
    # After the commit: a job never runs before its row says queued. If this fails, the
    # rows stay queued and come back after the visibility timeout.
    claimed = len(rows)
    if urgent is not None:
        if escalations := [id for id, kind in rows if kind in ESCALATIONS]:
            urgent(escalations)
        rows = [row for row in rows if row.kind not in ESCALATIONS]
    if rows:
        dispatch([id for id, _kind in rows])
    return claimed


def rq_dispatch(connection: Redis, *, at_front: bool = False) -> Dispatch:
    """Enqueue each message as an RQ delivery job whose id is the message id (`at_front`: before every job waiting)."""
    from workers.jobs import deliver

    queue = queues.queue(queues.DELIVERY, connection)

    def enqueue(ids: Sequence[uuid.UUID]) -> None:
        job_ids = [str(id) for id in ids]
        with connection.pipeline() as pipe:
            for job_id in job_ids:
                pipe.exists(Job.key_for(job_id))
            remnants = [job_id for job_id, found in zip(job_ids, pipe.execute()) if found]
        for job_id in remnants:
            # A lost message handed out again: the job of a killed worker may still sit in RQ's
            # started registry, whose later clean-up would mark the new job (same id) failed.
            # The row is past the visibility timeout, so no live job holds it.
            try:
                Job.fetch(job_id, connection=connection, serializer=queues.SERIALIZER).delete()
            except NoSuchJobError:
                pass
        # Each job pushed at the front goes before the one pushed before it: in reverse, they keep their order.
        queue.enqueue_many([
            Queue.prepare_data(deliver, (id,), job_id=id, timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=FAILED_JOB_TTL,
                               at_front=at_front)
            for id in (reversed(job_ids) if at_front else job_ids)
        ])

    return enqueue


def in_process_dispatch(services: Services) -> Dispatch:
    """Deliver each message right here, one after the other (no Redis)."""
    from workers.jobs import deliver_message

    def deliver_all(ids: Sequence[uuid.UUID]) -> None:
        for id in ids:
            deliver_message(services, id)

    return deliver_all


def run_relay(services: Services, dispatch: Dispatch, *, interval: float, stop: threading.Event, batch: int = BATCH,
              channel: str | None = None, urgent: Dispatch | None = None, retention: bool = True) -> None:
    """Relay until `stop` is set, pausing `interval` seconds whenever nothing more is due; erase on schedule too (`retention`)."""
    next_retention = 0.0 if retention else float("inf")
    while not stop.is_set():
        try:
            moved = relay_once(services, dispatch, batch=batch, channel=channel, urgent=urgent)
        except Exception as exc:  # noqa: BLE001 - an outage of the DB or Redis must not end the loop
            log.warning("relay pass failed (%s); retrying in %.1fs", type(exc).__name__, interval)
            moved = 0
        if time.monotonic() >= next_retention:
            next_retention = time.monotonic() + RETENTION_INTERVAL
            try:
                erase_due(services)
            except Exception as exc:  # noqa: BLE001 - retried at the next interval
                log.warning("retention pass failed (%s)", type(exc).__name__)
        if moved < batch:
            stop.wait(interval)


@dataclass(frozen=True)
class InProcessDelivery:
    """The delivery lanes of a process without Redis: one thread per channel."""

    lanes: tuple[threading.Thread, ...]
    stopping: threading.Event

    def stop(self, timeout: float | None = None) -> None:
        """Ask every lane to stop once its current attempt ends, and wait for them."""
        self.stopping.set()
        for lane in self.lanes:
            lane.join(timeout)


def start_in_process_delivery(services: Services, *, interval: float = 1.0) -> InProcessDelivery:
    """Relay and deliver in daemon threads of this process, a lane per channel (serve without REDIS_URL).

    Email and webhooks never wait for each other: a webhook receiver that hangs until the attempt's
    deadline must not hold up an escalation. The email lane also runs retention.
    """
    stopping = threading.Event()
    dispatch = in_process_dispatch(services)
    lanes = tuple(
        threading.Thread(
            target=run_relay, args=(services, dispatch), name=f"debrief-delivery-{channel}", daemon=True,
            kwargs={"interval": interval, "stop": stopping, "batch": LANE_BATCH, "channel": channel,
                    "retention": channel == EMAIL},
        )
        for channel in CHANNELS
    )
    for lane in lanes:
        lane.start()
    return InProcessDelivery(lanes, stopping)
