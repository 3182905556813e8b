"""A malformed proxy request (user information, `@`, a bad port) is refused *and* reported as a `net`
violation (`EgressProxy._malformed`): first against the proxy on the host, then from inside the real
sandbox, as root and as an unprivileged user, where the refusal must reach the denial lines.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sandbox.egress.hostpolicy import HostPolicy
from tests.conftest import Actor
from tests.test_egress_fixtures import ProxyUnderTest, start_proxy


@pytest.fixture
def proxy() -> Iterator[ProxyUnderTest]:
    policy = HostPolicy.from_config(source="test", allow=["allowed.example"], deny=[])
    running = start_proxy(policy, {"allowed.example": ("127.0.0.1", 9)})
    yield running
    running.proxy.close()


def _exchange(proxy: ProxyUnderTest, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := client.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_line", "host", "port"),
    [
        (b"CONNECT evil.example@allowed.example:443", "'evil.example@allowed.example'", 443),
        (b"CONNECT user:pass@allowed.example:443", "'user:pass@allowed.example'", 443),
        (b"GET http://user@allowed.example/ ", "'user@allowed.example'", 0),
        (b"GET http://allowed.example@evil.example:8080/x ", "'allowed.example@evil.example'", 8080),
        (b"CONNECT allowed.example:99999", "'allowed.example:99999'", 0),
    ],
)
def test_malformed_destination_is_refused_and_reported(
    proxy: ProxyUnderTest, request_line: bytes, host: str, port: int
) -> None:
    line = request_line if request_line.endswith(b" ") else request_line + b" "
    response = _exchange(proxy, line + b"HTTP/1.1\r\nHost: h\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400")
    assert len(proxy.violations) == 1
    reported_host, reported_port, reason = proxy.violations[0]
    assert (reported_host, reported_port) == (host, port)
    assert reason.startswith("malformed request")
    assert proxy.decisions == []  # never asked about, never resolved
    assert proxy.resolved == []


PROBE = """
import socket
with socket.create_connection(("127.0.0.1", 3128), timeout=5) as s:
    s.sendall(b"CONNECT evil.example@pypi.org:443 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    print(s.recv(200).split(b"\\r\\n")[0].decode())
"""


def test_malformed_request_from_the_sandbox_is_a_net_violation(actor: Actor) -> None:
    (actor.workspace / "probe.py").write_text(PROBE)
    actor.chown_tree(actor.workspace)
    result = actor.sandboxed("python3 probe.py")
    assert "HTTP/1.1 400" in result.stdout, result.stdout + result.stderr
    assert "denied net 'evil.example@pypi.org':443" in result.stderr
    assert result.returncode == 77
