"""Secrets and health data at rest: sent bodies erased, no key in the database, private SQLite files zeroed on delete."""

from __future__ import annotations

import secrets
import sqlite3
import sqlite3.dbapi2
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from itsdangerous import URLSafeSerializer
from sqlalchemy import create_engine, inspect, text

from service import migrate, signing
from service.app import create_app
from service.cli import main
from service.config import Config
from service.followups import tokens
from service.outbox.models import PENDING, SENT, OutboxMessage
from service.outbox.service import email_payload, queue_message
from service.retention import erase_due
from tests.conftest import POSTGRES_SECRET_KEY, settings, wipe
from tests.console_helpers import csrf_of
from tests.factories import NOW
from workers.channels import DeliveryFailed
from workers.jobs import deliver_message
from workers.relay import relay_once

PRIVATE = 0o600


class Recorder:
    """A channel that keeps what it is given, refusing the first `refusals` deliveries."""

    def __init__(self, refusals: int = 0) -> None:
        self.refusals = refusals
        self.delivered: list = []

    def send(self, delivery) -> None:
        if self.refusals:
            self.refusals -= 1
            raise DeliveryFailed("smtp 451")
        self.delivered.append(delivery)


def queue_letter(services, marker: str) -> object:
    """An email carrying a link and an escalation's details, as the service writes them."""
    text_body = f"Officer Number1 (555-0101) asked to be contacted. Their page: https://debrief.example.org/r/{marker}\n"
    with services.session_factory() as db:
        id = queue_message(db, dedup_key=f"escalation:{secrets.token_hex(8)}", kind="escalation", channel="email",
                           recipient="clinician@north.example.org", now=services.clock(),
                           payload=email_payload(subject="A participant asked to be contacted", text=text_body * 20,
                                                 html=f"<p>{text_body}</p>" * 20))
        db.commit()
    return id


def deliver_due(services, channel: Recorder) -> None:
    """One relay pass, each message delivered right here through `channel`."""
    relay_once(services, lambda ids: [deliver_message(services, id, {"email": channel}) for id in ids])


def row(services, id) -> OutboxMessage:
    with services.session_factory() as db:
        return db.get(OutboxMessage, id)


# -- a message's body is erased once it is sent --------------------------------------------------------------


def test_a_sent_message_keeps_what_the_audit_needs_and_not_its_body(app, clock):
    services = app.extensions["debrief"]
    marker = secrets.token_urlsafe(24)
    id = queue_letter(services, marker)
    channel = Recorder(refusals=1)
    deliver_due(services, channel)
    retried = row(services, id)
    assert retried.status == PENDING and marker in retried.payload["text"]  # the retry still has what to send
    clock.advance(minutes=2)
    deliver_due(services, channel)
    assert marker in channel.delivered[0].payload["text"]
    sent = row(services, id)
    assert sent.payload == {}
    assert (sent.status, sent.kind, sent.channel, sent.recipient, sent.attempts, sent.last_error) == (
        SENT, "escalation", "email", "clinician@north.example.org", 2, None)
    assert sent.sent_at == clock.now and sent.created_at == NOW
    deliver_due(services, channel)
    assert len(channel.delivered) == 1


def test_the_demo_keeps_sent_emails_for_its_mailbox(database_url, clock):
    application = create_app(settings(database_url, demo=True), clock=clock)
    services = application.extensions["debrief"]
    try:
        marker = secrets.token_urlsafe(24)
        id = queue_letter(services, marker)
        deliver_due(services, Recorder())
        assert row(services, id).status == SENT
        letter = application.test_client().get(f"/demo/messages/{id}").get_data(as_text=True)
        assert f'href="https://debrief.example.org/r/{marker}"' in letter
    finally:
        wipe(services.engine)
        services.close()


# -- the embedded default's file: private, and what is erased is gone from it ---------------------------------


@pytest.fixture
def embedded(tmp_path, clock, monkeypatch):
    """An app on a SQLite file of its own, made by the app as `debrief serve` makes it.

    Its SQLite does not zero what is deleted unless asked, as most builds (Debian's is an exception) do.
    """
    connect = sqlite3.dbapi2.connect

    def connect_as_most_builds(*args, **kwargs):
        connection = connect(*args, **kwargs)
        connection.execute("PRAGMA secure_delete=OFF")
        return connection

    monkeypatch.setattr(sqlite3.dbapi2, "connect", connect_as_most_builds)  # what SQLAlchemy calls
    database = tmp_path / "debrief.sqlite3"
    application = create_app({"database_url": f"sqlite:///{database}"}, clock=clock)
    services = application.extensions["debrief"]
    # On an engine of its own: migration 0013 turns secure_delete on for the connection it runs on.
    engine = create_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    engine.dispose()
    yield services, database
    services.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_files_and_the_key_file_are_readable_by_their_owner_only(embedded):
    services, database = embedded
    queue_letter(services, "x")
    keys = services.signing_keys()
    with services.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    assert {path.name: mode(path) for path in database.parent.iterdir()} == {
        "debrief.sqlite3": PRIVATE, "debrief.sqlite3-wal": PRIVATE, "debrief.sqlite3-shm": PRIVATE,
        "debrief.sqlite3.key": PRIVATE,
    }
    assert signing.read_keys(database.with_name("debrief.sqlite3.key")) == keys


def test_an_existing_database_file_readable_by_others_is_made_private(tmp_path):
    database = tmp_path / "debrief.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    create_app({"database_url": f"sqlite:///{database}"}).extensions["debrief"].close()
    assert mode(database) == PRIVATE


def test_an_erased_body_is_no_longer_anywhere_in_the_database_file(embedded):
    services, database = embedded
    marker = secrets.token_urlsafe(24)
    id = queue_letter(services, marker)
    deliver_due(services, Recorder())
    assert row(services, id).payload == {}
    # The service still running: the retention pass (hourly, in the relay) also empties the write-ahead log.
    erase_due(services)
    for path in database.parent.glob("debrief.sqlite3*"):
        assert marker.encode() not in path.read_bytes(), path.name
    services.close()


# -- the key of people's links is never in the database ----------------------------------------------------------


def test_no_key_is_kept_in_the_database(app, database_url):
    services = app.extensions["debrief"]
    keys = services.signing_keys()
    assert "service_secrets" not in inspect(services.engine).get_table_names()
    with services.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        found = [table for table in tables for value in conn.execute(text(f"SELECT * FROM {table}")).all()
                 if any(key in str(value) for key in keys)]
    assert found == []
    if database_url.startswith("postgresql"):
        assert keys == (POSTGRES_SECRET_KEY,)


def test_the_key_the_database_held_moves_to_the_key_file_and_still_opens_its_links(tmp_path):
    database = tmp_path / "debrief.sqlite3"
    engine = create_engine(f"sqlite:///{database}")
    try:
        migrate.upgrade(engine, "0012")
        with engine.begin() as conn:
            stored = conn.execute(text("SELECT value FROM service_secrets")).scalar_one()
            conn.execute(text("INSERT INTO outbox (id, dedup_key, kind, channel, recipient, payload, due_at, status, "
                              "attempts, created_at) VALUES ('00000000000000000000000000000001', 'k', 'offer', 'email', "
                              "'a@example.org', '{}', '2026-11-22 15:00:00', 'sent', 1, '2026-11-22 15:00:00')"))
        migrate.upgrade(engine)
        assert "service_secrets" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    keys = signing.load_keys(Config(database_url=f"sqlite:///{database}"))
    assert len(keys) == 2 and keys[1] == stored and keys[0] != stored
    assert mode(database.with_name("debrief.sqlite3.key")) == PRIVATE
    # A link sent before the upgrade: the stored key, itsdangerous's SHA-1 of then.
    sent = URLSafeSerializer(stored, salt=tokens.SALT).dumps(["ab" * 16, "offer", int(NOW.timestamp()) + 86400])
    assert tokens.verify(keys, sent, now=NOW).kind == "offer"
    assert stored.encode() not in database.read_bytes()


def test_a_database_that_never_sent_anything_drops_its_stored_key_without_keeping_it(tmp_path):
    database = tmp_path / "debrief.sqlite3"
    engine = create_engine(f"sqlite:///{database}")
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    assert [path.name for path in tmp_path.iterdir()] == ["debrief.sqlite3"]


@pytest.mark.parametrize("command", [["serve"], ["worker", "--burst"], ["relay", "--once"], ["retention"]])
def test_a_deployment_on_postgresql_without_secret_key_refuses_to_start(postgres_url, redis_url, command):
    environ = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "SECRET_KEY": None, "PROMETHEUS_MULTIPROC_DIR": None}
    result = CliRunner(env=environ).invoke(main, command)
    assert result.exit_code == 1, result.output
    assert "SECRET_KEY is not set" in result.output and "never kept in the database" in result.output


# -- rotating the key signs no one's console form out ---------------------------------------------------------


def test_a_form_opened_before_a_key_rotation_can_still_be_sent_after_it(database_url, clock):
    old, new = "old-" + "a" * 60, "new-" + "b" * 60
    apps = [create_app(settings(database_url, secret_keys=keys), clock=clock) for keys in [(old,), (new, old), (new,)]]
    try:
        before = apps[0].test_client()
        token = csrf_of(before.get("/signin").get_data(as_text=True))
        cookie = before.get_cookie("debrief_forms").value
        answers = []
        for application in apps[1:]:
            after = application.test_client()
            after.set_cookie("debrief_forms", cookie)
            answers.append(after.post("/signin", data={"csrf_token": token, "email": "nobody@example.org"}).status_code)
        assert answers == [200, 400]  # accepted while the old key is listed; refused once it is dropped
    finally:
        wipe(apps[0].extensions["debrief"].engine)
        for application in apps:
            application.extensions["debrief"].close()
