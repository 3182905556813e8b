"""Static answers decided on the connection's own thread (issue 14 item 5), and the relay's splice
path moving a large transfer intact both ways. Real sockets on 127.0.0.1; no sandbox needed."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from sandbox.egress.proxy import EgressProxy
from sandbox.egress.relay import relay
from tests.test_egress_fixtures import echo_server


def _connect_via(proxy_port: int, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=5) as client:
        client.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                break
            head += chunk
        if head.startswith(b"HTTP/1.1 200"):
            client.sendall(b"ping")
            client.shutdown(socket.SHUT_WR)
            while chunk := client.recv(4096):
                head += chunk
        return head


@pytest.fixture
def echo_port() -> Iterator[int]:
    with echo_server() as port:
        yield port


def _proxy(decide_now: Callable[[str, int], bool | None], asked: list[str]) -> tuple[EgressProxy, int]:
    def decide(host: str, port: int) -> bool:
        asked.append(threading.current_thread().name)
        return True

    proxy = EgressProxy(
        decide,
        lambda host, port: [("127.0.0.1", port)],
        is_address_allowed=lambda address: str(address) == "127.0.0.1",
        decide_now=decide_now,
    )
    listener = socket.create_server(("127.0.0.1", 0))
    proxy.serve(listener)
    return proxy, listener.getsockname()[1]


def test_a_static_allow_is_decided_on_the_connections_thread(echo_port: int) -> None:
    asked: list[str] = []
    seen: list[str] = []

    def decide_now(host: str, port: int) -> bool | None:
        seen.append(threading.current_thread().name)
        return True if host == "listed.example" else None

    proxy, port = _proxy(decide_now, asked)
    with proxy:
        answer = _connect_via(port, f"listed.example:{echo_port}")
        assert answer.endswith(b"echo:ping"), answer
        assert asked == []  # no hop to a decide thread
        assert seen == ["corral-egress-conn"]
        answer = _connect_via(port, f"unlisted.example:{echo_port}")
        assert answer.endswith(b"echo:ping"), answer
        assert asked == ["corral-egress-decide"]  # the slow path still asks


def test_a_static_deny_or_a_failing_fast_path_refuses_without_asking(echo_port: int) -> None:
    asked: list[str] = []

    def decide_now(host: str, port: int) -> bool | None:
        if host == "broken.example":
            raise RuntimeError("the table is broken")
        return False

    proxy, port = _proxy(decide_now, asked)
    with proxy:
        assert _connect_via(port, f"denied.example:{echo_port}").startswith(b"HTTP/1.1 403")
        assert _connect_via(port, f"broken.example:{echo_port}").startswith(b"HTTP/1.1 403")
        assert asked == []


def test_relay_moves_a_large_transfer_intact_in_both_directions() -> None:
    size = 24 * 1024 * 1024
    payload = os.urandom(1024 * 1024) * 24
    client_end, client_proxy = socket.socketpair()
    upstream_proxy, upstream_end = socket.socketpair()
    for sock in (client_end, client_proxy, upstream_proxy, upstream_end):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
    results: dict[str, str] = {}

    def send_and_read(sock: socket.socket, name: str) -> None:
        def write() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        writer = threading.Thread(target=write)
        writer.start()
        digest = hashlib.sha256()
        received = 0
        while chunk := sock.recv(1 << 20):
            digest.update(chunk)
            received += len(chunk)
        writer.join()
        results[name] = f"{received}:{digest.hexdigest()}"

    ends = [
        threading.Thread(target=send_and_read, args=(client_end, "client")),
        threading.Thread(target=send_and_read, args=(upstream_end, "upstream")),
    ]
    for end in ends:
        end.start()
    sent = relay(client_proxy, upstream_proxy, idle_timeout_s=30)
    for end in ends:
        end.join(30)
    expected = f"{size}:{hashlib.sha256(payload).hexdigest()}"
    assert results == {"client": expected, "upstream": expected}
    assert sent == (size, size)
