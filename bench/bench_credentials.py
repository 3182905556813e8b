"""Benchmark: what credential brokering costs per HTTPS request, against a plain CONNECT tunnel.

One local TLS server on 127.0.0.1 answers under two names: a brokered one (the proxy terminates TLS
with the session CA, checks and rewrites the head, re-encrypts upstream) and a plain one (the proxy
only tunnels). Each request is a new connection: CONNECT, TLS handshake, one GET with the placeholder,
the response read whole. Rounds alternate the two modes (interleaved); medians and ranges per request.

Run: .venv/bin/python bench/bench_credentials.py [--rounds 10] [--requests 20]
"""

from __future__ import annotations

import argparse
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.egress.credentials import BrokeredCredential, CredentialBroker
from sandbox.egress.hostpolicy import HostPolicy
from sandbox.egress.intercept import Interceptor
from sandbox.egress.sessionca import SessionCA
from tests.test_egress_fixtures import http_server, make_certificate, start_proxy

BROKERED = "api.brokered.example"
PLAIN = "api.plain.example"


def one_request(port: int, host: str, context: ssl.SSLContext, placeholder: str) -> float:
    started = time.perf_counter()
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += client.recv(1)
    tls = context.wrap_socket(client, server_hostname=host)
    tls.sendall(
        f"GET /user HTTP/1.1\r\nHost: {host}\r\nAuthorization: token {placeholder}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    while tls.recv(65536):
        pass
    tls.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp())
    certificate = make_certificate(directory, BROKERED, PLAIN)
    credential = BrokeredCredential("bench", (BROKERED,), "Authorization", "token", "s3cret-value")
    broker = CredentialBroker([credential])
    authority = SessionCA(broker.hosts)
    bundle = directory / "bundle.pem"
    bundle.write_bytes(authority.certificate_pem() + certificate.cert.read_bytes())
    client_context = ssl.create_default_context(cafile=str(bundle))
    interceptor = Interceptor(broker, authority, upstream_context=certificate.client_context())
    with http_server(certificate.server_context()) as server:
        policy = HostPolicy.from_config(source="bench", allow=[BROKERED, PLAIN, "127.0.0.1"])
        names = {BROKERED: ("127.0.0.1", server.port), PLAIN: ("127.0.0.1", server.port)}
        running = start_proxy(policy, names, tunnel_hook=interceptor)
        samples: dict[str, list[float]] = {PLAIN: [], BROKERED: []}
        try:
            for _ in range(3):  # warm-up: leaf certificate made, modules loaded
                one_request(running.port, BROKERED, client_context, credential.placeholder)
            for round_index in range(args.rounds):
                order = (PLAIN, BROKERED) if round_index % 2 == 0 else (BROKERED, PLAIN)
                for host in order:
                    samples[host] += [
                        one_request(running.port, host, client_context, credential.placeholder)
                        for _ in range(args.requests)
                    ]
        finally:
            running.proxy.close()
    print(f"{'mode':<34} {'median ms':>10} {'min ms':>8} {'max ms':>8}  n")
    for host, label in ((PLAIN, "plain CONNECT tunnel"), (BROKERED, "brokered (TLS terminated)")):
        values = [v * 1000 for v in samples[host]]
        print(
            f"{label:<34} {statistics.median(values):>10.2f} {min(values):>8.2f} {max(values):>8.2f}"
            f"  {len(values)}"
        )
    ratio = statistics.median(samples[BROKERED]) / statistics.median(samples[PLAIN])
    print(f"brokered / plain (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
