"""The transparent path: TCP connections that never asked the proxy, decided like proxied ones.

The NAT rules (`sandbox.egress.interception`) redirect every TCP connection leaving the sandbox to
corral's transparent listener. For each one, `TransparentService`:

1. reads where the client meant to go (``SO_ORIGINAL_DST``); port 53 is a DNS look-up over TCP and is
   answered by the DNS responder;
2. turns a placeholder address back into the name the client looked up (`NamePool.name_for`), so the
   decision is about ``github.com:22``, not an address; an address the client wrote itself stays
   that address;
3. hands (name or address, port) to `open_upstream` — the proxy's own pipeline (`EgressProxy.
   open_upstream`: normalise, decide, resolve on the host, check the addresses, connect) — so rules,
   prompts, address checks and reports are exactly those of proxied traffic;
4. allowed: relays bytes both ways; refused: resets the connection (RST: the client sees "connection
   reset by peer", never a success) after the refusal was reported.

A connection to the listener's own address (not redirected), to a placeholder no name was given, or
whose original destination cannot be read is reset and reported.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Callable

from boundary.hosts import IPAddress
from sandbox.egress.dns import DnsResponder
from sandbox.egress.names import NamePool

logger = logging.getLogger(__name__)

SO_ORIGINAL_DST = 80
"""``SO_ORIGINAL_DST`` (IPv4, SOL_IP) and ``IP6T_SO_ORIGINAL_DST`` (IPv6, SOL_IPV6) share the number."""

OpenUpstream = Callable[[str, int], socket.socket]
"""``open_upstream(host, port)``: a connected socket, or an exception (refused: the reason was reported)."""
Relay = Callable[[socket.socket, socket.socket, str, int], object]
"""``relay(client, upstream, host, port)``: serve an allowed connection (`EgressProxy.tunnel`)."""
OnRefusal = Callable[[str, int, str], None]


def original_destination(client: socket.socket) -> tuple[IPAddress, int]:
    """Where a redirected connection was going, from the kernel's NAT state."""
    if client.family == socket.AF_INET6:
        raw = client.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
        port = struct.unpack_from("!H", raw, 2)[0]
        return ipaddress.IPv6Address(raw[8:24]), port
    raw = client.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack_from("!H", raw, 2)[0]
    return ipaddress.IPv4Address(raw[4:8]), port


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN: the client's next read or write fails at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class TransparentService:
    """Accept redirected connections on the given listeners; decide and relay each one."""

    def __init__(
        self,
        open_upstream: OpenUpstream,
        relay: Relay,
        pool: NamePool,
        responder: DnsResponder,
        *,
        on_refusal: OnRefusal | None = None,
        max_connections: int = 512,
    ) -> None:
        self._open_upstream = open_upstream
        self._relay = relay
        self._pool = pool
        self._responder = responder
        self._on_refusal = on_refusal
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._listeners: list[socket.socket] = []
        self._connections: set[socket.socket] = set()
        self._closed = False

    def serve(self, listener: socket.socket) -> None:
        """Accept on `listener` in a background thread until `close()` (which closes it)."""
        with self._lock:
            if self._closed:
                listener.close()
                return
            self._listeners.append(listener)
        threading.Thread(
            target=self._accept_loop, args=(listener,), name="corral-transparent", daemon=True
        ).start()

    def close(self) -> None:
        """Stop accepting and cut every open connection."""
        with self._lock:
            self._closed = True
            listeners, self._listeners = self._listeners, []
            connections = list(self._connections)
        for listener in listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    client.close()
                    return
                if len(self._connections) >= self._max_connections:
                    reset(client)
                    continue
                self._connections.add(client)
            threading.Thread(
                target=self._serve_connection, args=(client,), name="corral-transparent-conn", daemon=True
            ).start()

    def _refused(self, client: socket.socket, host: str, port: int, reason: str) -> None:
        if self._on_refusal is not None:
            try:
                self._on_refusal(host, port, reason)
            except Exception:
                logger.exception("transparent: on_refusal failed")
        reset(client)

    def _serve_connection(self, client: socket.socket) -> None:
        try:
            self._serve(client)
        except Exception as error:  # one connection's failure never reaches the others
            logger.debug("transparent: connection ended: %s", error)
            reset(client)
        finally:
            with self._lock:
                self._connections.discard(client)
            with contextlib.suppress(OSError):
                client.close()

    def _serve(self, client: socket.socket) -> None:
        try:
            address, port = original_destination(client)
        except OSError:
            reset(client)  # not redirected (someone connected to the listener itself)
            return
        if port == 53:
            self._responder.serve_tcp(client)
            return
        if address.is_loopback:
            reset(client)  # the listener's own address: nothing was redirected
            return
        host = self._pool.name_for(address)
        if host is None:
            if self._pool.is_placeholder(address):
                self._refused(client, str(address), port, "an address corral's DNS never gave out")
                return
            host = str(address)
        try:
            upstream = self._open_upstream(host, port)
        except Exception:
            reset(client)  # refused: open_upstream has reported why
            return
        with upstream:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._relay(client, upstream, host, port)
