"""Which URLs a webhook may target: the server must not be turned into a way
to reach what sits behind it (SSRF).

A target is https (http only when ``[webhooks] allow_http`` says so), with a
host and no credentials; an address it names or resolves to must be a public
one (not loopback, private, link-local, shared, multicast, reserved or a cloud
metadata address) unless ``[webhooks] allowed_networks`` lists it.  The check
of names is made again on every delivery, on the addresses actually
connected to (``webhooks.delivery``).

``ipaddress.is_global`` alone is not enough (and differs between Python
versions): it calls ``192.0.0.9``, ``::127.0.0.1``, ``64:ff9b:1::a00:1`` or
``2002:a00:1::`` global.  So an IPv6 address that carries an IPv4 one
(IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``)
is judged by the IPv4 address it reaches, and the special-purpose blocks of
the IANA registries are refused by name (``NOT_PUBLIC``), IPv4-compatible
``::a.b.c.d``, local NAT64 and Teredo among them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL = 2000
# Special-purpose blocks (IANA's IPv4 and IPv6 registries) that do not lead
# to a public host, whatever ``is_global`` says of them.
NOT_PUBLIC: tuple[Network, ...] = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 reaches the local host
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments (192.0.0.9, .10 included)
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/96",  # unspecified, loopback and IPv4-compatible ::a.b.c.d
        "::ffff:0:0:0/96",  # IPv4-translated
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo 2001::/32 included
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(ValueError):
    """A target the server will not send to; the message says why."""


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Parse ``allowed_networks`` (addresses or CIDR blocks); ValueError names a bad one."""
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry.strip()!r} is not an address or a network") from None
    return tuple(found)


@dataclass(frozen=True)
class TargetPolicy:
    allow_http: bool = False
    allowed_networks: tuple[Network, ...] = ()

    def address_allowed(self, address: str) -> bool:
        """Whether the server may connect to this address: a public one, or
        one the allowlist names (as written or as the IPv4 address it carries)."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        reached = _reached(ip)
        if any(a in network for a in (ip, *reached) for network in self.allowed_networks):
            return True
        return all(_public(a) for a in reached)

    def check_url(self, url: str) -> str:
        """The URL if the server may target it (its host's addresses are
        checked when it is delivered to); TargetRefused otherwise."""
        if len(url) > MAX_URL:
            raise TargetRefused(f"a target URL has at most {MAX_URL} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise TargetRefused("the target is not a valid URL") from None
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise TargetRefused(
                "the target URL must start with https://"
                if not self.allow_http
                else "the target URL must be http:// or https://"
            )
        if not parts.hostname:
            raise TargetRefused("the target URL names no host")
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("the target URL may not carry credentials")
        if port == 0:
            raise TargetRefused("the target URL's port is not valid")
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            return url
        if not self.address_allowed(str(literal)):
            raise TargetRefused(
                f"the target address {literal} is not public (loopback, private, link-local "
                "or reserved); allow it in [webhooks] allowed_networks if it must be reached"
            )
        return url


def _reached(ip: Address) -> list[Address]:
    """The addresses a connection to ``ip`` leads to: an IPv4-mapped or NAT64
    address is only a way to write the IPv4 one it carries; a 6to4 address
    is itself and the IPv4 host it embeds."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip, ip.sixtofour]
    return [ip]


def _public(ip: Address) -> bool:
    """Whether an address leads to a host on the public internet."""
    if any(ip in block for block in NOT_PUBLIC if block.version == ip.version):
        return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_reserved
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
    )
