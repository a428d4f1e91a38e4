"""What the benchmarks share: free ports, the load average, a PostgreSQL schema per run, `debrief serve`.

Only the standard library is imported at module level: bench.jobs imports this module in every
RQ work horse, and the load generator of bench.intake runs in a process of its own that should
not pay for SQLAlchemy or Flask. The project's modules are imported where they are used.
"""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
# The links' key of the benches' servers and processes: on PostgreSQL the service refuses to start without one.
SECRET_KEY = "bench-" + "0123456789abcdef" * 4


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """Stop a process gracefully (SIGTERM), or kill it after `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_schema(prefix: str) -> tuple[str, str]:
    """A fresh, migrated schema of this run's own; returns its name and a URL that resolves names in it only."""
    from sqlalchemy import create_engine, text

    from service import migrate

    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    # libpq's options reach every connection, the server's and the workers' included (as in tests/conftest.py).
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return schema, url


def drop_schema(schema: str) -> None:
    """Drop the run's schema and everything in it."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


class Server:
    """`python -m service serve` (gunicorn) on a free port, its output kept in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path, *, workers: int | None = None) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = {**os.environ, "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}", **env}
        self.command = [sys.executable, "-m", "service", "serve", "--port", str(self.port)]
        if workers is not None:
            self.command += ["--workers", str(workers)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        """Start gunicorn and return once /healthz answers 200."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/healthz")
                ok = connection.getresponse().status == 200
                connection.close()
                if ok:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"the server did not answer /healthz within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop gunicorn gracefully (SIGTERM), or kill it after 30 s."""
        stop_process(self.process)

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by gunicorn's master and its live workers (Linux /proc)."""
        if self.process is None:
            return 0.0
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # The command may contain spaces: the fields that follow it start after the last ')'.
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the process ended meanwhile
            pid, ppid = int(stat.parent.name), int(fields[1])
            if self.process.pid in (pid, ppid):
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server wrote."""
        if not self.log_path.exists():
            return "(no server output)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Planner:
    """`python -m service planner` (the planner process, as docker-compose runs it), its output kept in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the planner; it listens for intake's wake-ups once it has connected."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "service", "planner"], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        """Stop it gracefully (SIGTERM: it finishes its pass), or kill it after 30 s."""
        stop_process(self.process)

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the planner has used so far (Linux /proc)."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the planner wrote."""
        if not self.log_path.exists():
            return "(no planner output)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
