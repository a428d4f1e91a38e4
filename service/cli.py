"""The `debrief` command: serve, worker, relay, planner, db upgrade, keys create/list/revoke, users create, catalogs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator

import click

from service.config import Config


def _app(config: Config | None = None):
    from service.app import create_app

    return create_app(config or Config.from_env())


def _require_keys(config: Config) -> None:
    """Refuse to start a process that signs or checks links without their key (PostgreSQL without SECRET_KEY)."""
    from service.signing import MissingSecretKey, load_keys

    try:
        load_keys(config)
    except MissingSecretKey as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _services() -> Iterator[Any]:
    """The services of a one-off app, closed when the command is done."""
    services = _app().extensions["debrief"]
    try:
        yield services
    finally:
        services.close()


@click.group()
def main() -> None:
    """Debrief: critical-incident stress debriefing scheduler."""


@main.command()
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), help="gunicorn worker processes (default: 1 on SQLite, 4 otherwise)")
@click.option("--demo", is_flag=True, help="Seed a demo agency and keys, and print them.")
def serve(port: int, host: str, workers: int | None, demo: bool) -> None:
    """Run the API under gunicorn."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        _serve(port, host, workers, demo)
        return
    # Set before prometheus-client is imported (it picks its storage then); removed on exit.
    with tempfile.TemporaryDirectory(prefix="debrief-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        _serve(port, host, workers, demo)


def _serve(port: int, host: str, workers: int | None, demo: bool) -> None:
    from service import migrate

    config = Config.from_env().updated({"demo": demo})
    if not os.environ.get("PUBLIC_BASE_URL"):
        # Links in messages must reach this server: without a public address, the one it listens on.
        config = config.updated({"public_base_url": f"http://{host}:{port}"})
    embedded = config.database_url.startswith("sqlite")
    if not embedded:
        _require_keys(config)
    app = _app(config)
    services = app.extensions["debrief"]
    if embedded:
        # Migrations first: one may move a key into the key file (see service.signing).
        migrate.upgrade(services.engine)
        _require_keys(config)
    if demo:
        from service.demo import seed

        click.echo(seed(app, base_url=config.public_base_url))
    services.close()  # no connection may cross the fork into gunicorn's workers
    from service.db import POOL_SIZE
    from service.server import GunicornServer, start_delivery_in_worker

    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers or (1 if embedded else 4),
        # Up to 4 may wait for a plan (Prefer: wait), the others keep answering; one database connection each.
        "threads": POOL_SIZE,
        "worker_class": "gthread",
        "accesslog": None,  # our own log names the route, never the path (paths carry tokens)
        "timeout": 30,
        "graceful_timeout": 10,
        # gunicorn's control socket (gunicornc: reload, scale, stop) is an administration channel this
        # service does not use; without it there is nothing to guard.
        "control_socket_disable": True,
    }
    if config.redis_url:
        GunicornServer(options, lambda: _app(config)).run()
        return
    # No Redis: each worker relays and delivers the outbox itself, and a planner runs beside them,
    # so one command does it all. The planner is a child process, not a thread of gunicorn's: its
    # solver must not be loaded in a process that forks.
    options["post_worker_init"] = start_delivery_in_worker
    planner = PlannerChild(config)
    try:
        GunicornServer(options, lambda: _app(config)).run()
    finally:
        planner.stop()


class PlannerChild:
    """`debrief planner` as a child of `debrief serve`, on the same database and with the same links; started again if it stops."""

    def __init__(self, config: Config) -> None:
        import threading

        self._env = {**os.environ, "DATABASE_URL": config.database_url, "PUBLIC_BASE_URL": config.public_base_url}
        self._stopping = threading.Event()
        self.process = self._start()
        self._watcher = threading.Thread(target=self._watch, name="debrief-planner-watch", daemon=True)
        self._watcher.start()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "service", "planner", "--parent-pid", str(os.getpid())], env=self._env)

    def _watch(self) -> None:
        # Without a planner every report would stay `received`: one that stops (a crash, the OOM killer) is replaced.
        while not self._stopping.wait(1.0):
            if self.process.poll() is not None and not self._stopping.is_set():
                click.echo("debrief planner stopped; starting it again", err=True)
                self.process = self._start()

    def stop(self) -> None:
        """Stop watching, then stop the planner (killed if it does not stop within 15 s)."""
        self._stopping.set()
        self._watcher.join()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on the Debrief queues (needs REDIS_URL)."""
    from workers.worker import run_worker

    config = Config.from_env()
    if not config.redis_url:
        raise click.UsageError("REDIS_URL is not set: without Redis, `debrief serve` runs jobs in-process.")
    _require_keys(config)
    sys.exit(0 if run_worker(config, burst=burst) else 1)


@main.command()
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.01, 3600), help="Seconds between passes when nothing is due.")
@click.option("--once", is_flag=True, help="Make one pass and stop.")
def relay(interval: float, once: bool) -> None:
    """Move due outbox messages into the delivery queue (needs REDIS_URL)."""
    from workers.relay import relay_once, rq_dispatch, run_relay

    config = Config.from_env()
    if not config.redis_url:
        raise click.UsageError("REDIS_URL is not set: without Redis, `debrief serve` relays in-process.")
    _require_keys(config)
    with _services() as services:
        # Escalations go before every job waiting in the queue.
        dispatch, urgent = rq_dispatch(services.redis), rq_dispatch(services.redis, at_front=True)
        if once:
            click.echo(f"{relay_once(services, dispatch, urgent=urgent)} messages relayed", err=True)
            return
        _until_stopped(lambda stop: run_relay(services, dispatch, interval=interval, stop=stop, urgent=urgent))


@main.command()
@click.option("--once", is_flag=True, help="Plan what is waiting and stop.")
@click.option("--parent-pid", type=int, hidden=True, help="Stop when this process (debrief serve) is gone.")
def planner(once: bool, parent_pid: int | None) -> None:
    """Plan incident reports as they arrive, together (the planner process)."""
    from service.planner import NICENESS, plan_pending, run_planner

    _require_keys(Config.from_env())  # its plans queue messages that carry signed links
    os.nice(NICENESS)
    with _services() as services:
        if once:
            click.echo(f"{plan_pending(services)} incidents planned", err=True)
            return
        _until_stopped(lambda stop: run_planner(services, stop=stop, parent_pid=parent_pid))


def _until_stopped(loop: Any) -> None:
    """Run a long-lived loop until SIGTERM (it finishes its pass) or Ctrl-C."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        loop(stop)
    except KeyboardInterrupt:
        pass


@main.command()
def retention() -> None:
    """Erase the personal data of incidents closed more than RETENTION_DAYS ago (the relay also does it hourly)."""
    from service.retention import erase_due

    _require_keys(Config.from_env())
    with _services() as services:
        click.echo(f"{len(erase_due(services))} incidents erased", err=True)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations."""
    from service import migrate

    with _services() as services:
        migrate.upgrade(services.engine, revision)
    click.echo(f"database at {revision}", err=True)


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["admin", "coordinator", "dispatch", "supervisor", "facilitator"]))
@click.option("--agency", "agency_code", help="Agency code (every role but admin)")
@click.option("--facilitator", "facilitator_id", type=int, help="Facilitator id (facilitator keys)")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), help="The key stops working after N days (default: never)")
def keys_create(role: str, agency_code: str | None, facilitator_id: int | None, expires_in_days: int | None) -> None:
    """Create an API key and print it alone on stdout."""
    from service.auth.service import issue_key
    from service.errors import DomainError

    with _services() as services, services.session_factory() as session:
        try:
            issued = issue_key(db=session, role=role, agency_code=agency_code, facilitator_id=facilitator_id,
                               expires_in_days=expires_in_days, now=services.clock())
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(issued.key)


@keys.command("list")
def keys_list() -> None:
    """Print every key (id, role, agency, facilitator, created, expires, last used, revoked), newest first; never a secret."""
    from service.auth.service import list_page

    def day(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    click.echo("id\trole\tagency\tfacilitator\tcreated\texpires\tlast used\trevoked")
    with _services() as services, services.session_factory() as session:
        cursor = None
        while True:
            page, cursor = list_page(db=session, limit=500, cursor=cursor)
            for k in page:
                click.echo("\t".join([str(k.id), k.role, k.agency or "-", str(k.facilitator_id or "-"), day(k.created_at),
                                      day(k.expires_at), day(k.last_used_at), day(k.revoked_at)]))
            if cursor is None:
                break


@keys.command("revoke")
@click.argument("key_id", type=click.IntRange(1, 2**31 - 1))
def keys_revoke(key_id: int) -> None:
    """Revoke a key by its id (see `keys list`): its next request is refused."""
    from service.auth.service import revoke
    from service.errors import DomainError

    with _services() as services, services.session_factory() as session:
        try:
            revoke(db=session, key_id=key_id, now=services.clock())
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(f"key {key_id} revoked", err=True)


@main.group()
def users() -> None:
    """Accounts of the staff console."""


@users.command("create")
@click.option("--email", required=True, help="The address the person signs in with")
@click.option("--role", required=True, type=click.Choice(["coordinator", "supervisor", "admin"]))
@click.option("--agency", "agency_code", help="Agency code (coordinators and supervisors)")
def users_create(email: str, role: str, agency_code: str | None) -> None:
    """Create a console account; its owner signs in with a one-time link sent to the address."""
    from service.accounts.service import create_account
    from service.errors import DomainError

    with _services() as services, services.session_factory() as session:
        try:
            account = create_account(session, email=email, role=role, agency_code=agency_code, now=services.clock())
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
        click.echo(f"{account.email} ({account.role}) can sign in at {services.config.public_base_url}/signin")


@main.group()
def catalogs() -> None:
    """The fr and en catalogs of every text a person reads."""


@catalogs.command("update")
def catalogs_update() -> None:
    """Extract the texts from the code and templates, update both catalogs and compile them."""
    from service.catalogs import problems, update

    update()
    left = [p for p in problems() if "no translation" in p]
    click.echo(f"catalogs updated; {len(left)} messages still need a translation", err=True)
    for problem in left:
        click.echo(f"  {problem}", err=True)


@catalogs.command("check")
def catalogs_check() -> None:
    """Fail when a catalog is stale, incomplete or not compiled."""
    from service.catalogs import problems

    found = problems()
    for problem in found:
        click.echo(problem, err=True)
    if found:
        raise SystemExit(1)
