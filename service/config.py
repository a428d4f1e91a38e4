"""Configuration read from the environment, once, by the app factory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

DEFAULT_DATABASE_URL = "sqlite:///debrief.sqlite3"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_MAIL_FROM = "Debrief <debrief@localhost>"
DEFAULT_DELIVERY_MAX_ATTEMPTS = 6
DEFAULT_DELIVERY_VISIBILITY_SECONDS = 300
# Below RQ's job timeout (workers.relay.JOB_TIMEOUT, 120 s), so that a slow receiver fails the attempt, not the job.
DEFAULT_DELIVERY_DEADLINE_SECONDS = 15
DEFAULT_RETENTION_DAYS = 90
TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class Config:
    """Settings of one Debrief process."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    # smtp://host:port, smtp://user:password@host:587 (STARTTLS required) or smtps://... (implicit TLS).
    smtp_url: str | None = None
    # A private certificate authority for the SMTP server's certificate (PEM).
    smtp_ca_file: str | None = None
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    default_timezone: str = "America/Toronto"
    # A 500-person incident is ~150 KB of JSON; anything far above is not a report.
    max_content_length: int = 2 * 1024 * 1024
    # How far in the future an occurred_at may lie, for clock skew between CAD and us.
    clock_skew_seconds: int = 300
    # Outbox delivery: the From of our emails (webhooks are signed with each agency's own secret),
    # how many attempts before a message is dead, and how long a message may stay queued or
    # sending before the relay takes it for lost (longer than a job may run, see workers.relay).
    mail_from: str = DEFAULT_MAIL_FROM
    # SECRET_KEY: the keys that sign people's links, newest first (comma-separated); the first signs,
    # all verify. Unset: on SQLite, generated keys in a file beside the database (see service.signing).
    secret_keys: tuple[str, ...] = ()
    delivery_max_attempts: int = DEFAULT_DELIVERY_MAX_ATTEMPTS
    delivery_visibility_seconds: int = DEFAULT_DELIVERY_VISIBILITY_SECONDS
    # The longest one delivery attempt (connection, TLS, the whole exchange) may take, in seconds.
    delivery_deadline_seconds: float = DEFAULT_DELIVERY_DEADLINE_SECONDS
    # Days after an incident is closed before its participants' personal data is erased.
    retention_days: int = DEFAULT_RETENTION_DAYS
    # `debrief serve --demo`: the demo's mailbox page shows every email the service would send.
    demo: bool = False
    # PostgreSQL: the longest a statement waits for a lock before the request is retried or answered 503.
    lock_timeout_ms: int = 5000
    # The bearer token /metrics asks for; unset, /metrics answers loopback clients only.
    metrics_token: str | None = None
    # Lets webhooks go to loopback and private addresses, over plain http too (tests, closed networks);
    # off, they go to public https receivers only (http in the embedded default), see service.agencies.webhook_address.
    webhook_allow_private_targets: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """Build the configuration from environment variables."""
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("REDIS_URL") or None,
            smtp_url=env.get("SMTP_URL") or None,
            smtp_ca_file=env.get("SMTP_CA_FILE") or None,
            public_base_url=(env.get("PUBLIC_BASE_URL") or DEFAULT_PUBLIC_BASE_URL).rstrip("/"),
            mail_from=env.get("MAIL_FROM") or DEFAULT_MAIL_FROM,
            secret_keys=secret_keys(env.get("SECRET_KEY")),
            delivery_max_attempts=int(env.get("DELIVERY_MAX_ATTEMPTS") or DEFAULT_DELIVERY_MAX_ATTEMPTS),
            delivery_visibility_seconds=int(env.get("DELIVERY_VISIBILITY_SECONDS") or DEFAULT_DELIVERY_VISIBILITY_SECONDS),
            delivery_deadline_seconds=float(env.get("DELIVERY_DEADLINE_SECONDS") or DEFAULT_DELIVERY_DEADLINE_SECONDS),
            retention_days=int(env.get("RETENTION_DAYS") or DEFAULT_RETENTION_DAYS),
            metrics_token=env.get("METRICS_TOKEN") or None,
            webhook_allow_private_targets=(env.get("WEBHOOK_ALLOW_PRIVATE_TARGETS") or "").strip().lower() in TRUE,
        )

    @property
    def embedded(self) -> bool:
        """Whether this is the embedded default: a SQLite file and no Redis, everything in `debrief serve` on one machine."""
        return self.database_url.startswith("sqlite") and self.redis_url is None

    def updated(self, overrides: Mapping[str, Any]) -> "Config":
        """Return a copy with the given settings replaced; unknown names go to `extra`."""
        known = {f.name for f in fields(self)}
        direct = {k: v for k, v in overrides.items() if k in known}
        extra = {**self.extra, **{k: v for k, v in overrides.items() if k not in known}}
        return replace(self, **direct, extra=extra)


def secret_keys(value: str | None) -> tuple[str, ...]:
    """The keys of a SECRET_KEY value: comma-separated, newest first, spaces around each ignored."""
    return tuple(key for key in (part.strip() for part in (value or "").split(",")) if key)
