"""A real `debrief serve` (gunicorn) in a subprocess, talked to over HTTP."""

from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import environment


@pytest.fixture(autouse=True)
def _collected_as_each_test_ends() -> Iterator[None]:
    """Collect garbage as each end-to-end test ends: a socket it left open then fails that test
    (filterwarnings = error), not a later one during which the collector happens to run."""
    yield
    gc.collect()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    """An HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """A running gunicorn serving Debrief."""

    base_url: str
    process: subprocess.Popen
    output: Path
    keys: dict[str, str] = field(default_factory=dict)
    feed_url: str = ""

    def request(self, method: str, path: str, *, body: Any = None, key: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> Answer:
        """Send one request and return the answer, whatever its status."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Answer(error.code, dict(error.headers), error.read())


def start_server(args: list[str], env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen, Path, int]:
    """Start `debrief serve` and wait until /healthz answers."""
    port = free_port()
    output = workdir / f"serve-{port}.log"
    with output.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port), *args],
            env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"debrief serve exited: {output.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process, output, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"debrief serve did not answer: {output.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """Stop gunicorn gracefully."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout:
        process.stdout.close()


def wait_until_planned(engine: Any, timeout: float = 60) -> None:
    """Wait until the planner has planned every report (none left `received`)."""
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            waiting = conn.execute(text("SELECT count(*) FROM incidents WHERE status = 'received'")).scalar_one()
        if not waiting:
            return
        assert time.monotonic() < deadline, f"{waiting} reports still unplanned after {timeout} s"
        time.sleep(0.1)


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of a server under test (on PostgreSQL, with the tests' SECRET_KEY)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SMTP_URL", "PROMETHEUS_MULTIPROC_DIR", "SECRET_KEY")}
    env.update(environment(overrides["DATABASE_URL"]) if "DATABASE_URL" in overrides else {})
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`debrief serve --demo` on the embedded default, exactly as the README says."""
    workdir = tmp_path_factory.mktemp("serve")
    # Its own home: where gunicorn would put its control socket.
    env = {k: v for k, v in base_env(DATABASE_URL=f"sqlite:///{workdir}/e2e.sqlite3", HOME=str(workdir)).items()
           if k != "XDG_RUNTIME_DIR"}
    process, output, port = start_server(["--demo"], env, workdir)
    keys, feed_url = {}, ""
    assert process.stdout is not None
    for line in process.stdout:
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("admin", "dispatch", "supervisor", "coordinator", "facilitator"):
            keys[parts[0]] = parts[1]
        if "calendar feed" in line:
            feed_url = parts[-1]
        if line.startswith("API docs:"):
            break
    server = Server(f"http://127.0.0.1:{port}", process, output, keys, feed_url)
    yield server
    stop(process)


def issue_key(env: dict[str, str], role: str, *, agency: str | None = None, facilitator: int | None = None) -> str:
    """A new API key from `debrief keys create`, as an operator issues one."""
    command = [sys.executable, "-m", "service", "keys", "create", "--role", role]
    if agency is not None:
        command += ["--agency", agency]
    if facilitator is not None:
        command += ["--facilitator", str(facilitator)]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.strip()


def create_keys(database_url: str, grants: list[tuple[str, str | None, int | None]]) -> list[str]:
    """Several API keys at once, each (role, agency, facilitator), written as `debrief keys create` writes them."""
    from service.app import create_app
    from service.auth.service import create_key

    services = create_app({"database_url": database_url}).extensions["debrief"]
    try:
        with services.session_factory() as db:
            return [create_key(db=db, role=role, agency_code=agency, facilitator_id=facilitator)
                    for role, agency, facilitator in grants]
    finally:
        services.close()
