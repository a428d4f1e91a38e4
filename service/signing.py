"""The keys that sign people's links, and through a derived key the console's cookies.

`SECRET_KEY` holds them: one key, or several separated by commas, the newest first. The first
signs; every one verifies, so a key is rotated by putting a new one in front and dropping the old
one once the links it signed have expired. Without `SECRET_KEY`, the embedded default (a SQLite
file) keeps a generated key in a file beside the database, readable by its owner only, one key a
line in the same order: never in the database itself, so that a copy of the database is not a copy
of the key. A deployment on PostgreSQL has no such file and must set `SECRET_KEY`.

Links are signed with HMAC-SHA256. Links signed before with HMAC-SHA1 (itsdangerous's default)
are still accepted until they expire (each carries its own expiry, 30 days at most after its
message): the SHA-1 fallback can go in a release made after every such link has expired.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Sequence

from itsdangerous import URLSafeSerializer

from service.config import Config
from service.db import in_memory, sqlite_file

KEY_FILE_SUFFIX = ".key"
PRIVATE = 0o600


class MissingSecretKey(Exception):
    """No key to sign links with: PostgreSQL without SECRET_KEY."""

    def __init__(self) -> None:
        super().__init__(
            "SECRET_KEY is not set. It signs participants' and facilitators' links, and it is never kept in the "
            "database: on PostgreSQL, set SECRET_KEY to a long random value, the same in every process, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'` (see the README's deployment section)."
        )


def new_key() -> str:
    """A fresh signing key: 256 random bits."""
    return secrets.token_hex(32)


def key_file(database_url: str) -> Path | None:
    """Where the embedded default keeps its generated keys: beside the SQLite file (None for other databases)."""
    database = sqlite_file(database_url)
    return None if database is None else database.with_name(database.name + KEY_FILE_SUFFIX)


def load_keys(config: Config) -> tuple[str, ...]:
    """The keys of this deployment, newest first: SECRET_KEY, else the key file (made on first use)."""
    if config.secret_keys:
        return config.secret_keys
    path = key_file(config.database_url)
    if path is not None:
        return read_or_create(path)
    if in_memory(config.database_url):
        # An in-memory database lives as long as this process: so may its links.
        return (new_key(),)
    raise MissingSecretKey()


def read_keys(path: Path) -> tuple[str, ...]:
    """The keys of a key file: one a line, newest first; blank lines and `#` comments skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def read_or_create(path: Path) -> tuple[str, ...]:
    """The keys of the key file, created with one new key when missing (processes racing agree on the first)."""
    if not path.exists():
        write_keys(path, (new_key(),), replace=False)
    if path.stat().st_uid != os.geteuid():
        # Whoever owns it chose the key, and could sign any participant's or facilitator's link.
        raise ValueError(f"{path} belongs to another account; the service uses only a key file of its own")
    keys = read_keys(path)
    if not keys:
        raise ValueError(f"{path} holds no key; delete it to have a new one generated")
    return keys


def write_keys(path: Path, keys: Sequence[str], *, comment: str = "", replace: bool) -> None:
    """Write a key file, mode 0600, whole or not at all; without `replace`, an existing file wins."""
    text = "".join(f"# {line}\n" for line in comment.splitlines()) + "".join(f"{key}\n" for key in keys)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    # O_EXCL with the mode given at creation: the key is never readable by others, not even for an instant.
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(draft, path)
        else:
            try:
                # A link, not a rename: it fails if another process made the file first.
                os.link(draft, path)
            except FileExistsError:
                pass
    finally:
        draft.unlink(missing_ok=True)


def keep_verifying(path: Path, key: str, *, comment: str) -> None:
    """Add `key` at the end of the key file (made with a new first key when missing): it verifies, never signs."""
    keys = read_keys(path) if path.exists() else (new_key(),)
    if key not in keys:
        write_keys(path, (*keys, key), comment=comment, replace=True)


def link_serializer(keys: Sequence[str], salt: str) -> URLSafeSerializer:
    """itsdangerous's serializer of links: HMAC-SHA256 with the first key; any key, and SHA-1 until those links expire, verify."""
    # itsdangerous takes its keys oldest first and signs with the last one.
    return URLSafeSerializer(list(reversed(keys)), salt=salt, signer_kwargs={"digest_method": hashlib.sha256},
                             fallback_signers=[{"digest_method": hashlib.sha1}])
