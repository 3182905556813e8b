"""Which resolved addresses a proxied connection may reach.

An allowed name can still resolve to the host's own loopback, the local network or a cloud metadata
service (by accident, by a hostile DNS answer, or by rebinding between two look-ups). The proxy checks
every address it is about to connect to with `refusal_reason`, and connects to that checked address
itself: nothing is looked up twice, so a second DNS answer cannot change where the bytes go.

Special addresses are refused unless that exact address is explicitly allowed. IPv6 forms that carry
an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, NAT64, Teredo) are judged by the IPv4 address
they carry, as well as by the IPv6 range they sit in.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from boundary.hosts import IPAddress, canonical_address

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _table(entries: dict[str, str]) -> list[tuple[_Network, str]]:
    return [(ipaddress.ip_network(network), reason) for network, reason in entries.items()]


# Most specific first: the first network that contains an address names its reason.
_IPV4_SPECIAL = _table(
    {
        "169.254.169.254/32": "cloud metadata service",
        "169.254.170.2/32": "cloud metadata service",
        "168.63.129.16/32": "cloud metadata service",
        "100.100.100.200/32": "cloud metadata service",
        "0.0.0.0/8": "unspecified ('this network')",
        "10.0.0.0/8": "private",
        "100.64.0.0/10": "carrier-grade NAT (shared address space)",
        "127.0.0.0/8": "loopback",
        "169.254.0.0/16": "link-local",
        "172.16.0.0/12": "private",
        "192.0.0.0/24": "reserved (IETF protocol assignments)",
        "192.0.2.0/24": "reserved (documentation)",
        "192.88.99.0/24": "reserved (6to4 relay anycast)",
        "192.168.0.0/16": "private",
        "198.18.0.0/15": "reserved (benchmarking)",
        "198.51.100.0/24": "reserved (documentation)",
        "203.0.113.0/24": "reserved (documentation)",
        "224.0.0.0/4": "multicast",
        "240.0.0.0/4": "reserved",
    }
)

_IPV6_SPECIAL = _table(
    {
        "fd00:ec2::254/128": "cloud metadata service",
        "::/128": "unspecified",
        "::1/128": "loopback",
        "64:ff9b:1::/48": "reserved (local-use NAT64)",
        "100::/64": "reserved (discard-only)",
        "2001::/23": "reserved (IETF protocol assignments, including Teredo)",
        "2001:db8::/32": "reserved (documentation)",
        "3fff::/20": "reserved (documentation)",
        "5f00::/16": "reserved (segment routing)",
        "fc00::/7": "private (unique local)",
        "fe80::/10": "link-local",
        "fec0::/10": "reserved (site-local)",
        "ff00::/8": "multicast",
    }
)

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries, with the name of the form, or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.teredo is not None:
        return address.teredo[1], "Teredo"
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible"
    return None


def special_range(address: IPAddress) -> str | None:
    """Why `address` is not an ordinary public address (e.g. ``loopback``), or None if it is one."""
    if isinstance(address, ipaddress.IPv4Address):
        for network, reason in _IPV4_SPECIAL:
            if address in network:
                return reason
        return None if address.is_global else "special-purpose"
    embedded = embedded_ipv4(address)
    if embedded is not None:
        inner, form = embedded
        inner_reason = special_range(inner)
        if inner_reason is not None:
            return f"{inner_reason} ({inner} in {form} form)"
    for network, reason in _IPV6_SPECIAL:
        if address in network:
            return reason
    if embedded is not None:
        return None
    if address not in _GLOBAL_UNICAST_V6:
        return "reserved (outside global unicast)"
    return None


def refusal_reason(
    address: IPAddress,
    is_explicitly_allowed: Callable[[IPAddress], bool] | None = None,
) -> str | None:
    """Why the proxy must not connect to `address`, or None when it may.

    A special address passes only when `is_explicitly_allowed` says so for that exact address (checked
    in canonical form: an IPv4-mapped address counts as its IPv4 address). Any error in that callback
    means refuse.
    """
    canonical = canonical_address(address)
    reason = special_range(canonical)
    if reason is None:
        return None
    if is_explicitly_allowed is not None:
        try:
            if is_explicitly_allowed(canonical):
                return None
        except Exception:  # a broken callback must not open the door
            return f"{canonical} is {reason}, and checking the explicit allow list failed"
    return f"{canonical} is {reason} and not explicitly allowed"


_REFUSED = re.compile(
    r"(?:^|[ ;])([0-9A-Fa-f.:]+) is [^;]*?(?:and not explicitly allowed|explicit allow list failed)"
)


def refused_addresses(reason: str) -> list[str]:
    """The addresses a refusal reason (built from `refusal_reason` texts) says were not allowed, in order."""
    found: list[str] = []
    for match in _REFUSED.finditer(reason):
        text = match.group(1)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            continue
        if text not in found:
            found.append(text)
    return found
