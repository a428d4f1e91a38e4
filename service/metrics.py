"""Prometheus metrics of the HTTP API: counts and latencies per route template."""

from __future__ import annotations

import hmac
import ipaddress
import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

from service.errors import NotFound, Unauthenticated

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Request counters and latency histograms, labelled by route template (never by path)."""

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

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition; under gunicorn, merged across worker processes."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


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
