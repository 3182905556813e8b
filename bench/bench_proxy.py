"""Benchmark: corral's egress proxy against a direct connection on loopback.

Prints a table with the throughput of a 200 MB download (median of 5) and the connection set-up
latency (median of 200), direct and through the proxy, and their ratio. The server and the client run
in their own processes, the proxy in this one, as in corral (the proxy lives in corral's process).

Run: .venv/bin/python bench/bench_proxy.py [--megabytes 200] [--runs 5] [--connections 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.egress.proxy import EgressProxy

CHUNK = 1024 * 1024


def serve(megabytes: int) -> None:
    """Server process: port A sends `megabytes` MB per connection, port B sends one byte."""
    payload = memoryview(bytes(CHUNK))
    bulk = socket.create_server(("127.0.0.1", 0), backlog=256)
    ping = socket.create_server(("127.0.0.1", 0), backlog=256)

    def send_bulk(connection: socket.socket) -> None:
        with connection:
            for _ in range(megabytes):
                connection.sendall(payload)

    def accept(listener: socket.socket, handler: Callable[[socket.socket], None]) -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=handler, args=(connection,), daemon=True).start()

    def send_ping(connection: socket.socket) -> None:
        with connection:
            connection.sendall(b"!")
            connection.recv(1)

    threading.Thread(target=accept, args=(bulk, send_bulk), daemon=True).start()
    threading.Thread(target=accept, args=(ping, send_ping), daemon=True).start()
    print(bulk.getsockname()[1], ping.getsockname()[1], flush=True)
    sys.stdin.read()


def serve_http(payload: Path) -> None:
    """HTTP server process: `GET /big` sends `payload` (with sendfile), `GET /small` one byte; one
    request per connection (`Connection: close`), as a plain origin server for curl."""
    size = payload.stat().st_size
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)

    def answer(connection: socket.socket) -> None:
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                data = connection.recv(65536)
                if not data:
                    return
                head += data
            path = head.split(b" ", 2)[1]
            length = size if path.endswith(b"/big") else 1
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % length)
            if length == 1:
                connection.sendall(b"!")
                return
            with payload.open("rb") as source:
                connection.sendfile(source)

    def accept() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print(listener.getsockname()[1], flush=True)
    sys.stdin.read()


@contextlib.contextmanager
def serve_http_process(payload: Path) -> Iterator[int]:
    """`serve_http` in its own process (as a real server is); yields its port."""
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve-http", str(payload)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    try:
        yield int(server.stdout.readline())
    finally:
        server.terminate()
        server.wait()


def _open(port: int, proxy_port: int | None) -> socket.socket:
    if proxy_port is None:
        sock = socket.create_connection(("127.0.0.1", port))
    else:
        sock = socket.create_connection(("127.0.0.1", proxy_port))
        sock.sendall(b"CONNECT bench.example:%d HTTP/1.1\r\nHost: bench.example\r\n\r\n" % port)
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += sock.recv(1)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def client(mode: str, port: int, proxy_port: int | None, count: int) -> None:
    """Client process: prints seconds for one bulk download, or `count` set-up latencies."""
    if mode == "bulk":
        sock = _open(port, proxy_port)
        buffer = bytearray(CHUNK)
        total = 0
        started = time.perf_counter()
        while received := sock.recv_into(buffer):
            total += received
        print(time.perf_counter() - started, total, flush=True)
        return
    for _ in range(count):
        started = time.perf_counter()
        sock = _open(port, proxy_port)
        sock.recv(1)
        print(time.perf_counter() - started, flush=True)
        sock.close()


def _run_client(mode: str, port: int, proxy_port: int | None, count: int = 1) -> list[str]:
    arguments = [sys.executable, __file__, "--client", mode, str(port), str(proxy_port or 0), str(count)]
    output = subprocess.run(arguments, check=True, capture_output=True, text=True).stdout
    return output.split("\n")[:-1]


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-http", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_http is not None:
        serve_http(Path(arguments.serve_http))
        return
    if arguments.serve is not None:
        serve(arguments.serve)
        return
    if arguments.client:
        mode, port, proxy_port, count = arguments.client
        client(mode, int(port), int(proxy_port) or None, int(count))
        return

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(arguments.megabytes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    bulk_port, ping_port = (int(value) for value in server.stdout.readline().split())
    proxy = EgressProxy(
        lambda host, port: host == "bench.example",
        lambda host, port: [("127.0.0.1", port)],  # the benchmark name stands for the local server
        is_address_allowed=lambda address: str(address) == "127.0.0.1",
    )
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    proxy_port = listener.getsockname()[1]
    proxy.serve(listener)
    try:
        rows = []
        size = arguments.megabytes * CHUNK
        throughput: dict[str, float] = {}
        for label, via in (("direct", None), ("proxied", proxy_port)):
            seconds = []
            for _ in range(arguments.runs):
                elapsed, received = _run_client("bulk", bulk_port, via)[0].split()
                assert int(received) == size, (received, size)
                seconds.append(float(elapsed))
            throughput[label] = size / statistics.median(seconds) / 1e6
        latency: dict[str, float] = {}
        for label, via in (("direct", None), ("proxied", proxy_port)):
            samples = [float(line) for line in _run_client("ping", ping_port, via, arguments.connections)]
            latency[label] = statistics.median(samples) * 1000
        rows.append(
            (
                f"throughput, {arguments.megabytes} MiB (MB/s, median of {arguments.runs})",
                f"{throughput['direct']:.0f}",
                f"{throughput['proxied']:.0f}",
                f"{throughput['proxied'] / throughput['direct']:.1%}",
            )
        )
        rows.append(
            (
                f"connection set-up (ms, median of {arguments.connections})",
                f"{latency['direct']:.3f}",
                f"{latency['proxied']:.3f}",
                f"{latency['proxied'] / latency['direct']:.1f}x",
            )
        )
        header = ("measure", "direct", "proxied", "proxied/direct")
        widths = [max(len(row[index]) for row in [header, *rows]) for index in range(4)]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    finally:
        proxy.close()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
