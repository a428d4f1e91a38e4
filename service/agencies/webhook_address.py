"""Which webhook addresses Debrief posts to: public internet hosts only, vetted when set and again at delivery.

An agency's `webhook_url` is typed by a person and then fetched by our workers, inside our network:
left unchecked it reaches the cloud's metadata service (169.254.169.254), Redis on localhost:6379 or
any host behind the firewall. So an address must name, and resolve only to, global unicast
addresses; every spelling of an IP that getaddrinfo accepts (`0x7f000001`, `2130706433`, `127.1`,
`0177.0.0.1`, `[::ffff:127.0.0.1]`) is read as getaddrinfo reads it. When the URL is set, a literal
address and names that are local by nature are refused, and a name is resolved if it can be (DNS
changes, so a name that does not resolve yet is accepted); at delivery the name is resolved again,
vetted, and the connection goes to the very addresses vetted, never to a second lookup's answer
(DNS rebinding).

Plain http is for the embedded default only (a SQLite file and no REDIS_URL: one machine, often a
trial); a deployment posts over https. WEBHOOK_ALLOW_PRIVATE_TARGETS lets loopback and private
receivers, over http too, through: for tests and closed networks, off by default.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from service.config import Config

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# getaddrinfo's signature; injected by tests (a resolver that changes its answer between calls).
Resolver = Callable[..., list[tuple[Any, ...]]]
# (family, sockaddr) pairs, as getaddrinfo gives them.
Addresses = list[tuple[socket.AddressFamily, tuple[Any, ...]]]

# Names that are local by nature: RFC 6761 (localhost), RFC 6762 (.local, mDNS), RFC 8375 (home.arpa),
# ICANN's private-use .internal, and the localdomain of many hosts files. A name without a dot is
# looked up in the hosts file and the search domains, so it is local too (`redis`, `db`, `ip6-localhost`).
LOCAL_SUFFIXES = ("localhost", "localdomain", "local", "internal", "home.arpa")
# RFC 6052's well-known NAT64 prefix: a public IPv4 host seen from an IPv6-only network.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class RefusedAddress(ValueError):
    """A webhook address Debrief will not post to; `reason` says why, `kind` in a few words without the address."""

    def __init__(self, reason: str, kind: str = "not a valid https address") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True, slots=True)
class WebhookRules:
    """What this deployment lets through: plain http, and loopback or private receivers."""

    allow_http: bool = False
    allow_private: bool = False

    @classmethod
    def of(cls, config: Config) -> "WebhookRules":
        """The rules of a configuration: http in the embedded default, everything with the explicit setting."""
        allow_private = config.webhook_allow_private_targets
        return cls(allow_http=allow_private or config.embedded, allow_private=allow_private)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where a delivery goes: the URL's host name (for Host and TLS) and the addresses vetted for it."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[tuple[socket.AddressFamily, tuple[Any, ...]], ...]  # in getaddrinfo's order


def not_public(address: IPAddress) -> str | None:
    """Why an address is not global unicast (loopback, private, link-local, ...), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one reaches that IPv4 host: judge the host.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return not_public(embedded)
        if address.is_site_local:
            return "site-local"
    for kind, test in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                       ("private", address.is_private), ("reserved", address.is_reserved),
                       ("not globally routable", not address.is_global)):
        if test:
            return kind
    return None


def _parse(url: str, rules: WebhookRules) -> tuple[str, str, int, str]:
    """The scheme, ASCII host name, port and request target of a webhook URL, or RefusedAddress."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedAddress("The address is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and rules.allow_http):
        raise RefusedAddress("Webhooks are posted over https only: the address must start with https://.")
    if not parts.hostname:
        raise RefusedAddress("The address has no host.")
    try:
        # IDNA, as getaddrinfo and TLS's server name would read the name anyway.
        host = parts.hostname.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise RefusedAddress("The address's host is not a valid host name.") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _numeric(host: str, port: int) -> Addresses | None:
    """The address a host names by itself, in any spelling getaddrinfo takes as numeric (never asking DNS)."""
    try:
        return _distinct(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST))
    except (socket.gaierror, UnicodeError, ValueError):
        return None


def _distinct(answers: list[tuple[Any, ...]]) -> Addresses:
    return list(dict.fromkeys((family, sockaddr) for family, _type, _proto, _name, sockaddr in answers))


def _vet_name(host: str, rules: WebhookRules) -> None:
    local = "." not in host or any(host == suffix or host.endswith("." + suffix) for suffix in LOCAL_SUFFIXES)
    if local and not rules.allow_private:
        raise RefusedAddress(f"The host {host} is a local name, not a public one: webhooks go to public receivers only.",
                             kind="a local name")


def _vet(host: str, addresses: Addresses, rules: WebhookRules, *, literal: bool) -> None:
    for _family, sockaddr in addresses:
        # A scope id (`fe80::1%eth0`) is not part of the address.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        kind = None if rules.allow_private else not_public(address)
        if kind is not None:
            named = "is" if literal else f"resolves to {address}, which is"
            raise RefusedAddress(f"The host {host} {named} not a public internet address ({kind}): "
                                 "webhooks go to public receivers only.", kind=f"not a public address ({kind})")


def check_webhook_url(url: str, rules: WebhookRules, *, resolve: Resolver = socket.getaddrinfo) -> None:
    """Refuse (RefusedAddress) a webhook URL being set that cannot be delivered to; a name not resolving yet is fine."""
    try:
        webhook_target(url, rules, resolve=resolve)
    except OSError:
        pass  # DNS may not know the name yet: each delivery resolves and vets it again


def webhook_target(url: str, rules: WebhookRules, *, resolve: Resolver = socket.getaddrinfo) -> WebhookTarget:
    """Resolve a webhook URL once and vet every address; RefusedAddress if any is not allowed.

    A name that does not resolve raises OSError (socket.gaierror): a reason to try again later.
    """
    scheme, host, port, path = _parse(url, rules)
    addresses = _numeric(host, port)
    if addresses is not None:
        _vet(host, addresses, rules, literal=True)
    else:
        _vet_name(host, rules)
        addresses = _distinct(resolve(host, port, type=socket.SOCK_STREAM))
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no address")
        _vet(host, addresses, rules, literal=False)
    return WebhookTarget(scheme, host, port, path, tuple(addresses))
