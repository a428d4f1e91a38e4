"""Email travels encrypted: STARTTLS with authentication, implicit TLS, a private certificate authority.

A real aiosmtpd server with a certificate made for the test by openssl; nothing is mocked.
"""

from __future__ import annotations

import shutil
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import missing_service
from tests.receivers import SmtpSink, free_port, self_signed_certificate
from workers.channels import Delivery, DeliveryFailed, SmtpChannel

USER, PASSWORD = "debrief", "s3cret:with/odd@chars"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (certificate, key)."""
    if shutil.which("openssl") is None:
        missing_service("openssl", FileNotFoundError("openssl"))
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), "localhost", "127.0.0.1")


class TlsSink(SmtpSink):
    """The SMTP sink, noting whether each accepted message came over TLS and who logged in."""

    def __init__(self, *, certificate: tuple[Path, Path], implicit: bool = False, starttls: bool = True) -> None:
        self.messages = []
        self.refuse_rcpt = self.refuse_data = None
        self.attempts = 0
        self.secure: list[bool] = []
        self.logins: list[str] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*map(str, certificate))
        options: dict[str, Any] = {"hostname": "127.0.0.1", "port": free_port(), "authenticator": self.authenticate}
        if implicit:
            # TLS from the first byte: aiosmtpd's STARTTLS bookkeeping does not see it, so AUTH is
            # allowed "without" TLS here, which is TLS all the same.
            options.update(ssl_context=context, auth_require_tls=False)
        elif starttls:
            options.update(tls_context=context, require_starttls=True, auth_required=True)
        else:
            # No TLS offered at all: a client with a password must refuse to go on.
            options.update(auth_required=False, auth_require_tls=True)
        self.controller = Controller(self, **options)

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.secure.append(server.transport.get_extra_info("ssl_object") is not None)
        return await super().handle_DATA(server, session, envelope)


def delivery() -> Delivery:
    return Delivery(message_id=uuid.uuid4(), kind="escalation", recipient="clinician@example.org",
                    payload={"subject": "Clinical follow-up needed", "text": "Contact details inside.", "attachments": []})


def serve(sink: TlsSink):
    sink.controller.start()
    return sink


def url(scheme: str, port: int, *, user: str | None = USER, password: str = PASSWORD) -> str:
    from urllib.parse import quote

    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return f"{scheme}://{credentials}localhost:{port}"


def test_credentials_go_over_starttls_to_a_server_of_a_private_authority(certificate):
    sink = serve(TlsSink(certificate=certificate))
    try:
        SmtpChannel(url("smtp", sink.controller.port), "Debrief <debrief@example.org>", ca_file=str(certificate[0])).send(delivery())
        assert len(sink.messages) == 1 and sink.secure == [True] and sink.logins == [USER]
    finally:
        sink.controller.stop()


def test_implicit_tls_with_smtps(certificate):
    sink = serve(TlsSink(certificate=certificate, implicit=True))
    try:
        SmtpChannel(url("smtps", sink.controller.port), "Debrief <debrief@example.org>", ca_file=str(certificate[0])).send(delivery())
        assert len(sink.messages) == 1 and sink.secure == [True] and sink.logins == [USER]
    finally:
        sink.controller.stop()


def test_a_server_that_offers_no_starttls_never_sees_the_password(certificate):
    sink = serve(TlsSink(certificate=certificate, starttls=False))
    try:
        with pytest.raises(DeliveryFailed, match="no STARTTLS"):
            SmtpChannel(url("smtp", sink.controller.port), "x@example.org", ca_file=str(certificate[0])).send(delivery())
        assert sink.messages == [] and sink.logins == []
    finally:
        sink.controller.stop()


def test_a_certificate_of_an_unknown_authority_is_refused(certificate):
    sink = serve(TlsSink(certificate=certificate))
    try:
        with pytest.raises(DeliveryFailed, match="SSLCertVerificationError"):
            SmtpChannel(url("smtp", sink.controller.port), "x@example.org").send(delivery())
        assert sink.messages == [] and sink.logins == []
    finally:
        sink.controller.stop()


def test_a_wrong_password_is_a_failed_attempt_without_the_servers_words(certificate):
    sink = serve(TlsSink(certificate=certificate))
    try:
        with pytest.raises(DeliveryFailed) as failed:
            SmtpChannel(url("smtp", sink.controller.port, password="wrong"), "x@example.org",
                        ca_file=str(certificate[0])).send(delivery())
        assert failed.value.reason == "smtp 535"
        assert sink.messages == []
    finally:
        sink.controller.stop()


def test_smtp_url_schemes():
    assert SmtpChannel("smtps://mail.example.org", "x@example.org").port == 465
    channel = SmtpChannel("smtp://a%40b:p%3Ass@mail.example.org:587", "x@example.org")
    assert (channel.username, channel.password, channel.starttls) == ("a@b", "p:ss", True)
    assert SmtpChannel("smtp://127.0.0.1:1025", "x@example.org").starttls is False
    with pytest.raises(ValueError):
        SmtpChannel("http://mail.example.org", "x@example.org")
