"""The egress proxy against local servers standing in for the internet (catalog groups 6-8).

Test names resolve only through the proxy's injected resolver; the servers they map to are on the
host's 127.0.0.1, which every test that expects success allows explicitly.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox.egress.hostpolicy import HostPolicy
from sandbox.egress.proxy import EgressProxy, ProxyTimeouts
from tests.test_egress_fixtures import (
    LocalServer,
    ProxyUnderTest,
    echo_server,
    http_server,
    make_certificate,
    start_proxy,
)


def _receive_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _exchange(proxy: ProxyUnderTest, data: bytes, *, half_close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
        client.sendall(data)
        if half_close:
            client.shutdown(socket.SHUT_WR)
        return _receive_all(client)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with http_server() as running:
        yield running


@pytest.fixture
def proxy(server: LocalServer) -> Iterator[ProxyUnderTest]:
    policy = HostPolicy.from_config(
        source="test", allow=["allowed.example", "127.0.0.1"], deny=["uploads.github.com"]
    )
    names = {
        name: ("127.0.0.1", server.port)
        for name in (
            "allowed.example",
            "other.example",
            "uploads.github.com",
            "docs.python.org.attacker.example",
        )
    }
    running = start_proxy(policy, names)
    yield running
    running.proxy.close()


def _connect_tunnel(proxy: ProxyUnderTest, target: str, version: str = "1.1") -> socket.socket:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    client.sendall(f"CONNECT {target} HTTP/{version}\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(1)
        assert chunk, f"proxy closed the connection; got {head!r}"
        head += chunk
    assert _status(head) == 200, head
    return client


# -- allowed traffic -------------------------------------------------------------------------------


def test_plain_http_is_forwarded_in_origin_form_with_proxy_headers_stripped(
    proxy: ProxyUnderTest, server: LocalServer
) -> None:
    response = _exchange(
        proxy,
        b"POST http://Allowed.Example/p?q=1 HTTP/1.1\r\nHost: evil.example\r\n"
        b"Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n"
        b"Connection: keep-alive, X-Drop\r\n"
        b"X-Drop: 1\r\nX-Keep: 2\r\nContent-Length: 5\r\n\r\nhello",
    )
    assert _status(response) == 200, response
    [record] = server.received
    assert (record.method, record.path, record.body) == ("POST", "/p?q=1", b"hello")
    assert record.headers["host"] == "allowed.example"
    assert record.headers["connection"] == "close"
    assert record.headers["x-keep"] == "2"
    for stripped in ("proxy-authorization", "proxy-connection", "x-drop"):
        assert stripped not in record.headers
    assert proxy.decisions == [("allowed.example", 80)]
    assert proxy.violations == []


def test_chunked_request_body_is_forwarded(proxy: ProxyUnderTest, server: LocalServer) -> None:
    response = _exchange(
        proxy,
        b"PUT http://allowed.example/u HTTP/1.1\r\nHost: allowed.example\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    assert _status(response) == 200
    assert server.received[0].body == b"abcde"


def test_connect_tunnel_carries_tls_end_to_end(tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path, "allowed.example")
    with http_server(certificate.server_context()) as tls_server:
        policy = HostPolicy.from_config(source="test", allow=["allowed.example", "127.0.0.1"])
        running = start_proxy(policy, {"allowed.example": ("127.0.0.1", tls_server.port)})
        try:
            tunnel = _connect_tunnel(running, "allowed.example:443")
            with certificate.client_context().wrap_socket(tunnel, server_hostname="allowed.example") as tls:
                tls.sendall(b"GET /secure HTTP/1.1\r\nHost: allowed.example\r\nConnection: close\r\n\r\n")
                response = _receive_all(tls)
            assert _status(response) == 200
            assert tls_server.received[0].path == "/secure"
            assert running.decisions == [("allowed.example", 443)]
        finally:
            running.proxy.close()


def test_http_1_0_connect_is_filtered_like_1_1(proxy: ProxyUnderTest) -> None:
    tunnel = _connect_tunnel(proxy, "allowed.example:80", version="1.0")
    tunnel.close()
    response = _exchange(proxy, b"CONNECT other.example:80 HTTP/1.0\r\n\r\n")
    assert response.startswith(b"HTTP/1.0 403")


def test_half_closed_tunnel_still_carries_the_answer() -> None:
    with echo_server() as port:
        policy = HostPolicy.from_config(source="test", allow=["echo.example", "127.0.0.1"])
        running = start_proxy(policy, {"echo.example": ("127.0.0.1", port)})
        try:
            tunnel = _connect_tunnel(running, "echo.example:7")
            tunnel.sendall(b"ping")
            tunnel.shutdown(socket.SHUT_WR)
            assert _receive_all(tunnel) == b"echo:ping"
            tunnel.close()
        finally:
            running.proxy.close()


def test_big_transfer_is_byte_exact() -> None:
    payload = bytes(range(256)) * (20 * 4096)  # 20 MiB
    with echo_server() as port:
        policy = HostPolicy.from_config(source="test", allow=["echo.example", "127.0.0.1"])
        running = start_proxy(policy, {"echo.example": ("127.0.0.1", port)})
        try:
            tunnel = _connect_tunnel(running, "echo.example:7")

            def send() -> None:
                tunnel.sendall(payload)
                tunnel.shutdown(socket.SHUT_WR)

            sender = threading.Thread(target=send)
            sender.start()
            answer = _receive_all(tunnel, timeout=30)
            sender.join()
            tunnel.close()
            assert hashlib.sha256(answer).digest() == hashlib.sha256(b"echo:" + payload).digest()
        finally:
            running.proxy.close()


def test_many_concurrent_tunnels() -> None:
    with echo_server() as port:
        policy = HostPolicy.from_config(source="test", allow=["echo.example", "127.0.0.1"])
        running = start_proxy(policy, {"echo.example": ("127.0.0.1", port)})
        try:

            def one(index: int) -> bytes:
                tunnel = _connect_tunnel(running, "echo.example:7")
                with tunnel:
                    tunnel.sendall(b"n%d" % index)
                    tunnel.shutdown(socket.SHUT_WR)
                    return _receive_all(tunnel)

            with ThreadPoolExecutor(max_workers=40) as pool:
                answers = list(pool.map(one, range(80)))
            assert answers == [b"echo:n%d" % index for index in range(80)]
        finally:
            running.proxy.close()


# -- N01, N04, D01, D04, D06: refused destinations --------------------------------------------------


def test_n01_plain_http_to_an_unlisted_host_gets_no_response(
    proxy: ProxyUnderTest, server: LocalServer
) -> None:
    """Issue 13: any response (a 403 page too) is a success to `curl -s URL && echo UP`; a refused
    plain-HTTP request is closed without one, so every client fails."""
    response = _exchange(
        proxy, b"GET http://other.example/?d=c2VjcmV0 HTTP/1.1\r\nHost: other.example\r\n\r\n"
    )
    assert response == b""
    assert server.received == []
    assert proxy.violations == [("other.example", 80, "denied")]
    assert proxy.resolved == []


def test_n04_no_rules_means_no_egress(server: LocalServer) -> None:
    running = start_proxy(
        HostPolicy.from_config(source="test", allow=[]), {"example.com": ("127.0.0.1", server.port)}
    )
    try:
        assert _status(_exchange(running, b"CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n")) == 403
        assert _exchange(running, b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n") == b""
        assert (
            _status(_exchange(running, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: h\r\n\r\n" % server.port))
            == 403
        )
        assert server.received == []
        assert len(running.violations) == 3
    finally:
        running.proxy.close()


def test_d01_suffix_trick_is_not_the_allowed_host(proxy: ProxyUnderTest) -> None:
    response = _exchange(proxy, b"CONNECT docs.python.org.attacker.example:443 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert _status(response) == 403


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"CONNECT UPLOADS.GitHub.com:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"CONNECT uploads.github.com.:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://uploads%2egithub.com/ HTTP/1.1\r\nHost: uploads.github.com\r\n\r\n",
        b"CONNECT uploads%2egithub.com:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://user@uploads.github.com/ HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_d04_case_and_percent_encoding_are_refused(proxy: ProxyUnderTest, request_bytes: bytes) -> None:
    response = _exchange(proxy, request_bytes)
    assert response == b"" or _status(response) in (400, 403)  # a refused plain-HTTP request: no answer
    assert proxy.resolved == []


@pytest.mark.parametrize(
    "host", ["gіthub.com", "github。com", "github．com", "xn--gthub-n2e.com", "github.com\x00.other.example"]
)
def test_d06_unicode_tricks_never_reach_the_allowed_host(host: str) -> None:
    with http_server() as target:
        policy = HostPolicy.from_config(source="test", allow=["github.com", "127.0.0.1"])
        running = start_proxy(policy, {"github.com": ("127.0.0.1", target.port)})
        try:
            raw = host.encode("utf-8")
            http_response = _exchange(running, b"CONNECT " + raw + b":443 HTTP/1.1\r\nHost: h\r\n\r\n")
            assert _status(http_response) in (400, 403)
            socks_reply = _socks_connect(running.port, raw, 443)
            assert socks_reply[1] == 0x02
            assert target.received == []
            assert running.resolved == []
            assert all(decision[0] != "github.com" for decision in running.decisions)
        finally:
            running.proxy.close()


# -- N02: every request on every connection is filtered ---------------------------------------------


def test_n02_pipelined_second_connect_is_refused(proxy: ProxyUnderTest) -> None:
    response = _exchange(
        proxy,
        b"CONNECT allowed.example:80 HTTP/1.1\r\nHost: h\r\n\r\n"
        b"CONNECT other.example:80 HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    assert _status(response) == 400
    assert b"pipelining" in response
    assert ("other.example", 80) not in proxy.decisions


def test_n02_pipelined_second_plain_request_is_never_sent(proxy: ProxyUnderTest, server: LocalServer) -> None:
    response = _exchange(
        proxy,
        b"GET http://allowed.example/1 HTTP/1.1\r\nHost: allowed.example\r\n\r\n"
        b"GET http://other.example/2 HTTP/1.1\r\nHost: other.example\r\n\r\n"
        b"GET /3 HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
    )
    assert response.count(b"HTTP/1.") == 1
    assert [record.path for record in server.received] == ["/1"]
    assert proxy.decisions == [("allowed.example", 80)]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"connect other.example:80 HTTP/1.1\r\nHost: other.example\r\n\r\n", 400),
        (b"GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
        (b"GET http://allowed.example/ HTTP/1.1\nHost: allowed.example\n\n", 400),
        (
            b"GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: other.example\r\n\r\n", 400),
        (b"GET https://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n", 400),
        (b"GET http://allowed.example/ HTTP/2.0\r\nHost: allowed.example\r\n\r\n", 505),
        (b"CONNECT allowed.example HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"CONNECT allowed.example:0 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"CONNECT allowed.example:99999 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"CONNECT allowed.example:80 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        (b"\x00\x00\x00\x00\r\n\r\n", 400),
    ],
)
def test_n02_odd_requests_are_rejected(
    proxy: ProxyUnderTest, server: LocalServer, request_bytes: bytes, status: int
) -> None:
    response = _exchange(proxy, request_bytes)
    assert _status(response) == status, response
    assert server.received == []
    assert proxy.resolved == []


def test_n08_plain_http_host_header_is_replaced_by_the_target(
    proxy: ProxyUnderTest, server: LocalServer
) -> None:
    response = _exchange(proxy, b"GET http://allowed.example/ HTTP/1.1\r\nHost: attacker.example\r\n\r\n")
    assert _status(response) == 200
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["headers"]["host"] == "allowed.example"


# -- N09: resolved addresses ------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"])
def test_n09_allowed_name_resolving_to_a_special_address_is_refused(address: str) -> None:
    policy = HostPolicy.from_config(source="test", allow=["rebind.example"])
    running = start_proxy(policy, {"rebind.example": (address, 80)})
    try:
        response = _exchange(running, b"CONNECT rebind.example:80 HTTP/1.1\r\nHost: h\r\n\r\n")
        assert _status(response) == 403
        [(host, port, reason)] = running.violations
        assert (host, port) == ("rebind.example", 80)
        assert "not explicitly allowed" in reason
    finally:
        running.proxy.close()


def test_n09_ip_literal_of_host_loopback_is_refused_even_if_decide_says_yes(server: LocalServer) -> None:
    running = start_proxy(HostPolicy(), {}, decide=lambda host, port: True)
    try:
        response = _exchange(running, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: h\r\n\r\n" % server.port)
        assert _status(response) == 403
        response = _exchange(running, b"CONNECT [::ffff:7f00:1]:%d HTTP/1.1\r\nHost: h\r\n\r\n" % server.port)
        assert _status(response) == 403
        assert server.received == []
    finally:
        running.proxy.close()


# -- decisions: fail closed, resolve only after allow (X02) ------------------------------------------


def test_x02_names_are_resolved_only_after_they_are_allowed(proxy: ProxyUnderTest) -> None:
    _exchange(proxy, b"CONNECT secret-data.attacker.example:443 HTTP/1.1\r\nHost: h\r\n\r\n")
    _socks_connect(proxy.port, b"more-secret.attacker.example", 443)
    assert proxy.resolved == []
    _connect_tunnel(proxy, "allowed.example:80").close()
    assert proxy.resolved == ["allowed.example"]


def test_no_answer_in_time_means_deny(server: LocalServer) -> None:
    release = threading.Event()

    def slow_decide(host: str, port: int) -> bool:
        release.wait(10)
        return True

    running = start_proxy(
        HostPolicy(),
        {"slow.example": ("127.0.0.1", server.port)},
        decide=slow_decide,
        timeouts=ProxyTimeouts(decide=0.3, connect=5, header=2, idle=10),
    )
    try:
        started = time.monotonic()
        response = _exchange(running, b"CONNECT slow.example:80 HTTP/1.1\r\nHost: h\r\n\r\n")
        assert _status(response) == 403
        assert time.monotonic() - started < 3
        assert "no decision within" in running.violations[0][2]
    finally:
        release.set()
        running.proxy.close()


@pytest.mark.parametrize("answer", [RuntimeError("boom"), "yes", 1, None])
def test_errors_and_non_true_answers_mean_deny(server: LocalServer, answer: object) -> None:
    def decide(host: str, port: int) -> bool:
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    running = start_proxy(HostPolicy(), {"a.example": ("127.0.0.1", server.port)}, decide=decide)
    try:
        assert _status(_exchange(running, b"CONNECT a.example:80 HTTP/1.1\r\nHost: h\r\n\r\n")) == 403
        assert server.received == []
    finally:
        running.proxy.close()


# -- SOCKS5 -------------------------------------------------------------------------------------------


def _socks_connect(
    port: int, host: bytes, target_port: int, *, address_type: int = 3, command: int = 1
) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"\x05\x01\x00")
        assert client.recv(2) == b"\x05\x00"
        address = bytes((len(host),)) + host if address_type == 3 else host
        client.sendall(bytes((5, command, 0, address_type)) + address + struct.pack("!H", target_port))
        reply = b""
        while len(reply) < 10:
            chunk = client.recv(10 - len(reply))
            if not chunk:
                break
            reply += chunk
        return reply


def test_socks5_domain_connect_and_refusals(proxy: ProxyUnderTest, server: LocalServer) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
        client.sendall(b"\x05\x01\x00")
        assert client.recv(2) == b"\x05\x00"
        client.sendall(b"\x05\x01\x00\x03\x0fallowed.example\x00\x50")
        assert client.recv(10)[:2] == b"\x05\x00"
        client.sendall(b"GET /socks HTTP/1.1\r\nHost: allowed.example\r\nConnection: close\r\n\r\n")
        assert _status(_receive_all(client)) == 200
    assert server.received[0].path == "/socks"
    assert _socks_connect(proxy.port, b"other.example", 80)[1] == 0x02
    assert ("other.example", 80, "denied") in proxy.violations


def test_socks5_address_literals_go_through_the_same_policy(
    proxy: ProxyUnderTest, server: LocalServer
) -> None:
    assert _socks_connect(proxy.port, socket.inet_aton("10.1.2.3"), 80, address_type=1)[1] == 0x02
    assert _socks_connect(proxy.port, socket.inet_pton(socket.AF_INET6, "::1"), 80, address_type=4)[1] == 0x02
    assert ("10.1.2.3", 80) in proxy.decisions and ("::1", 80) in proxy.decisions
    ok = _socks_connect(proxy.port, socket.inet_aton("127.0.0.1"), server.port, address_type=1)
    assert ok[1] == 0x00


def test_socks5_unsupported_requests(proxy: ProxyUnderTest) -> None:
    assert _socks_connect(proxy.port, b"allowed.example", 80, command=2)[1] == 0x07  # BIND
    assert _socks_connect(proxy.port, b"allowed.example", 80, command=3)[1] == 0x07  # UDP ASSOCIATE
    assert _socks_connect(proxy.port, b"\x00" * 4, 80, address_type=9)[1] == 0x08
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
        client.sendall(b"\x05\x01\x02")  # username/password only
        assert client.recv(2) == b"\x05\xff"
    assert proxy.resolved == []


# -- robustness --------------------------------------------------------------------------------------


def test_oversized_request_line_and_head(proxy: ProxyUnderTest) -> None:
    long_line = b"GET http://allowed.example/" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"
    assert _status(_exchange(proxy, long_line)) == 414
    huge_head = b"GET http://allowed.example/ HTTP/1.1\r\n" + b"X-Pad: " + b"b" * 4000 + b"\r\n"
    assert _status(_exchange(proxy, huge_head * 1 + (b"X-Pad: " + b"b" * 4000 + b"\r\n") * 20)) == 431
    assert proxy.resolved == []


def test_slow_client_gets_408_and_is_closed(server: LocalServer) -> None:
    running = start_proxy(
        HostPolicy.from_config(source="test", allow=["allowed.example", "127.0.0.1"]),
        {"allowed.example": ("127.0.0.1", server.port)},
        timeouts=ProxyTimeouts(decide=5, connect=5, header=0.5, idle=10),
    )
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as client:
            client.sendall(b"CONNECT allowed.example:80 HTTP/1.1\r\n")
            started = time.monotonic()
            response = _receive_all(client)
            assert _status(response) == 408
            assert time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as client:
            client.sendall(b"\x05")  # a SOCKS greeting that never ends
            assert _receive_all(client) == b""
        assert running.proxy.open_connections == 0
    finally:
        running.proxy.close()


def test_idle_tunnel_is_closed() -> None:
    with echo_server() as port:
        running = start_proxy(
            HostPolicy.from_config(source="test", allow=["echo.example", "127.0.0.1"]),
            {"echo.example": ("127.0.0.1", port)},
            timeouts=ProxyTimeouts(decide=5, connect=5, header=2, idle=0.5),
        )
        try:
            tunnel = _connect_tunnel(running, "echo.example:7")
            started = time.monotonic()
            assert _receive_all(tunnel, timeout=5) == b""
            assert time.monotonic() - started < 4
            tunnel.close()
        finally:
            running.proxy.close()


def test_client_that_disconnects_early_is_cleaned_up(proxy: ProxyUnderTest) -> None:
    for data in (b"", b"CONN", b"\x05\x01"):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            client.sendall(data)
    deadline = time.monotonic() + 5
    while proxy.proxy.open_connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.proxy.open_connections == 0


def test_closing_the_proxy_cuts_tunnels_and_refuses_new_connections() -> None:
    with echo_server() as port:
        running = start_proxy(
            HostPolicy.from_config(source="test", allow=["echo.example", "127.0.0.1"]),
            {"echo.example": ("127.0.0.1", port)},
        )
        tunnel = _connect_tunnel(running, "echo.example:7")
        running.proxy.close()
        assert _receive_all(tunnel, timeout=5) == b""
        tunnel.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", running.port), timeout=5)


def test_unreachable_destination_is_a_502_not_a_violation() -> None:
    spare = socket.create_server(("127.0.0.1", 0))
    closed_port = spare.getsockname()[1]
    spare.close()
    running = start_proxy(
        HostPolicy.from_config(source="test", allow=["down.example", "127.0.0.1"]),
        {"down.example": ("127.0.0.1", closed_port)},
    )
    try:
        assert _status(_exchange(running, b"CONNECT down.example:80 HTTP/1.1\r\nHost: h\r\n\r\n")) == 502
        assert _status(_exchange(running, b"CONNECT nowhere.example:80 HTTP/1.1\r\nHost: h\r\n\r\n")) == 403
        assert running.violations == [("nowhere.example", 80, "denied")]
    finally:
        running.proxy.close()


def test_a_failing_violation_callback_does_not_open_anything(server: LocalServer) -> None:
    def broken(host: str, port: int, reason: str) -> None:
        raise RuntimeError("boom")

    proxy = EgressProxy(lambda host, port: False, on_violation=broken)
    listener = socket.create_server(("127.0.0.1", 0))
    proxy.serve(listener)
    try:
        response = _exchange(
            ProxyUnderTest(proxy, listener.getsockname()[1], HostPolicy(), [], [], []),
            b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: h\r\n\r\n" % server.port,
        )
        assert _status(response) == 403
    finally:
        proxy.close()
