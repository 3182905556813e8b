"""corral's DNS responder for the sandbox: every look-up is seen, none leaves the machine.

The NAT rules (`sandbox.egress.interception`) send every DNS packet the sandbox sends (UDP or TCP, to
any server its ``/etc/resolv.conf`` names) here. The responder never forwards a question: DNS cannot
carry data out of the sandbox, and no name is resolved before the person decides. Each question is
reported through ``on_lookup(name, type)`` and answered locally:

- ``A``: a placeholder address from `sandbox.egress.names.NamePool`, so that a later connect to it is
  attributed to the name and decided as "connect to name:port" (corral resolves the real name, from
  the host, only when that connection is allowed);
- ``localhost`` and its subdomains: the sandbox's own 127.0.0.1 (``::1`` for ``AAAA``);
- ``AAAA`` and every other type: no records (NOERROR, empty), so clients fall back to IPv4 and no
  IPv6 placeholder is needed;
- a name that cannot be a host name (`boundary.hosts.canonical_host` refuses it): NXDOMAIN, and the
  look-up is still reported.

Messages are parsed and built with dnspython (`dns.message`), a well-kept DNS library; a packet it
cannot parse is dropped (a client then times out, as with a dead server).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from boundary.hosts import HostError, canonical_host
from sandbox.egress.names import NamePool, PoolExhausted

logger = logging.getLogger(__name__)

OnLookup = Callable[[str, str], None]
"""``on_lookup(name, type)``: one question the sandbox asked (the name as canonical as it can be made)."""

ANSWER_TTL = 60
MAX_TCP_MESSAGE = 65535


class DnsResponder:
    """Answers DNS questions from the sandbox; see the module docstring for what it answers."""

    def __init__(self, pool: NamePool, on_lookup: OnLookup | None = None) -> None:
        self.pool = pool
        self._on_lookup = on_lookup
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Make `serve_udp` return once its socket is shut down (an empty datagram alone does not)."""
        self._stopped.set()

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to one DNS message, or None when it is not a query we can parse."""
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError):
            return None
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        question = query.question[0]
        raw_name = question.name.to_text(omit_final_dot=True)
        qtype = dns.rdatatype.to_text(question.rdtype)
        try:
            name = canonical_host(raw_name)
        except HostError:
            self._report(raw_name, qtype)
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply.to_wire()
        self._report(name, qtype)
        if question.rdclass != dns.rdataclass.IN:
            return reply.to_wire()
        address = self._address(name, question.rdtype)
        if address is not None:
            reply.answer.append(
                dns.rrset.from_text(question.name, ANSWER_TTL, dns.rdataclass.IN, question.rdtype, address)
            )
        return reply.to_wire()

    def _address(self, name: str, rdtype: int) -> str | None:
        is_local = name == "localhost" or name.endswith(".localhost")
        if rdtype == dns.rdatatype.A:
            if is_local:
                return "127.0.0.1"
            try:
                return str(self.pool.address_for(name))
            except PoolExhausted:
                logger.warning("corral DNS: placeholder pool exhausted; %s not answered", name)
                return None
        if rdtype == dns.rdatatype.AAAA and is_local:
            return "::1"
        return None

    def _report(self, name: str, qtype: str) -> None:
        if self._on_lookup is None:
            return
        try:
            self._on_lookup(name, qtype)
        except Exception:
            logger.exception("corral DNS: on_lookup failed")

    # -- transports ------------------------------------------------------------------------------

    def serve_udp(self, sock: socket.socket) -> None:
        """Answer datagrams on `sock` until it is closed or shut down (run in a thread)."""
        while True:
            try:
                wire, peer = sock.recvfrom(4096)
            except OSError:
                return
            if not wire:
                if self._stopped.is_set():
                    return  # shut down by stop(): recvfrom now returns at once, forever
                continue
            reply = self.answer(wire)
            if reply is None:
                continue
            if len(reply) > 512 and not _has_edns(wire):
                reply = self._truncated(wire)
            with contextlib.suppress(OSError):
                sock.sendto(reply, peer)

    def _truncated(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.TC
        return reply.to_wire()

    def serve_tcp(self, client: socket.socket, timeout_s: float = 15.0) -> None:
        """Answer length-prefixed DNS messages on one TCP connection until the client stops."""
        client.settimeout(timeout_s)
        with contextlib.suppress(OSError):
            while True:
                header = _read_exactly(client, 2)
                if header is None:
                    return
                (length,) = struct.unpack("!H", header)
                wire = _read_exactly(client, length)
                if wire is None:
                    return
                reply = self.answer(wire)
                if reply is None:
                    return
                client.sendall(struct.pack("!H", len(reply)) + reply)


def _has_edns(wire: bytes) -> bool:
    try:
        return dns.message.from_wire(wire).edns >= 0
    except (dns.exception.DNSException, ValueError):
        return False


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def start_udp(responder: DnsResponder, sockets: list[socket.socket]) -> list[threading.Thread]:
    """Serve each UDP socket in a daemon thread."""
    threads = []
    for sock in sockets:
        thread = threading.Thread(target=responder.serve_udp, args=(sock,), name="corral-dns", daemon=True)
        thread.start()
        threads.append(thread)
    return threads
