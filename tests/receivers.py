"""Real receivers for delivery tests: an SMTP sink (aiosmtpd), an HTTP webhook receiver, and a drip feeder."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import socket
import socketserver
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(folder: Path, *names: str) -> tuple[Path, Path]:
    """A self-signed certificate made by openssl for these host names and IP addresses: (certificate, key)."""
    def alt_name(name: str) -> str:
        try:
            return f"IP:{ipaddress.ip_address(name)}"
        except ValueError:
            return f"DNS:{name}"

    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={','.join(map(alt_name, names))}"],
                   check=True, capture_output=True)
    return cert, key


class SmtpSink:
    """An SMTP server that keeps what it accepts; it can be told to refuse at RCPT or DATA."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_rcpt: str | None = None  # e.g. "554 5.7.1 rejected"
        self.refuse_data: str | None = None  # e.g. "451 4.3.0 try again later"
        self.attempts = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list) -> str:
        self.attempts += 1
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_data:
            return self.refuse_data
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"

    def message_ids(self) -> list[str]:
        """The Message-ID of every accepted message, in order."""
        return [m["Message-ID"] for m in self.messages]


@dataclass
class Received:
    """One request the webhook receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """An HTTP server that records POSTs and answers `status`; `hold` keeps the connection open unanswered.

    With `tls` (a server context holding its certificate), it answers HTTPS.
    """

    status: int = 204
    requests: list[Received] = field(default_factory=list)
    hold: threading.Event | None = None
    got_request: threading.Event = field(default_factory=threading.Event)
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                receiver.got_request.set()
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hooks/debrief"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


class DripFeeder:
    """A TCP server answering each connection with `reply`, one byte every `interval` seconds, until stopped.

    Every byte comes well within any per-read timeout: an SMTP greeting or an HTTP answer sent this
    way holds a client for as long as the reply lasts, unless the client keeps a deadline of its own.
    """

    def __init__(self, reply: bytes, interval: float = 1.0) -> None:
        self.reply = reply
        self.interval = interval
        self.connected = threading.Event()
        self.finished = threading.Event()  # a client got the whole reply
        self.halt = threading.Event()
        feeder = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                feeder.connected.set()
                try:
                    for byte in feeder.reply:
                        if feeder.halt.wait(feeder.interval):
                            return
                        self.request.sendall(bytes([byte]))
                except OSError:
                    return  # the client hung up
                feeder.finished.set()

        # Not daemon threads: server_close() waits for every connection's thread.
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """Its address as a webhook URL."""
        return f"http://127.0.0.1:{self.port}/hooks/debrief"

    @property
    def smtp_url(self) -> str:
        """Its address as an SMTP_URL."""
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.halt.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
