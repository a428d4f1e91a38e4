"""Shared fixtures: the app on SQLite and on PostgreSQL, API keys, a controllable clock."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from service import migrate
from service.app import create_app
from service.models import metadata
from tests.factories import NOW

# Browser fixtures (Chromium, axe-core, a live server) for the page tests.
pytest_plugins = ["tests.browser"]

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
# PostgreSQL keeps no key of people's links and needs SECRET_KEY (see service.signing): the tests'
# apps and servers on PostgreSQL get this one; on SQLite they make their key file beside the database.
POSTGRES_SECRET_KEY = "tests-" + "0123456789abcdef" * 4


def missing_service(what: str, error: Exception) -> None:
    """Skip on a bare machine; fail under CI, where the service must be there."""
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


def wipe(engine: Engine) -> None:
    """Delete every row, keeping the schema."""
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


def age_claims(session_factory, seconds: float) -> None:
    """Let `seconds` pass for the outbox's claims: moved back, as their times come from the database's clock, not the app's."""
    from service.outbox.models import OutboxMessage

    earlier = timedelta(seconds=seconds)
    with session_factory() as db:
        for message in db.scalars(select(OutboxMessage)):
            message.enqueued_at = message.enqueued_at and message.enqueued_at - earlier
            message.claimed_at = message.claimed_at and message.claimed_at - earlier
        db.commit()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """PostgreSQL with a freshly migrated schema of this test run's own (runs may overlap)."""
    admin = create_engine(PG_URL)
    schema = f"test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        admin.dispose()
        missing_service("PostgreSQL at 127.0.0.1:5432", exc)
    # libpq's options: every connection, the app's and subprocesses', resolves names in this schema
    # only, so nothing left in public (tables, an alembic_version) can stand in for ours.
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with a freshly migrated schema."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'debrief.sqlite3'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def settings(database_url: str, **overrides: object) -> dict[str, object]:
    """The settings of an app on `database_url`: on PostgreSQL, with the tests' SECRET_KEY."""
    keys = {"secret_keys": (POSTGRES_SECRET_KEY,)} if database_url.startswith("postgresql") else {}
    return {"database_url": database_url, **keys, **overrides}


def environment(database_url: str) -> dict[str, str]:
    """The environment of a `debrief` command on `database_url`: on PostgreSQL, with the tests' SECRET_KEY."""
    keys = {"SECRET_KEY": POSTGRES_SECRET_KEY} if database_url.startswith("postgresql") else {}
    return {"DATABASE_URL": database_url, **keys}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each integration test runs once per backend."""
    return request.getfixturevalue(f"{request.param}_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def redis_url() -> str:
    """A real Redis (database 15, flushed)."""
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except RedisError as exc:
        missing_service("Redis at 127.0.0.1:6379", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def clock() -> FakeClock:
    """The app's clock, fixed at NOW until a test moves it."""
    return FakeClock()


@pytest.fixture
def app(database_url: str, clock: FakeClock):
    """The app on one backend; every row is deleted afterwards."""
    application = create_app(settings(database_url), clock=clock)
    yield application
    services = application.extensions["debrief"]
    wipe(services.engine)
    services.close()


@pytest.fixture
def client(app):
    """A test client of the app."""
    return app.test_client()


@dataclass
class Keys:
    """One API key per role, for agency `north` (and one for agency `south`)."""

    admin: str
    coordinator: str
    dispatch: str
    supervisor: str
    other_dispatch: str
    other_coordinator: str

    def auth(self, role: str) -> dict[str, str]:
        """The Authorization header of a role's key."""
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def seed_agencies(db) -> Keys:
    """Agencies `north` (America/Toronto) and `south` (America/Vancouver) and their keys."""
    from service.agencies import service as agencies
    from service.auth.service import create_key

    agencies.create(db=db, data={"code": "north", "name": "North Police", "timezone": "America/Toronto"})
    agencies.create(db=db, data={"code": "south", "name": "South Police", "timezone": "America/Vancouver"})
    return Keys(
        admin=create_key(db=db, role="admin"),
        coordinator=create_key(db=db, role="coordinator", agency_code="north"),
        dispatch=create_key(db=db, role="dispatch", agency_code="north"),
        supervisor=create_key(db=db, role="supervisor", agency_code="north"),
        other_dispatch=create_key(db=db, role="dispatch", agency_code="south"),
        other_coordinator=create_key(db=db, role="coordinator", agency_code="south"),
    )


@pytest.fixture
def keys(app) -> Keys:
    """Agencies `north` and `south` and their keys (see seed_agencies)."""
    with app.extensions["debrief"].session_factory() as session:
        return seed_agencies(session)


@pytest.fixture
def sink():
    """A real SMTP server (aiosmtpd) that keeps what it accepts."""
    from tests.receivers import SmtpSink

    smtp = SmtpSink()
    smtp.controller.start()
    yield smtp
    smtp.controller.stop()


@pytest.fixture
def receiver():
    """A real HTTP server that records webhook POSTs."""
    from tests.receivers import WebhookReceiver

    http = WebhookReceiver()
    http.start()
    yield http
    http.stop()
