"""gunicorn, embedded so that `debrief serve` is one command."""

from __future__ import annotations

from typing import Any, Callable

from flask import Flask
from gunicorn.app.base import BaseApplication


class GunicornServer(BaseApplication):
    """gunicorn serving an app built by `factory` in each worker."""

    def __init__(self, options: dict[str, Any], factory: Callable[[], Flask]) -> None:
        self.options = options
        self.factory = factory
        super().__init__()

    def load_config(self) -> None:
        """Apply our options to gunicorn's settings."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app in the worker (no engine or socket crosses the fork)."""
        return self.factory()


def start_delivery_in_worker(worker: Any) -> None:
    """gunicorn `post_worker_init` hook: relay and deliver the outbox in this worker (no Redis)."""
    from workers.relay import start_in_process_delivery

    # Each worker runs its own relay: their claims exclude each other (SKIP LOCKED, or SQLite's lock).
    start_in_process_delivery(worker.wsgi.extensions["debrief"])
