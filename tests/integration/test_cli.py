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


def test_users_create_makes_an_account_that_can_sign_in(app, keys, database_url, monkeypatch):
    from tests.console_helpers import sign_in

    result = run(["users", "create", "--email", "Coord@North.example.org", "--role", "coordinator", "--agency", "north"],
                 database_url, monkeypatch)
    assert result.exit_code == 0, result.output
    assert result.stdout == "coord@north.example.org (coordinator) can sign in at http://127.0.0.1:8000/signin\n"
    client = app.test_client()
    sign_in(client, app, "coord@north.example.org")
    assert "Signed in as coord@north.example.org" in client.get("/incidents").get_data(as_text=True)


def test_users_create_admin_has_no_agency_and_others_need_one(app, keys, database_url, monkeypatch):
    assert run(["users", "create", "--email", "admin@cism.example.org", "--role", "admin"], database_url, monkeypatch).exit_code == 0
    for args in (["--role", "admin", "--agency", "north"], ["--role", "supervisor"], ["--role", "supervisor", "--agency", "nowhere"]):
        refused = run(["users", "create", "--email", "x@north.example.org", *args], database_url, monkeypatch)
        assert refused.exit_code != 0 and refused.stdout == ""
    again = run(["users", "create", "--email", "ADMIN@cism.example.org", "--role", "admin"], database_url, monkeypatch)
    assert again.exit_code != 0 and "already exists" in again.output


def test_keys_list_shows_each_key_and_never_a_secret(app, keys, database_url, monkeypatch):
    app.test_client().get("/v1/incidents", headers=keys.auth("dispatch"))
    result = run(["keys", "list"], database_url, monkeypatch)
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split("\t") == ["id", "role", "agency", "facilitator", "created", "expires", "last used", "revoked"]
    assert len(rows) == 6 and "dbk_" not in result.stdout
    used = [r.split("\t") for r in rows if "\tdispatch\tnorth\t" in r]
    assert len(used) == 1 and used[0][6] != "-" and used[0][7] == "-"


def test_keys_revoke_stops_a_key_and_an_expiring_key_can_be_created(app, keys, database_url, monkeypatch):
    client = app.test_client()
    listed = run(["keys", "list"], database_url, monkeypatch).stdout.splitlines()[1:]
    [key_id] = [r.split("\t")[0] for r in listed if "\tdispatch\tnorth\t" in r]
    assert run(["keys", "revoke", key_id], database_url, monkeypatch).exit_code == 0
    assert client.get("/v1/incidents", headers=keys.auth("dispatch")).status_code == 401
    assert run(["keys", "revoke", "2147483000"], database_url, monkeypatch).exit_code != 0
    created = run(["keys", "create", "--role", "dispatch", "--agency", "north", "--expires-in-days", "30"],
                  database_url, monkeypatch)
    assert created.exit_code == 0 and created.stdout.startswith("dbk_")
    assert client.get("/v1/incidents", headers={"Authorization": f"Bearer {created.stdout.strip()}"}).status_code == 200
    [expiring] = [r.split("\t") for r in run(["keys", "list"], database_url, monkeypatch).stdout.splitlines()[1:]
                  if r.split("\t")[5] != "-"]
    assert expiring[1:3] == ["dispatch", "north"]
