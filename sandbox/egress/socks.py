"""The SOCKS5 side of the proxy (RFC 1928): no authentication, CONNECT only, names resolved by corral.

A domain name (ATYP 3) goes through the same normalisation and policy as an HTTP host; IPv4 and IPv6
literals (ATYP 1 and 4) do too, as their canonical text. BIND and UDP ASSOCIATE are refused.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass

VERSION = 5
NO_AUTHENTICATION = 0x00
NO_ACCEPTABLE_METHOD = 0xFF
COMMAND_CONNECT = 0x01
ADDRESS_IPV4 = 0x01
ADDRESS_DOMAIN = 0x03
ADDRESS_IPV6 = 0x04

SUCCEEDED = 0x00
GENERAL_FAILURE = 0x01
NOT_ALLOWED = 0x02
NETWORK_UNREACHABLE = 0x03
HOST_UNREACHABLE = 0x04
CONNECTION_REFUSED = 0x05
TTL_EXPIRED = 0x06
COMMAND_NOT_SUPPORTED = 0x07
ADDRESS_TYPE_NOT_SUPPORTED = 0x08


class SocksError(Exception):
    """A SOCKS request the proxy refuses; `reply` is the reply code to send (None: just close)."""

    def __init__(self, reply: int | None, message: str) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class SocksRequest:
    """A SOCKS5 CONNECT request: the host as sent (a name or an address literal) and the port."""

    host: str
    port: int


def _receive_exactly(sock: socket.socket, count: int, deadline: float) -> bytes:
    data = bytearray()
    while len(data) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SocksError(None, "SOCKS handshake not received in time")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(count - len(data))
        except TimeoutError:
            raise SocksError(None, "SOCKS handshake not received in time") from None
        if not chunk:
            raise SocksError(None, "connection closed during the SOCKS handshake")
        data += chunk
    return bytes(data)


def read_request(sock: socket.socket, deadline: float) -> SocksRequest:
    """Run the method negotiation and read one CONNECT request; raise `SocksError` on anything else."""
    version, method_count = _receive_exactly(sock, 2, deadline)
    if version != VERSION or method_count == 0:
        raise SocksError(None, "not a SOCKS5 greeting")
    methods = _receive_exactly(sock, method_count, deadline)
    if NO_AUTHENTICATION not in methods:
        sock.sendall(bytes((VERSION, NO_ACCEPTABLE_METHOD)))
        raise SocksError(None, "the client offers no method without authentication")
    sock.sendall(bytes((VERSION, NO_AUTHENTICATION)))

    version, command, reserved, address_type = _receive_exactly(sock, 4, deadline)
    if version != VERSION or reserved != 0:
        raise SocksError(GENERAL_FAILURE, "malformed SOCKS5 request")
    if address_type == ADDRESS_IPV4:
        host = str(ipaddress.IPv4Address(_receive_exactly(sock, 4, deadline)))
    elif address_type == ADDRESS_IPV6:
        host = str(ipaddress.IPv6Address(_receive_exactly(sock, 16, deadline)))
    elif address_type == ADDRESS_DOMAIN:
        (length,) = _receive_exactly(sock, 1, deadline)
        raw_name = _receive_exactly(sock, length, deadline)
        # latin-1 keeps every byte visible; non-ASCII is then refused by the host normalisation.
        host = raw_name.decode("latin-1")
    else:
        raise SocksError(ADDRESS_TYPE_NOT_SUPPORTED, f"address type {address_type} not supported")
    (port,) = struct.unpack("!H", _receive_exactly(sock, 2, deadline))
    if command != COMMAND_CONNECT:
        raise SocksError(COMMAND_NOT_SUPPORTED, f"SOCKS command {command} not supported (CONNECT only)")
    if port == 0:
        raise SocksError(GENERAL_FAILURE, "port 0 is not a destination")
    return SocksRequest(host, port)


def reply(code: int) -> bytes:
    """A SOCKS5 reply with an all-zero bound address (the sandbox has nothing to do with it)."""
    return bytes((VERSION, code, 0, ADDRESS_IPV4, 0, 0, 0, 0, 0, 0))
