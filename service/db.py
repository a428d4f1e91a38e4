"""Database engine, sessions and the column types shared by every domain."""

from __future__ import annotations

import logging
import os
import select
import stat
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event, exc, literal, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def new_id() -> uuid.UUID:
    """A fresh random public identifier."""
    return uuid.uuid4()


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


class db_now(FunctionElement[datetime]):
    """The database server's current time, `seconds` later (or earlier, when negative), as a SQL expression.

    For what several processes must agree on, such as how old a claim is: each process's own clock
    may be skewed, the database's is one clock for all of them.
    """

    type = UTCDateTime()
    name = "db_now"
    inherit_cache = True

    def __init__(self, seconds: float = 0) -> None:
        super().__init__(literal(float(seconds)))


@compiles(db_now, "postgresql")
def _db_now_postgresql(element: db_now, compiler: Any, **kw: Any) -> str:
    # now() is the transaction's start: every claim of one transaction carries the same time.
    return f"(now() + make_interval(secs => {compiler.process(element.clauses, **kw)}))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    # UTC text in the layout UTCDateTime stores ('YYYY-MM-DD HH:MM:SS.ffffff'), so that stored
    # times and this one compare as text; SQLite keeps milliseconds, the last three digits are 0.
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', {compiler.process(element.clauses, **kw)} || ' seconds') || '000')"


POSTGRES_CONNECT_TIMEOUT = 5  # seconds
# A pooled connection idle longer than this is pinged (a round trip) before use; one used since is
# pinged only if the server has written to it meanwhile (a restart or a terminated backend says so).
PING_AFTER_IDLE_SECONDS = 5.0
# Connections each pool keeps: as many as a gunicorn worker has threads (`debrief serve`), each request
# holding one. With fewer, a worker's busy moments opened connections and closed them again (a
# PostgreSQL backend started and ended each time): 64 in 8 s of intake on 16 connections.
POOL_SIZE = 8
# The longest a statement waits for a lock (a row, a table, the planners' advisory lock) before
# failing with 55P03: a stuck transaction costs its waiters a retry or a 503, not a pile-up of workers.
POSTGRES_LOCK_TIMEOUT_MS = 5000


# The database file and what SQLite writes beside it (SQLite gives these its file's mode).
# The database, its journals, and the links' key file beside it (service.signing).
SQLITE_FILES = ("", "-wal", "-shm", "-journal", ".key")
PRIVATE = 0o600


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database, an in-memory one or a `file:` URI."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or in_memory(url) or parsed.query.get("uri"):
        return None
    return Path(parsed.database)


def in_memory(url: str) -> bool:
    """Whether a URL names an in-memory SQLite database."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def keep_private(database: Path) -> None:
    """Create the SQLite file readable by its owner only, and take others' access away from an existing one.

    Participants' names, answers and escalations are in it: umask 022 would let every account
    of the machine read it.
    """
    try:
        # An empty file is an empty database to SQLite, which then keeps this mode for its -wal and -shm.
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    except FileExistsError:
        pass
    except OSError:
        return  # e.g. no such directory: SQLite says so when it connects
    for suffix in SQLITE_FILES:
        path = database.with_name(database.name + suffix)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                path.chmod(mode & 0o700)
                log.warning("%s was readable by other accounts; it is now mode %o", path, mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError:
            log.warning("%s is readable by other accounts and not ours to change: chmod 600 it", path)


def truncate_wal(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database and empty it (nothing to do on PostgreSQL)."""
    if engine.dialect.name == "sqlite":
        # Outside any transaction (no BEGIN IMMEDIATE from the "begin" hook): a checkpoint cannot run inside one.
        connection = engine.raw_connection()
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
        finally:
            connection.close()


def make_engine(url: str, *, lock_timeout_ms: int = POSTGRES_LOCK_TIMEOUT_MS, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs for concurrent use."""
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is not None:
            keep_private(database)
        # hide_parameters: a failing statement must not carry personal data into the logs.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; foreign keys are off by default.
            # pysqlite's own BEGIN handling is switched off so the "begin" hook below decides.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # What is deleted or overwritten (a sent message's links, erased personal data) is zeroed
            # in the file, not left in free space for anyone with a copy of it to read back.
            cursor.execute("PRAGMA secure_delete=ON")
            # The write-ahead log keeps earlier images of pages until it is reset: truncated at each
            # reset, it does not keep them for long (and retention truncates it every hour).
            cursor.execute("PRAGMA journal_size_limit=0")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn: Any) -> None:
            # Take the write lock at BEGIN so two writers queue instead of failing on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return engine
    # A database host that stops answering (rather than refusing) must cost a request seconds and
    # a 503, not the operating system's minutes-long connect timeout.
    kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", POSTGRES_CONNECT_TIMEOUT)
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=10, hide_parameters=True, **kwargs)

    @event.listens_for(engine, "connect")
    def _postgres_lock_timeout(dbapi_connection: Any, _record: Any) -> None:
        # Per connection (libpq's `options` in the URL stay the deployment's own); committed, or a
        # rollback would undo it.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        dbapi_connection.commit()

    _ping_when_in_doubt(engine)
    return engine


_LAST_USED = "debrief_last_used"


def _ping_when_in_doubt(engine: Engine) -> None:
    """Check a pooled connection before use, as pool_pre_ping does, but without a round trip when it was just used.

    pool_pre_ping cost every checkout a round trip to the server: in-process, about 0.2 ms of the
    service's CPU and 0.07 ms of PostgreSQL's per report, of some 2 and 0.45. A connection back in
    the pool moments ago is pinged only when its socket has something to read, which an idle
    connection has only when the server closed it.
    """

    def _used(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    # A connection just made counts as just used, as one just given back does.
    event.listen(engine, "connect", _used)
    event.listen(engine, "checkin", _used)

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last_used = record.info.get(_LAST_USED)
        if last_used is not None and time.monotonic() - last_used < PING_AFTER_IDLE_SECONDS \
                and not _server_wrote(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # As pool_pre_ping: every connection of the pool made before now is dropped, and one made afresh.
            raise exc.InvalidatePoolError(str(error)) from error


def _server_wrote(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has input (the server's goodbye, or end of file), or cannot be asked."""
    try:
        if dbapi_connection.closed:
            return True
        poller = select.poll()
        poller.register(dbapi_connection.pgconn.socket, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except Exception:  # a broken connection may not even have a socket: the ping will tell
        return True


def is_postgres(db: Session) -> bool:
    """Whether the session is on PostgreSQL (else SQLite, the embedded default)."""
    return db.get_bind().dialect.name == "postgresql"


def conflict_insert(db: Session) -> Any:
    """The session's dialect's `insert`, the one with ON CONFLICT (both PostgreSQL and SQLite have it)."""
    return postgresql.insert if is_postgres(db) else sqlite.insert


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
