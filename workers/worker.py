"""The RQ worker entrypoint: builds the app once, then works the Debrief queues."""

from __future__ import annotations

from redis import Redis
from rq import Queue, Worker

from service.config import Config
from workers import queues


def run_worker(config: Config, *, burst: bool = False) -> bool:
    """Work the queues until stopped (or until empty with `burst`)."""
    from service.app import create_app

    app = create_app(config)
    connection = Redis.from_url(config.redis_url)
    worker = Worker([Queue(name, connection=connection) for name in queues.ALL], connection=connection)
    with app.app_context():
        return worker.work(burst=burst, with_scheduler=False)
