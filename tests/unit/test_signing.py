"""The keys of people's links: SECRET_KEY as a list (new first), HMAC-SHA256, a key file beside SQLite, none in PostgreSQL."""

import hashlib
import os
import stat
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from itsdangerous import BadSignature, URLSafeSerializer

from service import signing
from service.config import Config
from service.facilitators import links
from service.followups import tokens

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
OLD, NEW = "old-" + "a" * 60, "new-" + "b" * 60
FOLLOWUP = uuid.UUID("12345678-1234-5678-1234-567812345678")


def participant_token(keys, expires_at=NOW + timedelta(days=1)) -> str:
    return tokens.sign(keys, followup_id=FOLLOWUP, kind="offer", expires_at=expires_at)


def test_secret_key_is_a_comma_separated_list_newest_first():
    assert Config.from_env({"SECRET_KEY": f" {NEW} , {OLD},"}).secret_keys == (NEW, OLD)
    assert Config.from_env({"SECRET_KEY": NEW}).secret_keys == (NEW,)
    assert Config.from_env({}).secret_keys == ()


def test_links_are_signed_with_hmac_sha256():
    token = participant_token((NEW,))
    sha256 = URLSafeSerializer(NEW, salt=tokens.SALT, signer_kwargs={"digest_method": hashlib.sha256})
    assert sha256.loads(token) == [FOLLOWUP.hex, "offer", int((NOW + timedelta(days=1)).timestamp())]
    with pytest.raises(BadSignature):
        URLSafeSerializer(NEW, salt=tokens.SALT).loads(token)  # itsdangerous's default, SHA-1
    facilitator = links.sign((NEW,), facilitator_id=7, expires_at=NOW + timedelta(days=1))
    assert URLSafeSerializer(NEW, salt=links.SALT, signer_kwargs={"digest_method": hashlib.sha256}).loads(facilitator)


def test_a_rotated_key_still_opens_the_links_it_signed_and_the_new_key_signs():
    before = participant_token((OLD,))
    assert tokens.verify((NEW, OLD), before, now=NOW).followup_id == FOLLOWUP
    after = participant_token((NEW, OLD))
    assert tokens.verify((NEW,), after, now=NOW).followup_id == FOLLOWUP
    with pytest.raises(tokens.InvalidToken):
        tokens.verify((OLD,), after, now=NOW)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify((NEW,), before, now=NOW)  # once the old key is dropped
    facilitator = links.sign((OLD,), facilitator_id=7, expires_at=NOW + timedelta(days=1))
    assert links.verify((NEW, OLD), facilitator, now=NOW).facilitator_id == 7


def test_a_link_signed_with_sha1_before_the_upgrade_works_until_it_expires():
    expires = int((NOW + timedelta(days=3)).timestamp())
    sha1 = URLSafeSerializer(OLD, salt=tokens.SALT).dumps([FOLLOWUP.hex, "checkin", expires])
    assert tokens.verify((NEW, OLD), sha1, now=NOW).kind == "checkin"
    with pytest.raises(tokens.ExpiredToken):
        tokens.verify((NEW, OLD), sha1, now=NOW + timedelta(days=3))
    with pytest.raises(tokens.InvalidToken):
        tokens.verify((NEW,), sha1, now=NOW)
    facilitator = URLSafeSerializer(OLD, salt=links.SALT).dumps([7, expires])
    assert links.verify((OLD,), facilitator, now=NOW).facilitator_id == 7
    with pytest.raises(links.ExpiredToken):
        links.verify((OLD,), facilitator, now=NOW + timedelta(days=3))


def test_the_embedded_default_keeps_its_key_in_a_private_file_beside_the_database(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/debrief.sqlite3")
    keys = signing.load_keys(config)
    path = tmp_path / "debrief.sqlite3.key"
    assert len(keys) == 1 and len(keys[0]) == 64
    assert path.read_text() == keys[0] + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.load_keys(config) == keys  # read back, not made again
    assert [p.name for p in tmp_path.iterdir()] == ["debrief.sqlite3.key"]  # no draft left behind


def test_a_key_file_of_another_account_is_refused(tmp_path, monkeypatch):
    config = Config(database_url=f"sqlite:///{tmp_path}/debrief.sqlite3")
    signing.load_keys(config)
    monkeypatch.setattr(signing.os, "geteuid", lambda: os.getuid() + 1)  # as if another account had made it
    with pytest.raises(ValueError, match="belongs to another account"):
        signing.load_keys(config)


def test_a_key_file_readable_by_others_is_narrowed_with_the_database(tmp_path):
    from service.db import make_engine

    config = Config(database_url=f"sqlite:///{tmp_path}/debrief.sqlite3")
    signing.load_keys(config)
    path = tmp_path / "debrief.sqlite3.key"
    path.chmod(0o644)
    make_engine(config.database_url).dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_first_key_file_written_wins_a_race(tmp_path):
    path = tmp_path / "debrief.sqlite3.key"
    signing.write_keys(path, (OLD,), replace=False)
    signing.write_keys(path, (NEW,), replace=False)
    assert signing.read_keys(path) == (OLD,)


def test_a_key_kept_for_verifying_goes_last_with_a_comment(tmp_path):
    path = tmp_path / "debrief.sqlite3.key"
    signing.write_keys(path, (NEW,), replace=False)
    signing.keep_verifying(path, OLD, comment="kept\nfor a while")
    assert path.read_text() == f"# kept\n# for a while\n{NEW}\n{OLD}\n"
    assert signing.read_keys(path) == (NEW, OLD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_secret_key_wins_and_no_key_file_is_made(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/debrief.sqlite3", secret_keys=(NEW, OLD))
    assert signing.load_keys(config) == (NEW, OLD)
    assert list(tmp_path.iterdir()) == []


def test_postgresql_without_secret_key_has_no_key():
    with pytest.raises(signing.MissingSecretKey, match="SECRET_KEY is not set"):
        signing.load_keys(Config(database_url="postgresql+psycopg://root@127.0.0.1:5432/test"))
    assert signing.load_keys(Config(database_url="postgresql+psycopg://h/db", secret_keys=(NEW,))) == (NEW,)
