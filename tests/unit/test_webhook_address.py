"""Which webhook addresses are refused, in every spelling, when set and at delivery (no network: resolvers are fakes)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from service.agencies.webhook_address import RefusedAddress, WebhookRules, check_webhook_url, not_public, webhook_target
from service.config import Config

DEPLOYED = WebhookRules()  # https only, public receivers only
EMBEDDED = WebhookRules(allow_http=True)
PRIVATE_ALLOWED = WebhookRules(allow_http=True, allow_private=True)


def resolver(*answers: str, calls: list[str] | None = None):
    """A getaddrinfo that answers these addresses (in order) for any name, and notes each lookup."""
    def resolve(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in answers]
    return resolve


def no_such_name(host, port, *args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


# Loopback, private, link-local, multicast, reserved and unspecified addresses as the address bar of an
# attacker would spell them: every one of them is a literal getaddrinfo reads without asking DNS.
REFUSED_LITERALS = [
    "https://127.0.0.1/", "https://127.0.0.1:6379/", "https://127.1/", "https://0x7f000001/", "https://2130706433/",
    "https://0177.0.0.1/", "https://0x7f.0.0.1/", "https://017700000001/", "https://0/", "https://0.0.0.0/",
    "https://169.254.169.254/latest/meta-data/", "https://10.0.0.8/", "https://172.16.3.4/", "https://192.168.1.1/",
    "https://100.64.0.1/", "https://224.0.0.251/", "https://255.255.255.255/", "https://240.0.0.1/", "https://192.0.2.10/",
    "https://[::1]/", "https://[::]/", "https://[0:0:0:0:0:0:0:1]/", "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/", "https://[::ffff:169.254.169.254]/", "https://[::127.0.0.1]/", "https://[fe80::1]/",
    "https://[fc00::1]/", "https://[fd12:3456::1]/", "https://[fec0::1]/", "https://[ff02::1]/", "https://[2001:db8::1]/",
    "https://[2002:7f00:1::]/", "https://[2002:a9fe:a9fe::1]/", "https://[64:ff9b::7f00:1]/", "https://[64:ff9b::a00:1]/",
]
LOCAL_NAMES = ["https://localhost/", "https://localhost:6379/", "https://LOCALHOST./", "https://api.localhost/",
               "https://redis:6379/", "https://ip6-localhost/", "https://printer.local/", "https://db.internal/",
               "https://nas.home.arpa/", "https://box.localdomain/"]


@pytest.mark.parametrize("url", REFUSED_LITERALS)
def test_a_literal_address_that_is_not_public_is_refused_in_every_spelling(url):
    with pytest.raises(RefusedAddress, match="not a public internet address"):
        check_webhook_url(url, DEPLOYED, resolve=no_such_name)
    # and at delivery, whatever the resolver would say about it
    with pytest.raises(RefusedAddress, match="not a public internet address"):
        webhook_target(url, DEPLOYED)


@pytest.mark.parametrize("url", LOCAL_NAMES)
def test_a_name_that_is_local_by_nature_is_refused_before_any_lookup(url):
    calls: list[str] = []
    with pytest.raises(RefusedAddress, match="local name"):
        check_webhook_url(url, DEPLOYED, resolve=resolver("93.184.215.14", calls=calls))
    with pytest.raises(RefusedAddress, match="local name"):
        webhook_target(url, DEPLOYED, resolve=resolver("93.184.215.14", calls=calls))
    assert calls == []


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::", "loopback"),
    ("64:ff9b::7f00:1", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.1.2.3", "private"), ("fd00::1", "private"), ("fec0::1", "site-local"), ("224.0.0.1", "multicast"),
    ("ff0e::1", "multicast"), ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("100.64.0.1", "not globally routable"),
    ("8.8.8.8", None), ("2606:4700:4700::1111", None), ("::ffff:8.8.8.8", None), ("64:ff9b::808:808", None),
    ("2002:808:808::1", None),
])
def test_why_an_address_is_not_public(address, why):
    assert not_public(ipaddress.ip_address(address)) == why


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public():
    rebinding = resolver("93.184.215.14", "127.0.0.1")
    with pytest.raises(RefusedAddress, match=r"resolves to 127\.0\.0\.1, which is not a public internet address \(loopback\)"):
        check_webhook_url("https://hooks.north.example.org/debrief", DEPLOYED, resolve=rebinding)
    with pytest.raises(RefusedAddress, match="loopback"):
        webhook_target("https://hooks.north.example.org/debrief", DEPLOYED, resolve=rebinding)
    with pytest.raises(RefusedAddress, match="link-local"):
        webhook_target("https://hooks.north.example.org/debrief", DEPLOYED, resolve=resolver("fe80::1"))


def test_a_name_that_does_not_resolve_yet_may_be_set_but_is_not_delivered_to():
    check_webhook_url("https://hooks.north.example.org/debrief", DEPLOYED, resolve=no_such_name)
    with pytest.raises(socket.gaierror):
        webhook_target("https://hooks.north.example.org/debrief", DEPLOYED, resolve=no_such_name)


def test_a_public_receiver_is_resolved_once_and_delivered_to_at_the_addresses_vetted():
    calls: list[str] = []
    target = webhook_target("https://hooks.north.example.org/debrief?agency=north", DEPLOYED,
                            resolve=resolver("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", calls=calls))
    assert calls == ["hooks.north.example.org"]
    assert (target.scheme, target.host, target.port, target.path) == ("https", "hooks.north.example.org", 443,
                                                                       "/debrief?agency=north")
    assert [sockaddr[0] for _family, sockaddr in target.addresses] == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    # International names travel as IDNA, as DNS and TLS read them.
    assert webhook_target("https://café.example.org/", DEPLOYED, resolve=resolver("93.184.215.14")).host == "xn--caf-dma.example.org"


def test_plain_http_only_in_the_embedded_default_or_with_the_explicit_setting():
    with pytest.raises(RefusedAddress, match="https only"):
        check_webhook_url("http://hooks.north.example.org/debrief", DEPLOYED, resolve=no_such_name)
    check_webhook_url("http://hooks.north.example.org/debrief", EMBEDDED, resolve=no_such_name)
    with pytest.raises(RefusedAddress, match="loopback"):
        check_webhook_url("http://127.0.0.1:8080/hooks", EMBEDDED)
    check_webhook_url("http://127.0.0.1:8080/hooks", PRIVATE_ALLOWED)
    check_webhook_url("http://localhost:8080/hooks", PRIVATE_ALLOWED, resolve=resolver("127.0.0.1"))
    assert webhook_target("http://[::1]:8080/h", PRIVATE_ALLOWED).addresses[0][1][0] == "::1"


def test_the_rules_of_a_configuration():
    assert not Config.from_env({}).webhook_allow_private_targets
    assert Config.from_env({"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}).webhook_allow_private_targets
    assert not Config.from_env({"WEBHOOK_ALLOW_PRIVATE_TARGETS": "false"}).webhook_allow_private_targets
    # The embedded default (a SQLite file, no Redis) may post over http; a deployment posts over https.
    assert WebhookRules.of(Config()) == EMBEDDED
    assert WebhookRules.of(Config(redis_url="redis://redis:6379/0")) == DEPLOYED
    assert WebhookRules.of(Config(database_url="postgresql+psycopg://debrief@db/debrief")) == DEPLOYED
    assert WebhookRules.of(Config(database_url="postgresql+psycopg://db/d", webhook_allow_private_targets=True)) == PRIVATE_ALLOWED
