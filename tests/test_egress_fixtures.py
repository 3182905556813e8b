"""Local stand-ins for the internet, shared by the egress tests, and a check that they work.

Servers listen on 127.0.0.1 outside any sandbox: an HTTP server that records what it receives, the
same over TLS with a certificate made for the test by the `openssl` CLI, and a raw TCP echo server
that answers after the client half-closes. The proxy under test reaches them only through test names
mapped by `static_resolver`.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox.egress.hostpolicy import HostDecision, HostPolicy
from sandbox.egress.proxy import EgressProxy, ProxyTimeouts, TunnelHook, static_resolver


@dataclass
class Recorded:
    """One request a test server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RecordingServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
            data = bytes(body)
        else:
            data = self.rfile.read(length) if length else b""
        record = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, data)
        self.server.received.append(record)
        payload = json.dumps(
            {"method": record.method, "path": record.path, "headers": record.headers, "body": data.decode()}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


class _RecordingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.received: list[Recorded] = []


@dataclass
class LocalServer:
    """A running local server: its port and what it has received."""

    port: int
    received: list[Recorded] = field(default_factory=list)


@contextlib.contextmanager
def http_server(tls_context: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    """Run a recording HTTP (or, with a context, HTTPS) server on 127.0.0.1."""
    server = _RecordingServer()
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield LocalServer(server.server_address[1], server.received)
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    """A TCP server that reads until EOF, then sends back ``echo:<bytes received>`` and closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one(connection: socket.socket) -> None:
        with connection:
            received = bytearray()
            while chunk := connection.recv(65536):
                received += chunk
            with contextlib.suppress(OSError):
                connection.sendall(b"echo:" + bytes(received))

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(connection,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()


@dataclass
class Certificate:
    """A self-signed certificate for the test names, and its key."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(directory: Path, *names: str) -> Certificate:
    """Make a self-signed certificate for `names` with the openssl CLI (skip the test without it)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make a test certificate (Debian package openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    san = ",".join(f"DNS:{name}" for name in names)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            f"/CN={names[0]}",
            "-addext",
            f"subjectAltName={san}",
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


@dataclass
class ProxyUnderTest:
    """A running proxy on 127.0.0.1 and everything it reported."""

    proxy: EgressProxy
    port: int
    policy: HostPolicy
    violations: list[tuple[str, int, str]]
    decisions: list[tuple[str, int]]
    resolved: list[str]


def start_proxy(
    policy: HostPolicy,
    names: dict[str, tuple[str, int]],
    *,
    timeouts: ProxyTimeouts | None = None,
    decide: Callable[[str, int], bool] | None = None,
    listener: socket.socket | None = None,
    tunnel_hook: TunnelHook | None = None,
) -> ProxyUnderTest:
    """A proxy whose decide callback is `policy` (unknown means deny) and whose resolver knows `names`."""
    violations: list[tuple[str, int, str]] = []
    decisions: list[tuple[str, int]] = []
    resolved: list[str] = []
    table = static_resolver(names)

    def policy_decide(host: str, port: int) -> bool:
        decisions.append((host, port))
        return policy.match(host) is HostDecision.ALLOW

    def recording_resolver(host: str, port: int) -> list[tuple[str, int]]:
        resolved.append(host)
        return list(table(host, port))

    proxy = EgressProxy(
        decide or policy_decide,
        recording_resolver,
        on_violation=lambda host, port, reason: violations.append((host, port, reason)),
        is_address_allowed=policy.allows_address,
        timeouts=timeouts or ProxyTimeouts(decide=5, connect=5, header=2, idle=10),
        tunnel_hook=tunnel_hook,
    )
    listener = listener or socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proxy.serve(listener)
    return ProxyUnderTest(proxy, port, policy, violations, decisions, resolved)


def test_http_server_records_requests() -> None:
    with http_server() as server:
        with socket.create_connection(("127.0.0.1", server.port)) as client:
            client.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert b'"path": "/x"' in b"".join(iter(lambda: client.recv(65536), b""))
        assert [record.path for record in server.received] == ["/x"]


def test_echo_server_answers_after_half_close() -> None:
    with echo_server() as port, socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"abc")
        client.shutdown(socket.SHUT_WR)
        assert b"".join(iter(lambda: client.recv(65536), b"")) == b"echo:abc"
