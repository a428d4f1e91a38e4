"""Channels without a network: the webhook signature, the email's MIME form, the log channel."""

from __future__ import annotations

import logging
import socket
import uuid
from datetime import datetime, timezone

import pytest

from service.agencies.webhook_address import WebhookRules
from service.outbox.service import Attachment, email_payload
from workers.channels import Delivery, DeliveryFailed, LogChannel, SmtpChannel, WebhookChannel, sign_webhook, signature_header
from workers.jobs import backoff

MESSAGE_ID = uuid.UUID("6f1c2a4e-52a1-4a4e-9d7e-0c5a3b1d2e3f")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_matches_the_standard_webhooks_test_vector():
    # The specification's published vector: any Standard Webhooks library verifies our deliveries.
    signature = sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_delivery_without_the_agencys_secret_is_never_sent():
    channel = WebhookChannel(lambda: datetime.now(timezone.utc))
    with pytest.raises(DeliveryFailed, match="no webhook secret"):
        channel.send(Delivery(MESSAGE_ID, "incident.planned", "http://127.0.0.1:9/never", {"type": "x"}))


def answers(*addresses: str):
    """A getaddrinfo that answers these addresses, the first one to the first lookup and the second to later ones."""
    lookups: list[str] = []

    def resolve(host, port, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addresses[min(len(lookups), len(addresses)) - 1], port))]
    return resolve, lookups


def test_a_name_vetted_as_public_is_connected_to_at_that_address_even_if_it_then_resolves_to_loopback():
    resolve, lookups = answers("93.184.215.14", "127.0.0.1")
    connected: list[tuple] = []

    def open_socket(family, sockaddr, timeout):
        connected.append(sockaddr)
        raise ConnectionRefusedError(111, "refused")

    channel = WebhookChannel(lambda: datetime.now(timezone.utc), WebhookRules(), resolve=resolve, open_socket=open_socket)
    with pytest.raises(DeliveryFailed, match="http ConnectionRefusedError") as failed:
        channel.send(Delivery(MESSAGE_ID, "incident.planned", "https://hooks.north.example.org/debrief", {"type": "x"}, (SECRET,)))
    assert lookups == ["hooks.north.example.org"] and connected == [("93.184.215.14", 443)]
    assert not failed.value.permanent  # an unreachable receiver is tried again later


def test_a_name_with_any_address_that_is_not_public_is_refused_for_good_without_a_connection():
    connected: list[tuple] = []
    channel = WebhookChannel(lambda: datetime.now(timezone.utc), WebhookRules(),
                             resolve=lambda host, port, **kwargs: [
                                 (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                                 (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:169.254.169.254", port, 0, 0))],
                             open_socket=lambda *args: connected.append(args))
    with pytest.raises(DeliveryFailed, match=r"webhook address refused: not a public address \(link-local\)") as failed:
        channel.send(Delivery(MESSAGE_ID, "incident.planned", "https://hooks.north.example.org/debrief", {"type": "x"}, (SECRET,)))
    # Why, without the agency's address: it goes into last_error and the log.
    assert failed.value.permanent and connected == [] and "example.org" not in failed.value.reason


def test_two_secrets_give_two_space_separated_signatures():
    first, second = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "A" * 43 + "="
    header = signature_header((first, second), "msg_1", 1614265330, b"{}")
    assert header == f"{sign_webhook(first, 'msg_1', 1614265330, b'{}')} {sign_webhook(second, 'msg_1', 1614265330, b'{}')}"


def test_email_carries_the_stable_message_id_text_html_and_attachment():
    payload = email_payload(subject="Séance de verbalisation", text="Bonjour", html="<p>Bonjour</p>",
                            attachments=[Attachment("invitation.ics", "text/calendar", b"BEGIN:VCALENDAR\r\n")])
    message = SmtpChannel("smtp://127.0.0.1:2525", "Debrief <debrief@example.org>").compose(
        Delivery(MESSAGE_ID, "invitation", "agent@example.org", payload))
    assert message["Message-ID"] == f"<{MESSAGE_ID}@debrief>"
    assert message["Subject"] == "Séance de verbalisation" and message["To"] == "agent@example.org"
    assert message.get_body(("plain",)).get_content().strip() == "Bonjour"
    assert message.get_body(("html",)).get_content().strip() == "<p>Bonjour</p>"
    [attachment] = message.iter_attachments()
    assert attachment.get_content_type() == "text/calendar" and attachment.get_payload(decode=True) == b"BEGIN:VCALENDAR\r\n"


def test_an_email_carries_the_extra_headers_of_its_payload_but_never_replaces_its_own():
    headers = {"List-Unsubscribe": "<https://d.example/r/T/unsubscribe>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
               "To": "someone-else@example.org"}
    payload = email_payload(subject="Invitation", text="Hello", headers=headers)
    message = SmtpChannel("smtp://127.0.0.1:2525", "Debrief <debrief@example.org>").compose(
        Delivery(MESSAGE_ID, "invitation", "agent@example.org", payload))
    assert message["List-Unsubscribe"] == "<https://d.example/r/T/unsubscribe>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_all("To") == ["agent@example.org"]
    assert "headers" not in email_payload(subject="Assignment", text="Hello")


def test_smtp_url_must_be_smtp():
    with pytest.raises(ValueError):
        SmtpChannel("http://127.0.0.1:25", "x@example.org")


def test_the_log_channel_names_the_message_never_the_recipient_or_body(caplog):
    caplog.set_level(logging.INFO, logger="workers.channels")
    LogChannel().send(Delivery(MESSAGE_ID, "offer", "agent@example.org", email_payload(subject="Private", text="Body")))
    assert str(MESSAGE_ID) in caplog.text and "offer" in caplog.text
    assert "agent@example.org" not in caplog.text and "Private" not in caplog.text and "Body" not in caplog.text


def test_backoff_grows_then_stays_at_its_longest():
    waits = [backoff(n).total_seconds() for n in range(1, 8)]
    assert waits[:5] == [60, 300, 1800, 7200, 21600] and waits[5:] == [21600, 21600]
