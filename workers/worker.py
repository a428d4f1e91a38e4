"""The RQ worker entrypoint: builds the app once, then works the Debrief queues."""

from __future__ import annotations

import os

from redis import Redis
from rq import Queue, Worker

from service.config import Config
from workers import queues


def run_worker(config: Config, *, burst: bool = False) -> bool:
    """Work the queues until stopped (or until empty with `burst`)."""
    from service.app import create_app

    app = create_app(config)
    # RQ forks a work horse per job: a pooled connection must never be shared across the fork.
    os.register_at_fork(after_in_child=lambda: app.extensions["debrief"].engine.dispose(close=False))
    connection = Redis.from_url(config.redis_url)
    worker = Worker([Queue(name, connection=connection) for name in queues.ALL], connection=connection)
    with app.app_context():
        return worker.work(burst=burst, with_scheduler=False)
