"""The HTTP side of the proxy: reading a bounded request head, strict checks, targets, replies.

h11 parses request lines, headers and body framing. Before h11 sees a head, `check_head_syntax`
refuses what a proxy must not pass on or guess about: bare LF line ends, obsolete line folding (a
header continued on an indented line) and over-long request lines. Sizes and time are bounded: the
request line at 8 KiB, the whole head at 72 KiB, and reading the head at a deadline.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD = 64 * 1024 + MAX_REQUEST_LINE

REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


class ProtocolError(Exception):
    """A request the proxy refuses to parse further; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def plain_response(status: int, text: str, version: str = "1.1") -> bytes:
    """A complete response with a short plain-text body that closes the connection."""
    body = (text.rstrip("\n") + "\n").encode("utf-8", "replace")
    head = (
        f"HTTP/{version} {status} {REASONS.get(status, 'Error')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def read_head(sock: socket.socket, initial: bytes, deadline: float) -> tuple[bytes, bytes]:
    """Read until the blank line that ends a request head; return (head, bytes after it).

    Raises `ProtocolError` on a timeout (408), an over-long request line (414), an over-long head
    (431) or a connection closed mid-head (400).
    """
    buffer = bytearray(initial)
    while True:
        end = _head_end(buffer)
        if end is not None:
            return bytes(buffer[:end]), bytes(buffer[end:])
        first_line_end = buffer.find(b"\n")
        if (first_line_end == -1 and len(buffer) > MAX_REQUEST_LINE) or first_line_end > MAX_REQUEST_LINE:
            raise ProtocolError(414, "request line longer than 8 KiB")
        if len(buffer) > MAX_HEAD:
            raise ProtocolError(431, "request head longer than 72 KiB")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProtocolError(408, "request head not received in time")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(16 * 1024)
        except TimeoutError:
            raise ProtocolError(408, "request head not received in time") from None
        if not chunk:
            raise ProtocolError(400, "connection closed before the request head ended")
        buffer += chunk


def _head_end(buffer: bytearray) -> int | None:
    """Index just past the first empty line (CRLF CRLF, or a bare-LF variant to refuse later)."""
    candidates = [index for index in (buffer.find(b"\r\n\r\n"), buffer.find(b"\n\n")) if index != -1]
    if not candidates:
        return None
    index = min(candidates)
    return index + (4 if buffer[index : index + 4] == b"\r\n\r\n" else 2)


def check_head_syntax(head: bytes) -> None:
    """Refuse bare LF or CR, obsolete line folding and over-long lines in a complete head."""
    if head.count(b"\n") != head.count(b"\r\n") or head.count(b"\r") != head.count(b"\r\n"):
        raise ProtocolError(400, "line ends must be CRLF")
    lines = head.split(b"\r\n")
    if len(lines[0]) > MAX_REQUEST_LINE:
        raise ProtocolError(414, "request line longer than 8 KiB")
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError(400, "folded header lines are not accepted")


@dataclass(frozen=True, slots=True)
class Authority:
    """A host (as written, not yet normalised) and a port."""

    host: str
    port: int


def parse_authority(text: str, default_port: int | None = None) -> Authority:
    """Split ``host:port`` (``[v6]:port``); the port is required unless `default_port` is given."""
    if "@" in text:
        raise ProtocolError(400, "user information in the authority is not accepted")
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            raise ProtocolError(400, "unterminated IPv6 literal")
        host, rest = text[: close + 1], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ProtocolError(400, "junk after IPv6 literal")
        port_text = rest[1:] if rest else None
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    else:
        host, port_text = text, None
    if port_text is None:
        if default_port is None:
            raise ProtocolError(400, "a port is required")
        return Authority(host, default_port)
    return Authority(host, parse_port(port_text))


def parse_port(text: str) -> int:
    """A decimal port 1..65535, or `ProtocolError`."""
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise ProtocolError(400, "invalid port")
    return int(text)


@dataclass(frozen=True, slots=True)
class AbsoluteTarget:
    """An absolute-form ``http://host[:port]/path?query`` request target, split."""

    authority: Authority
    origin_form: str


def parse_absolute_target(target: str) -> AbsoluteTarget:
    """Split an absolute-form target; only the ``http`` scheme is accepted (HTTPS uses CONNECT)."""
    scheme, separator, rest = target.partition("://")
    if not separator:
        raise ProtocolError(400, "the proxy needs an absolute-form target (http://host/path)")
    if scheme.lower() != "http":
        raise ProtocolError(400, f"scheme {scheme!r} is not proxied as plain HTTP; use CONNECT")
    split_at = min((index for index in (rest.find("/"), rest.find("?")) if index != -1), default=len(rest))
    authority_text, path = rest[:split_at], rest[split_at:]
    if "#" in path:
        raise ProtocolError(400, "fragments are not sent to servers")
    if not path.startswith("/"):
        path = "/" + path
    return AbsoluteTarget(parse_authority(authority_text, default_port=80), path)
