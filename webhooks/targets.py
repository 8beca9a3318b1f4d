"""Which URLs a webhook may target: the server must not be turned into a way
to reach what sits behind it (SSRF).

A target is https (http only when ``[webhooks] allow_http`` says so), with a
host and no credentials; an address it names or resolves to must be a public
one (not loopback, private, link-local, shared, multicast, reserved or a cloud
metadata address) unless ``[webhooks] allowed_networks`` lists it.  The check
of names is made again on every delivery, on the addresses actually
connected to (``webhooks.delivery``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL = 2000


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
        """Whether the server may connect to this address."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed_networks):
            return True
        return ip.is_global and not ip.is_multicast

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
