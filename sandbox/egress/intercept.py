"""TLS termination for brokered hosts: the proxy reads each request, adds the credential, passes it on.

`Interceptor.serve` takes a CONNECT (or SOCKS) client whose tunnel was just granted and the upstream
socket `EgressProxy.open_upstream` connected after every check (decision, resolution, address):

1. the client's TLS is terminated with a certificate from the session CA (`sandbox.egress.sessionca`),
   ALPN forced to ``http/1.1``;
2. the upstream's TLS is verified normally (system CAs, the host name) with stdlib `ssl`;
3. each request is framed by `h11` on both sides. Its head goes through `CredentialBroker.rewrite_head`
   (placeholder -> secret in the mapped header only; another credential is refused), its Host is forced
   to the CONNECT host (no fronting another site behind the same certificate), hop-by-hop headers are
   dropped; a JSON or form body up to `MAX_CHECKED_BODY` is read whole and checked, others stream;
4. each response streams back through a `Scrubber`, so a server that echoes the request never hands the
   secret to the sandbox.

A refused request gets a 403 whose text names the host and the header or field, never a value; it is
reported through ``on_refused(host, port, reason)`` and the connection is closed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import h11

from boundary.hosts import format_authority
from sandbox.egress.credentials import BrokeredCredential, CredentialBroker, CredentialRefused, Scrubber
from sandbox.egress.httpproto import MAX_HEAD
from sandbox.egress.sessionca import SessionCA

logger = logging.getLogger(__name__)

OnRefused = Callable[[str, int, str], None]
"""``on_refused(host, port, reason)``: a request carried a credential that is not the session's own."""
OnBrokered = Callable[[str, int, BrokeredCredential], None]
"""``on_brokered(host, port, credential)``: one request went out with `credential` put in."""

MAX_CHECKED_BODY = 16 * 1024 * 1024
"""JSON / form bodies to a brokered host are read whole (to check their credential fields) up to this."""
CHUNK = 64 * 1024

_DROPPED_REQUEST = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
        b"host",
    }
)
_DROPPED_RESPONSE = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"trailer", b"upgrade"})
_STREAMED_TYPES = ("application/octet-stream", "application/x-git-", "multipart/", "application/gzip")


@dataclass(frozen=True, slots=True)
class InterceptTimeouts:
    handshake: float = 15.0
    idle: float = 300.0


class Interceptor:
    """Terminates TLS for the broker's hosts and forwards requests with the credential put in."""

    def __init__(
        self,
        broker: CredentialBroker,
        authority: SessionCA,
        *,
        upstream_context: ssl.SSLContext | None = None,
        on_refused: OnRefused | None = None,
        on_brokered: OnBrokered | None = None,
        timeouts: InterceptTimeouts | None = None,
    ) -> None:
        self.broker = broker
        self.authority = authority
        self._upstream_context = upstream_context or _default_upstream_context()
        self._on_refused = on_refused
        self._on_brokered = on_brokered
        self.timeouts = timeouts or InterceptTimeouts()

    def wants(self, host: str, port: int) -> bool:
        """Whether connections to (canonical) `host`:`port` are terminated here."""
        return self.broker.is_brokered(host, port)

    def serve(self, client: socket.socket, upstream: socket.socket, host: str, port: int) -> None:
        """Serve one granted tunnel to a brokered host until either side closes."""
        client.settimeout(self.timeouts.handshake)
        try:
            inner = self.authority.server_context(host).wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError) as error:
            logger.debug("egress intercept: client TLS to %s failed: %s", host, error)
            return
        with inner:
            upstream.settimeout(self.timeouts.handshake)
            try:
                outer = self._upstream_context.wrap_socket(upstream, server_hostname=host)
            except (OSError, ssl.SSLError) as error:
                inner.settimeout(self.timeouts.idle)
                reason = getattr(error, "verify_message", None) or type(error).__name__
                _answer(inner, 502, f"corral: the TLS connection to {host} failed ({reason})")
                return
            with outer:
                inner.settimeout(self.timeouts.idle)
                outer.settimeout(self.timeouts.idle)
                self._exchange(inner, outer, host, port)

    def _refuse(self, client: ssl.SSLSocket, host: str, port: int, reason: str) -> None:
        if self._on_refused is not None:
            try:
                self._on_refused(host, port, reason)
            except Exception:
                logger.exception("egress intercept: on_refused failed")
        _answer(client, 403, f"corral: refused a request to {format_authority(host, port)}: {reason}")

    def _exchange(self, client: ssl.SSLSocket, upstream: ssl.SSLSocket, host: str, port: int) -> None:
        server_side = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        client_side = h11.Connection(h11.CLIENT)
        while True:
            try:
                request = _next_event(server_side, client)
            except (h11.RemoteProtocolError, OSError):
                return
            if not isinstance(request, h11.Request):
                return  # ConnectionClosed or something unexpected: done
            try:
                head, used = self._request_head(request, host, port)
            except CredentialRefused as refusal:
                self._refuse(client, host, port, str(refusal))
                return
            body: list[bytes] | None = None
            content_type = _header(request.headers, b"content-type").decode("latin-1")
            if _checked(content_type):
                try:
                    body = _read_body(server_side, client, MAX_CHECKED_BODY)
                except _TooLarge:
                    self._refuse(client, host, port, "a JSON or form body larger than 16 MiB")
                    return
                except (h11.RemoteProtocolError, OSError):
                    return
                try:
                    self.broker.check_body(content_type, b"".join(body))
                except CredentialRefused as refusal:
                    self._refuse(client, host, port, str(refusal))
                    return
            for credential in used:
                if self._on_brokered is not None:
                    with contextlib.suppress(Exception):
                        self._on_brokered(host, port, credential)
            try:
                upstream.sendall(client_side.send(head))
                if body is None:
                    _stream_body(server_side, client, client_side, upstream)
                else:
                    for chunk in body:
                        upstream.sendall(client_side.send(h11.Data(data=chunk)))
                    upstream.sendall(client_side.send(h11.EndOfMessage()))
            except (h11.ProtocolError, OSError) as error:
                logger.debug("egress intercept: request to %s not sent whole: %s", host, error)
                return
            try:
                self._relay_response(request, client_side, upstream, server_side, client, host, port)
            except (h11.ProtocolError, OSError, ssl.SSLError) as error:
                logger.debug("egress intercept: response from %s ended: %s", host, error)
                return
            if server_side.our_state is not h11.DONE or client_side.our_state is not h11.DONE:
                return
            if server_side.their_state is not h11.DONE or client_side.their_state is not h11.DONE:
                return
            try:
                server_side.start_next_cycle()
                client_side.start_next_cycle()
            except h11.LocalProtocolError:
                return

    def _request_head(
        self, request: h11.Request, host: str, port: int
    ) -> tuple[h11.Request, list[BrokeredCredential]]:
        target = _origin_form(request.target, host, port)
        kept = [(name, value) for name, value in request.headers if name not in _DROPPED_REQUEST]
        headers, used = self.broker.rewrite_head(host, port, target, kept)
        authority = host if port == 443 else format_authority(host, port)
        headers.insert(0, (b"host", authority.encode("ascii")))
        return h11.Request(method=request.method, target=target, headers=headers), used

    def _relay_response(
        self,
        request: h11.Request,
        client_side: h11.Connection,
        upstream: ssl.SSLSocket,
        server_side: h11.Connection,
        client: ssl.SSLSocket,
        host: str,
        port: int,
    ) -> None:
        scrubber = Scrubber(self.broker.secrets_for(host, port))
        while True:
            event = _next_event(client_side, upstream)
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue is for us (Expect is not forwarded); others are dropped
            if not isinstance(event, h11.Response):
                raise OSError("the upstream closed before answering")
            headers = [
                (name, scrubber.mask(value)) for name, value in event.headers if name not in _DROPPED_RESPONSE
            ]
            client.sendall(
                server_side.send(
                    h11.Response(status_code=event.status_code, headers=headers, reason=event.reason)
                )
            )
            break
        while True:
            event = _next_event(client_side, upstream)
            if isinstance(event, h11.Data):
                masked = scrubber.feed(bytes(event.data))
                if masked:
                    client.sendall(server_side.send(h11.Data(data=masked)))
            elif isinstance(event, h11.EndOfMessage):
                rest = scrubber.flush()
                if rest:
                    client.sendall(server_side.send(h11.Data(data=rest)))
                client.sendall(server_side.send(h11.EndOfMessage()))
                return
            else:
                raise OSError("the upstream closed mid-response")


class _TooLarge(Exception):
    pass


def _default_upstream_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _answer(client: ssl.SSLSocket, status: int, text: str) -> None:
    from sandbox.egress.httpproto import plain_response

    with contextlib.suppress(OSError, ssl.SSLError):
        client.sendall(plain_response(status, text))


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes:
    for key, value in headers:
        if key == name:
            return bytes(value)
    return b""


def _checked(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return not kind.startswith(_STREAMED_TYPES)


def _origin_form(target: bytes, host: str, port: int) -> bytes:
    """The request target in origin form; an absolute URL must name this tunnel's host."""
    if target.startswith(b"/") or target == b"*":
        return target
    lowered = target.lower()
    for scheme in (b"https://", b"http://"):
        if lowered.startswith(scheme):
            rest = target[len(scheme) :]
            authority, slash, path = rest.partition(b"/")
            allowed = {host.encode(), format_authority(host, port).encode()}
            if authority.lower() not in allowed:
                raise CredentialRefused("a request for another host inside this host's tunnel")
            return b"/" + path if slash else b"/"
    raise CredentialRefused("a request target that is neither a path nor this host's URL")


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _next_event(connection: h11.Connection, sock: ssl.SSLSocket) -> object:
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            if _QUICKACK is not None:
                # ACK at once: a server that writes its head and body apart (Nagle on) otherwise waits
                # for our delayed ACK, 40 ms per response (bench/bench_credentials.py: 57 ms -> 4.5 ms).
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            try:
                data = sock.recv(CHUNK)
            except ssl.SSLEOFError:
                data = b""
            connection.receive_data(data)
            continue
        if event is h11.PAUSED:
            return h11.ConnectionClosed()
        return event


def _read_body(connection: h11.Connection, sock: ssl.SSLSocket, limit: int) -> list[bytes]:
    if connection.they_are_waiting_for_100_continue:
        sock.sendall(connection.send(h11.InformationalResponse(status_code=100, headers=[])))
    chunks: list[bytes] = []
    size = 0
    while True:
        event = _next_event(connection, sock)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                raise _TooLarge
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return chunks
        else:
            raise OSError("the client closed mid-body")


def _stream_body(
    server_side: h11.Connection, client: ssl.SSLSocket, client_side: h11.Connection, upstream: ssl.SSLSocket
) -> None:
    if server_side.they_are_waiting_for_100_continue:
        client.sendall(server_side.send(h11.InformationalResponse(status_code=100, headers=[])))
    while True:
        event = _next_event(server_side, client)
        if isinstance(event, h11.Data):
            upstream.sendall(client_side.send(h11.Data(data=bytes(event.data))))
        elif isinstance(event, h11.EndOfMessage):
            upstream.sendall(client_side.send(h11.EndOfMessage()))
            return
        else:
            raise OSError("the client closed mid-body")
