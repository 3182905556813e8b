"""corral's egress proxy: the only way out of the sandbox's empty network namespace.

One listening socket speaks three protocols, told apart by the first byte: SOCKS5 (``0x05``), HTTP
``CONNECT host:port`` and absolute-form plain HTTP (``GET http://host/path``). Every connection goes
through the same steps, and each step fails closed:

1. the host is normalised (`canonical_host`); a name no host has is refused before anything else;
2. ``decide(host, port)`` is asked (the core consults rules and, if needed, the person); no answer
   within `decide_timeout_s`, an exception or anything but ``True`` means deny;
3. only then is the name resolved (the sandbox has no DNS, so no name leaks before the decision);
4. every resolved address is checked (`refusal_reason`): loopback, private, link-local, metadata and
   other special addresses are refused unless `is_address_allowed` says that exact address is fine;
5. the proxy connects to the checked address itself, so a second DNS answer cannot redirect it.

Every refusal of a destination is reported through ``on_violation(host, port, reason)``. A plain HTTP
request is forwarded alone, with ``Connection: close``, its Host header rewritten to the target and
proxy headers stripped; anything pipelined after it is dropped unread, so every request the proxy
acts on has passed the steps above. Data sent after a CONNECT before the tunnel is granted (a
pipelined second request) is refused.

The proxy holds no policy of its own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import h11

from boundary.hosts import HostError, IPAddress, canonical_host, format_authority, ip_of, visible
from sandbox.egress import socks
from sandbox.egress.addresses import refusal_reason
from sandbox.egress.httpproto import (
    MAX_HEAD,
    ProtocolError,
    check_head_syntax,
    parse_absolute_target,
    parse_authority,
    plain_response,
    read_head,
)
from sandbox.egress.relay import pump_one_way, relay

logger = logging.getLogger(__name__)

Decide = Callable[[str, int], bool]
"""``decide(canonical_host, port) -> True`` to allow; may block while a person is asked."""
Resolver = Callable[[str, int], Sequence[tuple[str, int]]]
"""``resolver(canonical_host, port) -> [(address, port), ...]``; raises OSError when nothing resolves."""
DecideNow = Callable[[str, int], bool | None]
"""``decide_now(canonical_host, port)``: a static answer (an allow-list hit or a deny rule) given at once,
on the connection's own thread; None when `decide` must be asked (it may block on a person)."""
OnViolation = Callable[[str, int, str], None]
"""``on_violation(host, port, reason)``: one refused destination, for the report and the ledger."""

# Headers that belong to one hop (the client's connection to the proxy), never forwarded.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"host",
    }
)


def system_resolver(host: str, port: int) -> list[tuple[str, int]]:
    """Resolve with the host's resolver (TCP addresses, duplicates removed, order kept)."""
    found: list[tuple[str, int]] = []
    for _, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        entry = (str(sockaddr[0]), int(sockaddr[1]))
        if entry not in found:
            found.append(entry)
    return found


def static_resolver(mapping: Mapping[str, tuple[str, int]]) -> Resolver:
    """A resolver for tests: each name maps to one (address, port); any other name does not resolve.

    The port in the mapping replaces the requested one, so test names can stand for local servers on
    ephemeral ports. Passed to `EgressProxy` explicitly; never read from the environment.
    """
    table = {canonical_host(name): target for name, target in mapping.items()}

    def resolve(host: str, port: int) -> list[tuple[str, int]]:
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return [table[host]]

    return resolve


class TunnelHook(Protocol):
    """Takes over a granted tunnel to some hosts (credential brokering: `sandbox.egress.intercept`)."""

    def wants(self, host: str, port: int) -> bool:
        """Whether this hook serves tunnels to canonical `host`:`port`."""
        ...

    def serve(self, client: socket.socket, upstream: socket.socket, host: str, port: int) -> None:
        """Serve the tunnel (the client was told it is established) until it ends."""
        ...


class Refusal(Exception):
    """A destination the proxy will not connect to, with the answer for each protocol."""

    def __init__(self, reason: str, *, status: int = 403, socks_reply: int = socks.NOT_ALLOWED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.socks_reply = socks_reply


@dataclass(frozen=True, slots=True)
class ProxyTimeouts:
    """Every bound on waiting, in seconds."""

    decide: float = 120.0
    """How long a connection waits for ``decide`` (a person may be answering a prompt). An embedder that
    asks a person passes its own deadline here (corral: its prompt timeout plus a short grace), so the
    connection never gives up before the decision it is waiting for."""
    connect: float = 15.0
    """How long connecting to the destination may take."""
    header: float = 15.0
    """How long a client has to send a complete request head or SOCKS handshake."""
    idle: float = 300.0
    """How long an established connection may stay silent in both directions."""


class EgressProxy:
    """Serve one or more listening sockets; ask `decide` for every destination.

    Start serving with `serve(listener)`; stop with `close()` (or use it as a context manager),
    which closes the listeners and cuts every open connection.
    """

    def __init__(
        self,
        decide: Decide,
        resolver: Resolver | None = None,
        *,
        on_violation: OnViolation | None = None,
        is_address_allowed: Callable[[IPAddress], bool] | None = None,
        timeouts: ProxyTimeouts | None = None,
        max_connections: int = 512,
        tunnel_hook: TunnelHook | None = None,
        decide_now: DecideNow | None = None,
    ) -> None:
        self._decide = decide
        self._tunnel_hook = tunnel_hook
        self._decide_now = decide_now
        self._resolver = resolver or system_resolver
        self._on_violation = on_violation
        self._is_address_allowed = is_address_allowed
        self.timeouts = timeouts or ProxyTimeouts()
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._listeners: list[socket.socket] = []
        self._connections: set[socket.socket] = set()
        self._closed = False

    def __enter__(self) -> EgressProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def serve(self, listener: socket.socket) -> None:
        """Accept connections on `listener` in a background thread until `close()`.

        The proxy takes ownership of `listener` and closes it on `close()`.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the proxy is closed")
            self._listeners.append(listener)
        listener.settimeout(None)
        thread = threading.Thread(
            target=self._accept_loop, args=(listener,), name="corral-egress-accept", daemon=True
        )
        thread.start()

    def close(self) -> None:
        """Stop accepting, close every listener and cut every open connection."""
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

    @property
    def open_connections(self) -> int:
        """How many client connections are being served now."""
        with self._lock:
            return len(self._connections)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed or shut down by close()
            with self._lock:
                if self._closed:
                    client.close()
                    return
                if len(self._connections) >= self._max_connections:
                    client.close()
                    logger.warning("egress proxy: connection limit reached, connection refused")
                    continue
                self._connections.add(client)
            threading.Thread(
                target=self._serve_connection, args=(client,), name="corral-egress-conn", daemon=True
            ).start()

    def _serve_connection(self, client: socket.socket) -> None:
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            deadline = time.monotonic() + self.timeouts.header
            client.settimeout(self.timeouts.header)
            first = client.recv(1, socket.MSG_PEEK)
            if first == b"\x05":
                self._serve_socks(client, deadline)
            elif first:
                self._serve_http(client, deadline)
        except (OSError, h11.ProtocolError) as error:
            logger.debug("egress proxy: connection ended: %s", error)
        finally:
            with self._lock:
                self._connections.discard(client)
            client.close()

    # -- the decision pipeline, shared by every protocol ------------------------------------------

    def _report(self, host: str, port: int, reason: str) -> None:
        if self._on_violation is None:
            return
        try:
            self._on_violation(host, port, reason)
        except Exception:
            logger.exception("egress proxy: on_violation failed")

    def _refuse(self, host: str, port: int, reason: str, **answer: int) -> Refusal:
        self._report(host, port, reason)
        return Refusal(reason, **answer)

    def _malformed(self, authority: str, error: ProtocolError) -> ProtocolError:
        """A destination the proxy cannot read (user information, `@`, a bad port, a bad scheme) is
        refused with a 400 *and* reported as a `net` violation: a client that tries a strange
        destination is worth a line in the report, never a silent failure. The raw text is shown
        escaped (`visible`); the port is the trailing number when there is one, else 0."""
        head, _, tail = authority.rpartition(":")
        port = int(tail) if head and tail.isdigit() and len(tail) <= 5 and int(tail) <= 65535 else 0
        self._report(visible(head if port else authority), port, f"malformed request: {error}")
        return error

    def _ask(self, host: str, port: int) -> str | None:
        """None when `decide` allowed the destination in time, else the reason it is refused."""
        if self._decide_now is not None:
            try:
                quick = self._decide_now(host, port)
            except Exception as error:
                logger.error("egress proxy: decide_now(%s, %d) failed: %r", host, port, error)
                return "the decision failed"
            if quick is not None:
                return None if quick is True else "denied"
        outcome: list[object] = []
        answered = threading.Event()

        def call() -> None:
            try:
                outcome.append(self._decide(host, port))
            except Exception as error:
                outcome.append(error)
            finally:
                answered.set()

        threading.Thread(target=call, name="corral-egress-decide", daemon=True).start()
        if not answered.wait(self.timeouts.decide):
            return f"no decision within {self.timeouts.decide:g}s"
        answer = outcome[0]
        if answer is True:
            return None
        if isinstance(answer, Exception):
            logger.error("egress proxy: decide(%s, %d) failed: %r", host, port, answer)
            return "the decision failed"
        return "denied"

    def open_upstream(self, raw_host: str, port: int) -> socket.socket:
        """Normalise, decide, resolve, check and connect; raise `Refusal` at the first failure."""
        try:
            host = canonical_host(raw_host)
        except HostError as error:
            raise self._refuse(visible(raw_host), port, f"refused host name: {error}") from None
        refused = self._ask(host, port)
        if refused is not None:
            raise self._refuse(host, port, refused)
        literal = ip_of(host)
        if literal is not None:
            candidates: Sequence[tuple[str, int]] = [(host, port)]
        else:
            try:
                candidates = self._resolver(host, port)
            except (OSError, UnicodeError) as error:
                raise Refusal(
                    f"cannot resolve {host}: {error}", status=502, socks_reply=socks.HOST_UNREACHABLE
                ) from None
        checked: list[tuple[IPAddress, int]] = []
        reasons: list[str] = []
        for address_text, address_port in candidates:
            try:
                address = ipaddress.ip_address(address_text)
            except ValueError:
                reasons.append(f"{visible(address_text)} is not a plain address")
                continue
            reason = refusal_reason(address, self._is_address_allowed)
            if reason is None:
                checked.append((address, address_port))
            else:
                reasons.append(reason)
        if not checked:
            reason = f"{host} resolves to " + ("; ".join(reasons) if reasons else "no address")
            raise self._refuse(host, port, reason)
        return self._connect(host, checked)

    def _connect(self, host: str, addresses: list[tuple[IPAddress, int]]) -> socket.socket:
        last_error: OSError | None = None
        for address, port in addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            upstream = socket.socket(family, socket.SOCK_STREAM)
            upstream.settimeout(self.timeouts.connect)
            try:
                upstream.connect((str(address), port))
            except OSError as error:
                upstream.close()
                last_error = error
                continue
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return upstream
        if isinstance(last_error, TimeoutError):
            raise Refusal(f"connecting to {host} timed out", status=504, socks_reply=socks.TTL_EXPIRED)
        raise Refusal(
            f"cannot connect to {host}: {last_error}", status=502, socks_reply=socks.CONNECTION_REFUSED
        )

    # -- SOCKS5 -------------------------------------------------------------------------------

    def _serve_socks(self, client: socket.socket, deadline: float) -> None:
        try:
            request = socks.read_request(client, deadline)
        except socks.SocksError as error:
            if error.reply is not None:
                client.sendall(socks.reply(error.reply))
            logger.debug("egress proxy: SOCKS refused: %s", error)
            return
        try:
            upstream = self.open_upstream(request.host, request.port)
        except Refusal as refusal:
            client.sendall(socks.reply(refusal.socks_reply))
            return
        with upstream:
            client.sendall(socks.reply(socks.SUCCEEDED))
            self.tunnel(client, upstream, request.host, request.port)

    def tunnel(self, client: socket.socket, upstream: socket.socket, raw_host: str, port: int) -> None:
        """Relay a granted tunnel, or hand it to the tunnel hook when it wants the host (the transparent
        path calls this too, so a brokered host is served the same however the client got there)."""
        hook = self._tunnel_hook
        if hook is not None:
            host = canonical_host(raw_host)  # open_upstream accepted it: it is canonical-able
            if hook.wants(host, port):
                hook.serve(client, upstream, host, port)
                return
        relay(client, upstream, idle_timeout_s=self.timeouts.idle)

    # -- HTTP ---------------------------------------------------------------------------------

    def _serve_http(self, client: socket.socket, deadline: float) -> None:
        version = "1.1"
        forward = False  # a plain-HTTP request: refused ones get no response at all (see below)
        try:
            head, extra = read_head(client, b"", deadline)
            check_head_syntax(head)
            parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            parser.receive_data(head + extra)
            try:
                request = parser.next_event()
            except h11.RemoteProtocolError as error:
                raise ProtocolError(400, f"malformed request: {error}") from None
            if not isinstance(request, h11.Request):
                raise ProtocolError(400, "malformed request")
            version = request.http_version.decode("ascii")
            if version not in ("1.0", "1.1"):
                version = "1.1"
                raise ProtocolError(505, "only HTTP/1.0 and HTTP/1.1 are proxied")
            headers = {name for name, _ in request.headers}
            if b"transfer-encoding" in headers and b"content-length" in headers:
                raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
            if request.method == b"CONNECT":
                self._serve_connect(client, parser, request, version)
            else:
                forward = True
                self._serve_forward(client, parser, request, version)
        except ProtocolError as error:
            logger.debug("egress proxy: bad request: %s", error)
            with contextlib.suppress(OSError):
                client.sendall(plain_response(error.status, str(error), version))
        except Refusal as refusal:
            # A refused CONNECT gets its status line (every client treats a non-2xx CONNECT answer as a
            # failure). A refused plain-HTTP request gets nothing: any response, 403 or 502, is a
            # success to `curl -s URL && echo UP`; an empty reply makes it fail (curl: exit 52).
            if not forward:
                with contextlib.suppress(OSError):
                    client.sendall(plain_response(refusal.status, f"corral: {refusal.reason}", version))

    def _serve_connect(
        self, client: socket.socket, parser: h11.Connection, request: h11.Request, version: str
    ) -> None:
        target_text = request.target.decode("ascii", "replace")
        try:
            authority = parse_authority(target_text)
        except ProtocolError as error:
            raise self._malformed(target_text, error) from None
        try:
            end = parser.next_event()
        except h11.RemoteProtocolError as error:
            raise ProtocolError(400, f"malformed request: {error}") from None
        if not isinstance(end, h11.EndOfMessage):
            raise ProtocolError(400, "a CONNECT request has no body")
        if parser.trailing_data[0]:
            raise ProtocolError(400, "data after CONNECT before the tunnel was granted (pipelining refused)")
        upstream = self.open_upstream(authority.host, authority.port)
        with upstream:
            if _has_pending_data(client):
                raise ProtocolError(
                    400, "data after CONNECT before the tunnel was granted (pipelining refused)"
                )
            client.sendall(f"HTTP/{version} 200 Connection established\r\n\r\n".encode("ascii"))
            self.tunnel(client, upstream, authority.host, authority.port)

    def _refuse_plain_brokered(self, raw_host: str, port: int) -> None:
        """A brokered host is reached over HTTPS only: plain HTTP to it is refused and reported (nothing
        is sent upstream)."""
        hook = self._tunnel_hook
        if hook is None:
            return
        try:
            host = canonical_host(raw_host)
        except HostError:
            return  # open_upstream refuses and reports it
        if hook.wants(host, 443):
            raise self._refuse(host, port, "a host with a brokered credential is reached over https:// only")

    def _serve_forward(
        self, client: socket.socket, parser: h11.Connection, request: h11.Request, version: str
    ) -> None:
        target_text = request.target.decode("ascii", "replace")
        try:
            target = parse_absolute_target(target_text)
        except ProtocolError as error:
            raise self._malformed(_rough_authority(target_text), error) from None
        self._refuse_plain_brokered(target.authority.host, target.authority.port)
        upstream = self.open_upstream(target.authority.host, target.authority.port)
        with upstream:
            authority = _host_header(canonical_host(target.authority.host), target.authority.port)
            chunked = any(name == b"transfer-encoding" for name, _ in request.headers)
            head = _forward_head(request, target.origin_form, authority, version, chunked)
            upstream.settimeout(self.timeouts.idle)
            client.settimeout(self.timeouts.idle)
            upstream.sendall(head)
            responder = threading.Thread(
                target=pump_one_way,
                args=(upstream, client),
                kwargs={"idle_timeout_s": self.timeouts.idle},
                name="corral-egress-response",
                daemon=True,
            )
            responder.start()
            try:
                _forward_body(client, parser, upstream, chunked)
            except (OSError, h11.ProtocolError) as error:
                logger.debug("egress proxy: request body not forwarded: %s", error)
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_RDWR)
            responder.join()


def _rough_authority(target: str) -> str:
    """The authority part of an absolute-form target, for reporting a malformed one."""
    _, separator, rest = target.partition("://")
    rest = rest if separator else target
    for end in "/?#":
        rest = rest.split(end, 1)[0]
    return rest


def _host_header(host: str, port: int) -> str:
    """The Host header value for a canonical host: the port only when it is not 80."""
    if port != 80:
        return format_authority(host, port)
    return f"[{host}]" if ":" in host else host


def _has_pending_data(client: socket.socket) -> bool:
    """Whether the client has already sent bytes we have not read (without waiting)."""
    poller = select.poll()
    poller.register(client, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return bool(client.recv(1, socket.MSG_PEEK))
    except OSError:
        return False


def _forward_head(
    request: h11.Request, origin_form: str, authority: str, version: str, chunked: bool
) -> bytes:
    connection_options = {
        option.strip().lower()
        for name, value in request.headers
        if name == b"connection"
        for option in value.split(b",")
    }
    lines = [f"{request.method.decode('ascii')} {origin_form} HTTP/{version}".encode("ascii")]
    lines.append(b"Host: " + authority.encode("ascii"))
    for name, value in request.headers.raw_items():
        lowered = name.lower()
        if lowered in _HOP_BY_HOP or lowered in connection_options:
            continue
        lines.append(name + b": " + value)
    for name, value in request.headers:
        if name == b"content-length":
            lines.append(b"Content-Length: " + value)
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _forward_body(
    client: socket.socket, parser: h11.Connection, upstream: socket.socket, chunked: bool
) -> None:
    """Send the request body with the framing it came with; stop at its end, reading nothing more."""
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            data = client.recv(256 * 1024)
            parser.receive_data(data)
            if not data:
                raise OSError("client closed before the request body ended")
            continue
        if isinstance(event, h11.Data):
            if not event.data:
                continue
            if chunked:
                upstream.sendall(b"%x\r\n" % len(event.data) + bytes(event.data) + b"\r\n")
            else:
                upstream.sendall(event.data)
        elif isinstance(event, h11.EndOfMessage):
            if chunked:
                upstream.sendall(b"0\r\n\r\n")
            return
        else:
            return
