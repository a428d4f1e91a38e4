"""The RQ worker entrypoint: builds the app once, then works the Debrief queues."""

from __future__ import annotations

import gc
import os
import uuid
from typing import TYPE_CHECKING

from redis import Redis
from rq import Queue, Worker
from sqlalchemy.orm import configure_mappers

from service.config import Config
from workers import queues
from workers.channels import local_hostname

if TYPE_CHECKING:
    from service.app import Services


def warm_up(services: Services) -> None:
    """Do once, before the forks, what every work horse would otherwise redo for each job.

    Each job runs in a fresh fork of this process: mapper configuration, the dialect's
    first-connect queries, compiled statements and lazy imports done here are inherited;
    left undone, they cost several times a no-op job, every job.
    """
    import email.policy  # noqa: F401 - EmailMessage imports it lazily

    from workers.jobs import deliver_message  # RQ would import the job module in every horse

    configure_mappers()
    # No row has this id: the claim is compiled and cached, and nothing changes.
    deliver_message(services, uuid.UUID(int=0))
    local_hostname()
    services.engine.dispose()  # no connection may cross the fork
    gc.freeze()  # the horses share these pages instead of copying them on the first collection


def run_worker(config: Config, *, burst: bool = False) -> bool:
    """Work the queues until stopped (or until empty with `burst`)."""
    from service.app import create_app

    app = create_app(config)
    warm_up(app.extensions["debrief"])
    # RQ forks a work horse per job: a pooled connection must never be shared across the fork.
    os.register_at_fork(after_in_child=lambda: app.extensions["debrief"].engine.dispose(close=False))
    connection = Redis.from_url(config.redis_url)
    worker = Worker([Queue(name, connection=connection) for name in queues.ALL], connection=connection)
    with app.app_context():
        return worker.work(burst=burst, with_scheduler=False)
