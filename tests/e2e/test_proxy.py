"""The deployment's reverse proxy (deploy/nginx.conf.template, Debian's nginx) in front of `debrief serve`."""

from __future__ import annotations

import os
import shutil
import socket
import string
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import missing_service
from tests.e2e.conftest import base_env, free_port, start_server, stop

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf.template"
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
SLOW_CLIENTS = 20


def render(upstream: str, port: int) -> str:
    """The template with its two variables filled, as the nginx image's envsubst fills them."""
    # Only these two: nginx's own $variables stay as they are.
    return string.Template(TEMPLATE.read_text()).safe_substitute(DEBRIEF_UPSTREAM=upstream, NGINX_PORT=str(port))


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`debrief serve` (embedded default) behind nginx with the repository's config: the proxy's URL."""
    if not shutil.which(NGINX):
        missing_service("nginx (Debian package nginx)", FileNotFoundError(NGINX))
    process, _output, port = start_server([], base_env(DATABASE_URL=f"sqlite:///{tmp_path}/proxy.sqlite3"), tmp_path)
    proxy_port = free_port()
    (tmp_path / "debrief.conf").write_text(render(f"127.0.0.1:{port}", proxy_port))
    main = tmp_path / "nginx.conf"
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/nginx-error.log warn;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n  scgi_temp_path {temp['scgi']};\n"
        f"  include {tmp_path}/debrief.conf;\n}}\n"
    )
    nginx = subprocess.Popen([NGINX, "-c", str(main), "-p", str(tmp_path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{proxy_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except (OSError, urllib.error.URLError):
                if nginx.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {nginx.stderr.read().decode() if nginx.stderr else ''}")
                time.sleep(0.1)
        yield url, process
    finally:
        nginx.terminate()
        try:
            nginx.wait(timeout=20)
        finally:
            if nginx.poll() is None:
                nginx.kill()
                nginx.wait()
            if nginx.stderr:
                nginx.stderr.close()
            stop(process)


def slow_header_connections(url: str, count: int) -> list[socket.socket]:
    """Connections that start a request and never finish its headers."""
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for n in range(count):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow-{n}: ".encode())
        sockets.append(sock)
    return sockets


def test_slow_clients_do_not_delay_others_behind_the_proxy(proxied):
    url, _server = proxied
    sockets = slow_header_connections(url, SLOW_CLIENTS)
    try:
        for sock in sockets:
            sock.sendall(b"a")  # still trickling, still unfinished
        for _ in range(5):
            started = time.monotonic()
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
                assert answer.status == 200
            # The figure of the deployment issue: another client's request is not delayed past 1 s.
            assert time.monotonic() - started < 1.0
    finally:
        for sock in sockets:
            sock.close()


def test_the_proxy_keeps_metrics_private_and_passes_everything_else(proxied):
    url, _server = proxied
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/metrics", timeout=5)
    assert refused.value.code == 404
    refused.value.close()
    with urllib.request.urlopen(f"{url}/openapi.yaml", timeout=5) as answer:
        assert answer.status == 200 and b"openapi" in answer.read()
    big = urllib.request.Request(f"{url}/v1/incidents", data=b"x" * (3 * 1024 * 1024), method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as too_large:
        urllib.request.urlopen(big, timeout=10)
    assert too_large.value.code == 413
    too_large.value.close()
