"""Placeholder addresses for names the sandbox looked up, so a later connect is attributed to the name.

The sandbox has no real DNS: corral's responder (`sandbox.egress.dns`) answers every ``A`` question
with an address from `POOL` (198.18.0.0/15, reserved for benchmarking, never a real destination) and
remembers which name it gave it to. When a connection to such an address reaches the transparent
listener, `name_for` turns it back into the name, so the question asked is "ssh to github.com:22?",
and corral resolves the real name itself, from the host, only after the decision.

A name keeps its address for the pool's lifetime (one sandbox), so clients that cache answers keep
working; the pool holds 131,070 names before it refuses more (`PoolExhausted`).
"""

from __future__ import annotations

import ipaddress
import threading

POOL = ipaddress.IPv4Network("198.18.0.0/15")


class PoolExhausted(Exception):
    """Every placeholder address is taken."""


class NamePool:
    """Name <-> placeholder address, thread-safe; names are canonical (`boundary.hosts.canonical_host`)."""

    def __init__(self, network: ipaddress.IPv4Network = POOL) -> None:
        self._network = network
        self._next = 1
        self._by_name: dict[str, ipaddress.IPv4Address] = {}
        self._by_address: dict[ipaddress.IPv4Address, str] = {}
        self._lock = threading.Lock()

    def address_for(self, name: str) -> ipaddress.IPv4Address:
        """The placeholder for `name`, the same one every time."""
        with self._lock:
            known = self._by_name.get(name)
            if known is not None:
                return known
            if self._next >= self._network.num_addresses - 1:
                raise PoolExhausted(f"more than {self._network.num_addresses - 2} names looked up")
            address = self._network[self._next]
            self._next += 1
            self._by_name[name] = address
            self._by_address[address] = name
            return address

    def name_for(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """The name a placeholder was given to; None for any other address."""
        if not isinstance(address, ipaddress.IPv4Address):
            return None
        with self._lock:
            return self._by_address.get(address)

    def is_placeholder(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether `address` lies in the pool (given out or not)."""
        return isinstance(address, ipaddress.IPv4Address) and address in self._network
