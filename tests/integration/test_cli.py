"""The `debrief` command."""

import re

from click.testing import CliRunner

from service.cli import main


def run(args, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_keys_create_prints_the_key_alone_and_it_works(app, keys, database_url, monkeypatch):
    result = run(["keys", "create", "--role", "dispatch", "--agency", "north"], database_url, monkeypatch)
    assert result.exit_code == 0
    assert re.fullmatch(r"dbk_[A-Za-z0-9_-]{43}\n", result.stdout)
    secret = result.stdout.strip()
    assert app.test_client().get("/v1/incidents", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_keys_create_admin_without_agency(app, database_url, monkeypatch):
    result = run(["keys", "create", "--role", "admin"], database_url, monkeypatch)
    assert result.exit_code == 0 and result.stdout.startswith("dbk_")


def test_keys_create_refuses_unknown_agency_and_missing_scope(app, keys, database_url, monkeypatch):
    unknown = run(["keys", "create", "--role", "dispatch", "--agency", "nowhere"], database_url, monkeypatch)
    assert unknown.exit_code != 0 and unknown.stdout == ""
    unscoped = run(["keys", "create", "--role", "supervisor"], database_url, monkeypatch)
    assert unscoped.exit_code != 0 and unscoped.stdout == ""


def test_db_upgrade_is_idempotent(app, database_url, monkeypatch):
    assert run(["db", "upgrade"], database_url, monkeypatch).exit_code == 0
