"""Prometheus metrics of the HTTP API: counts and latencies per route template."""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from datetime import datetime
from typing import Callable, Iterator

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from service.errors import NotFound, Unauthenticated

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Request counters and latency histograms, labelled by route template (never by path)."""

    outbox: "OutboxCollector | None" = None

    def __init__(self) -> None:
        # A registry per app: tests build many apps in one process.
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "debrief_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "debrief_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            registry=self.registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    def install(self, app: Flask) -> None:
        """Time every request."""

        @app.before_request
        def _start_timer() -> None:
            g.metrics_started = time.perf_counter()

        @app.after_request
        def _observe(response: Response) -> Response:
            started = g.pop("metrics_started", None)
            # The template, not the path: paths carry ids and feed/response tokens.
            route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
            # Any token can be sent as a method: only known ones become label values.
            method = request.method if request.method in KNOWN_METHODS else "OTHER"
            self.requests.labels(method, route, str(response.status_code)).inc()
            if started is not None:
                self.latency.labels(method, route).observe(time.perf_counter() - started)
            return response

    def watch_outbox(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        """Export the outbox's state (read from the database at each scrape)."""
        self.outbox = OutboxCollector(engine, clock)
        self.registry.register(self.outbox)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition; under gunicorn, merged across worker processes."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            if self.outbox is not None:
                registry.register(self.outbox)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class OutboxCollector(Collector):
    """Messages owed and not delivered: what an alert on stuck or dead deliveries watches."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metrics' names, without reading the database (the registry asks when the app is built)."""
        yield GaugeMetricFamily("debrief_outbox_messages", "Outbox messages not delivered, by state", labels=["state"])
        yield GaugeMetricFamily("debrief_outbox_oldest_due_age_seconds", "How long the oldest due, undelivered message has waited")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Pending and dead messages, and how long the oldest due message has waited."""
        from service.outbox.models import DEAD, PENDING, QUEUED, SENDING, OutboxMessage

        now = self.clock()
        try:
            with self.engine.connect() as conn:
                counts = dict(conn.execute(
                    select(OutboxMessage.status, func.count()).where(OutboxMessage.status.in_((PENDING, QUEUED, SENDING, DEAD)))
                    .group_by(OutboxMessage.status)).all())
                oldest = conn.scalar(select(func.min(OutboxMessage.due_at)).where(
                    OutboxMessage.status.in_((PENDING, QUEUED, SENDING)), OutboxMessage.due_at <= now))
        except DBAPIError:
            return  # the database is down: /readyz says so; the scrape still answers
        pending = GaugeMetricFamily("debrief_outbox_messages", "Outbox messages not delivered, by state", labels=["state"])
        for state in (PENDING, QUEUED, SENDING, DEAD):
            pending.add_metric([state], counts.get(state, 0))
        yield pending
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily("debrief_outbox_oldest_due_age_seconds",
                                "How long the oldest due, undelivered message has waited", value=max(age, 0.0))


def is_loopback(address: str | None) -> bool:
    """Whether a client address is this host's own (127.0.0.0/8, ::1, or ::ffff:127.x.y.z)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False  # e.g. a Unix socket's empty address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check_scraper(*, token: str | None, authorization: str, remote_addr: str | None) -> None:
    """Let a Prometheus scraper in: the bearer of METRICS_TOKEN, or without one a client on this host only.

    Route names and counts map the service's use, so strangers get a 404 (as if there were no
    such page), or a 401 when a token is set, since then the endpoint is meant to be reached.
    """
    if token is None:
        if not is_loopback(remote_addr):
            raise NotFound("Not found.")
        return
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Unauthenticated("Send `Authorization: Bearer <METRICS_TOKEN>`.")
