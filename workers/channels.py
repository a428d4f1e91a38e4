"""Notification channels: email over SMTP (or a log when SMTP is not configured) and signed webhooks.

Delivery is at least once: a worker may die after the receiver accepted a message and before
the outbox row says `sent`, and then the message goes out again. Every delivery therefore
carries the outbox id as a stable message id, for receivers to de-duplicate on:
the email `Message-ID: <{id}@debrief>` and the webhook `webhook-id: {id}` header.

Failures raise `DeliveryFailed` with a reason free of personal data (a status code, an
exception's type): receivers' error texts often quote the address, so they are not kept.

Every attempt has a wall-clock deadline (DELIVERY_DEADLINE_SECONDS). A socket's timeout bounds
each read or write, not the attempt: a receiver sending a byte just before each timeout would
hold an attempt, and the worker or lane running it, for as long as it liked. The sockets of an
attempt therefore wait, at each operation, only for the time left before its deadline.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import socket
import ssl
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Callable, Iterator, Mapping, Protocol
from urllib.parse import unquote, urlsplit

from service.agencies.webhook_address import RefusedAddress, Resolver, WebhookRules, WebhookTarget, webhook_target
from service.config import DEFAULT_DELIVERY_DEADLINE_SECONDS, Config
from service.outbox.models import EMAIL, WEBHOOK
from service.outbox.service import attachments_of

log = logging.getLogger("workers.channels")

WEBHOOK_SECRET_PREFIX = "whsec_"


class DeliveryFailed(Exception):
    """The receiver did not take the message; `reason` carries no personal data.

    `permanent`: trying again cannot help (a refused webhook address), so the message dies at once.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class DeadlinePassed(TimeoutError):
    """The attempt's deadline passed before the receiver was done."""


class Deadline:
    """The wall-clock end of one delivery attempt."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def left(self) -> float:
        """The seconds left; DeadlinePassed when none are."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise DeadlinePassed(f"no answer within {self.seconds:g} s")
        return left

    @property
    def passed(self) -> bool:
        """Whether the attempt has run out of time."""
        return time.monotonic() >= self.ends

    def failure(self, protocol: str, exc: BaseException) -> DeliveryFailed:
        """The failure of an attempt that raised `exc`: timed out once the deadline has passed."""
        if self.passed:
            return DeliveryFailed(f"{protocol} timed out after {self.seconds:g} s")
        # ssl.SSLError (a certificate refused) is an OSError: its type, never its text.
        return DeliveryFailed(f"{protocol} {type(exc).__name__}")


# The deadline of the attempt running in this thread; the sockets it opens wait only until then.
_attempt: ContextVar[Deadline | None] = ContextVar("delivery_attempt", default=None)


@contextmanager
def attempt(seconds: float) -> Iterator[Deadline]:
    """Run a delivery attempt: the sockets opened within may wait `seconds` in all, not per operation."""
    deadline = Deadline(seconds)
    token = _attempt.set(deadline)
    try:
        yield deadline
    finally:
        _attempt.reset(token)


class _WithinDeadline:
    """Socket operations that each wait only for the time left before the current attempt's deadline."""

    __slots__ = ()

    def _shrink_timeout(self) -> None:
        deadline = _attempt.get()
        if deadline is not None:
            self.settimeout(deadline.left())  # type: ignore[attr-defined]

    def recv(self, *args: Any) -> bytes:
        self._shrink_timeout()
        return super().recv(*args)  # type: ignore[misc]

    def recv_into(self, *args: Any) -> int:
        self._shrink_timeout()
        return super().recv_into(*args)  # type: ignore[misc]

    def send(self, *args: Any) -> int:
        self._shrink_timeout()
        return super().send(*args)  # type: ignore[misc]

    def sendall(self, *args: Any) -> None:
        self._shrink_timeout()
        return super().sendall(*args)  # type: ignore[misc]


class _DeadlineSocket(_WithinDeadline, socket.socket):
    """A TCP socket of a delivery attempt."""


class _DeadlineSSLSocket(_WithinDeadline, ssl.SSLSocket):
    """A TLS socket of a delivery attempt, the handshake included (SSLContext.sslsocket_class)."""

    def do_handshake(self, *args: Any) -> None:
        self._shrink_timeout()
        super().do_handshake(*args)


def deadline_tls(cafile: str | None = None) -> ssl.SSLContext:
    """The default client TLS context (certificate and host name checked), its sockets within the attempt's deadline."""
    context = ssl.create_default_context(cafile=cafile)
    context.sslsocket_class = _DeadlineSSLSocket
    return context


def _connect(address: tuple[str, int], timeout: float | None = None,
             source_address: tuple[str, int] | None = None) -> socket.socket:
    """socket.create_connection within the current attempt's deadline, as a socket that keeps to it."""
    deadline = _attempt.get()
    timeout = deadline.left() if deadline is not None else timeout
    connected = socket.create_connection(address, timeout, source_address)
    sock = _DeadlineSocket(connected.family, connected.type, connected.proto, fileno=connected.detach())
    sock.settimeout(timeout)
    return sock


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message on its way out: the outbox row's content."""

    message_id: uuid.UUID
    kind: str
    recipient: str
    payload: Mapping[str, Any]
    # A webhook's signing secrets: the agency's own (two while a rotation overlaps), read when the message is claimed.
    secrets: tuple[str, ...] = ()


class Channel(Protocol):
    """Sends a delivery or raises DeliveryFailed."""

    def send(self, delivery: Delivery) -> None: ...


@functools.cache
def local_hostname() -> str:
    """This host's name for SMTP's EHLO, looked up once (smtplib would look it up per connection)."""
    return socket.getfqdn()


def message_id_header(message_id: uuid.UUID) -> str:
    """The email Message-ID of an outbox message: stable across re-deliveries."""
    return f"<{message_id}@debrief>"


class SmtpChannel:
    """Email through an SMTP relay: plain text with an optional HTML alternative and attachments."""

    def __init__(self, smtp_url: str, mail_from: str, *, deadline: float = DEFAULT_DELIVERY_DEADLINE_SECONDS,
                 ca_file: str | None = None) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://host:port, smtp://user:password@host:587 or smtps://host:465")
        self.host = parts.hostname
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        # Credentials never travel in clear: with them, smtp:// requires STARTTLS.
        self.starttls = not self.implicit_tls and self.username is not None
        self.ca_file = ca_file
        self.mail_from = mail_from
        self.deadline = deadline

    @functools.cached_property
    def tls(self) -> ssl.SSLContext:
        """Certificate and host name checked, against SMTP_CA_FILE when given (a private authority)."""
        return deadline_tls(self.ca_file)

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return _DeadlineSMTPSSL(self.host, self.port, timeout=self.deadline, local_hostname=local_hostname(),
                                    context=self.tls)
        return _DeadlineSMTP(self.host, self.port, timeout=self.deadline, local_hostname=local_hostname())

    def compose(self, delivery: Delivery) -> EmailMessage:
        """The MIME message of a delivery."""
        payload = delivery.payload
        message = EmailMessage()
        message["Message-ID"] = message_id_header(delivery.message_id)
        message["From"] = self.mail_from
        message["To"] = delivery.recipient
        message["Subject"] = payload["subject"]
        for name, value in (payload.get("headers") or {}).items():
            # Extra headers (List-Unsubscribe...) never replace the ones set above.
            if name not in message:
                message[name] = value
        message.set_content(payload["text"])
        if payload.get("html"):
            message.add_alternative(payload["html"], subtype="html")
        for attachment in attachments_of(dict(payload)):
            maintype, _, subtype = attachment.content_type.partition("/")
            message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
        return message

    def send(self, delivery: Delivery) -> None:
        """Hand the message to the SMTP server; any refusal is a DeliveryFailed."""
        message = self.compose(delivery)
        with attempt(self.deadline) as deadline:
            try:
                with self._connect() as smtp:
                    if self.starttls:
                        smtp.ehlo()
                        if not smtp.has_extn("starttls"):
                            # Refuse rather than send a password (and health data) in clear.
                            raise DeliveryFailed("smtp server offers no STARTTLS")
                        smtp.starttls(context=self.tls)
                        smtp.ehlo()
                    if self.username is not None:
                        smtp.login(self.username, self.password)
                    smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = sorted({code for code, _text in exc.recipients.values()})
                raise DeliveryFailed(f"smtp recipient refused {codes}") from None
            except smtplib.SMTPResponseException as exc:
                raise DeliveryFailed(f"smtp {exc.smtp_code}") from None
            except (smtplib.SMTPException, OSError) as exc:
                raise deadline.failure("smtp", exc) from None


class _DeadlineSMTP(smtplib.SMTP):
    """smtplib's client, its socket within the attempt's deadline."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return _connect((host, port), timeout, self.source_address)


class _DeadlineSMTPSSL(smtplib.SMTP_SSL, _DeadlineSMTP):
    """smtplib's implicit-TLS client, its socket within the attempt's deadline (the TLS context's sockets too)."""


class LogChannel:
    """Without SMTP_URL: note that a message would have gone out (its id and kind, nothing else)."""

    def send(self, delivery: Delivery) -> None:
        """Log the message id and kind."""
        log.info("message %s (%s) logged, not sent: SMTP_URL is not set", delivery.message_id, delivery.kind)


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_` + base64)."""
    return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)


def sign_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value per Standard Webhooks (v1, HMAC-SHA256)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets: tuple[str, ...], message_id: str, timestamp: int, body: bytes) -> str:
    """One signature per secret, space-separated, as Standard Webhooks allows: a receiver accepts any that it can check."""
    return " ".join(sign_webhook(secret, message_id, timestamp, body) for secret in secrets)


Connector = Callable[[socket.AddressFamily, tuple[Any, ...], float], socket.socket]


def open_socket(family: socket.AddressFamily, sockaddr: tuple[Any, ...], timeout: float) -> socket.socket:
    """A TCP connection to one address exactly as given (no name to resolve), within the attempt's deadline."""
    sock = _DeadlineSocket(family, socket.SOCK_STREAM)
    try:
        deadline = _attempt.get()
        sock.settimeout(deadline.left() if deadline is not None else timeout)
        sock.connect(sockaddr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does: no Nagle delay
    except BaseException:
        sock.close()
        raise
    return sock


class PinnedConnection(http.client.HTTPConnection):
    """HTTP, or HTTPS with `tls`, to addresses vetted beforehand: no second DNS lookup (rebinding) on connect.

    Host header, TLS server name and certificate check all use the URL's host name.
    """

    def __init__(self, target: WebhookTarget, *, timeout: float, tls: ssl.SSLContext | None,
                 open_socket: Connector = open_socket) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.addresses = target.addresses
        self.tls = tls
        self.open_socket = open_socket
        # The Host header names the port only when it is not the scheme's own.
        self.default_port = 443 if tls is not None else 80

    def connect(self) -> None:
        """Connect to the first vetted address that answers, then start TLS on the URL's host name."""
        error: OSError = ConnectionError("no address")
        for family, sockaddr in self.addresses:
            try:
                sock = self.open_socket(family, sockaddr, self.timeout)
            except OSError as exc:
                error = exc
                continue
            try:
                self.sock = self.tls.wrap_socket(sock, server_hostname=self.host) if self.tls is not None else sock
            except BaseException:
                sock.close()
                raise
            return
        raise error


class WebhookChannel:
    """A JSON POST signed per Standard Webhooks; any answer but 2xx is a failure, a redirect too.

    Signed with the agency's own secrets, carried by the delivery, and never with a shared one: a
    secret known to several agencies' receivers would let each forge events to the others. Posted
    only to the addresses the URL's host resolves to once, vetted (service.agencies.webhook_address):
    a refused address is a permanent failure.
    """

    def __init__(self, clock: Callable[[], datetime], rules: WebhookRules = WebhookRules(), *,
                 deadline: float = DEFAULT_DELIVERY_DEADLINE_SECONDS, resolve: Resolver = socket.getaddrinfo,
                 open_socket: Connector = open_socket) -> None:
        self.clock = clock
        self.rules = rules
        self.deadline = deadline
        # Injected by tests: a resolver whose answer changes between calls, a connector that records where it goes.
        self.resolve = resolve
        self.open_socket = open_socket

    @functools.cached_property
    def tls(self) -> ssl.SSLContext:
        """Certificate and host name checked against the system's authorities, within the attempt's deadline."""
        tls = deadline_tls()
        tls.set_alpn_protocols(["http/1.1"])  # as urllib's own context does
        return tls

    def send(self, delivery: Delivery) -> None:
        """POST the payload with the webhook-id, webhook-timestamp and webhook-signature headers."""
        if not delivery.secrets:
            raise DeliveryFailed("the agency has no webhook secret")
        try:
            target = webhook_target(delivery.recipient, self.rules, resolve=self.resolve)
        except RefusedAddress as refused:
            # Its kind only: the address is the agency's and never goes into last_error or the log.
            raise DeliveryFailed(f"webhook address refused: {refused.kind}", permanent=True) from None
        except OSError as exc:
            raise DeliveryFailed(f"http {type(exc).__name__}") from None
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        message_id = str(delivery.message_id)
        timestamp = int(self.clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(delivery.secrets, message_id, timestamp, body),
        }
        connection = PinnedConnection(target, timeout=self.deadline, tls=self.tls if target.scheme == "https" else None,
                                      open_socket=self.open_socket)
        with attempt(self.deadline) as deadline:
            try:
                connection.request("POST", target.path, body=body, headers=headers)
                with connection.getresponse() as response:
                    status = response.status
            except (http.client.HTTPException, OSError, ValueError) as exc:
                raise deadline.failure("http", exc) from None
            finally:
                connection.close()
        if not 200 <= status < 300:
            # A redirect is not followed: its target was never vetted (and the POST would lose its body).
            raise DeliveryFailed(f"http {status}")


def channels_for(config: Config, clock: Callable[[], datetime]) -> dict[str, Channel]:
    """The channel of each outbox channel name, as configured."""
    deadline = config.delivery_deadline_seconds
    email: Channel = (SmtpChannel(config.smtp_url, config.mail_from, deadline=deadline, ca_file=config.smtp_ca_file)
                      if config.smtp_url else LogChannel())
    return {EMAIL: email, WEBHOOK: WebhookChannel(clock, WebhookRules.of(config), deadline=deadline)}
