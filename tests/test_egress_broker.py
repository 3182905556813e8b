"""Credential brokering in the proxy: TLS terminated for brokered hosts only, the placeholder replaced in
the mapped header only, another key refused, echoes masked.

Local TLS servers on 127.0.0.1 stand in for the real hosts (mapped only in the proxy's resolver); the
client trusts the session CA's bundle, the proxy trusts the test server's own certificate upstream.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.egress.credentials import BrokeredCredential, CredentialBroker, CredentialRefused, Scrubber
from sandbox.egress.hostpolicy import HostPolicy
from sandbox.egress.intercept import Interceptor
from sandbox.egress.sessionca import SessionCA
from tests.test_egress_fixtures import LocalServer, ProxyUnderTest, http_server, make_certificate, start_proxy

SECRET = "ghp_REALSECRETvalue0123456789abcdefABCD"
API = "api.github.example"
PLAIN = "plain.example"


@dataclass
class Brokered:
    proxy: ProxyUnderTest
    upstream: LocalServer
    plain: LocalServer
    credential: BrokeredCredential
    bundle: Path
    refused: list[tuple[str, int, str]]
    brokered: list[tuple[str, str]]


@pytest.fixture
def brokered(tmp_path: Path) -> Iterator[Brokered]:
    certificate = make_certificate(tmp_path, API, PLAIN)
    credential = BrokeredCredential("github", (API,), "Authorization", "token", SECRET, env=("GH_TOKEN",))
    broker = CredentialBroker([credential])
    authority = SessionCA(broker.hosts)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(authority.bundle_pem())
    refused: list[tuple[str, int, str]] = []
    brokered_log: list[tuple[str, str]] = []
    upstream_context = certificate.client_context()
    interceptor = Interceptor(
        broker,
        authority,
        upstream_context=upstream_context,
        on_refused=lambda host, port, reason: refused.append((host, port, reason)),
        on_brokered=lambda host, port, cred: brokered_log.append((host, cred.name)),
    )
    with http_server(certificate.server_context()) as api, http_server(certificate.server_context()) as plain:
        policy = HostPolicy.from_config(source="test", allow=[API, PLAIN, "127.0.0.1"])
        running = start_proxy(
            policy,
            {API: ("127.0.0.1", api.port), PLAIN: ("127.0.0.1", plain.port)},
            tunnel_hook=interceptor,
        )
        try:
            yield Brokered(running, api, plain, credential, bundle, refused, brokered_log)
        finally:
            running.proxy.close()


def _request(
    setup: Brokered, host: str, raw: bytes, *, cafile: Path | None = None
) -> tuple[int, bytes, ssl.SSLSocket]:
    client = socket.create_connection(("127.0.0.1", setup.proxy.port), timeout=10)
    client.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    context = ssl.create_default_context(cafile=str(cafile or setup.bundle))
    tls = context.wrap_socket(client, server_hostname=host)
    tls.sendall(raw)
    data = b""
    while chunk := tls.recv(65536):
        data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2], tls


def _get(
    setup: Brokered, host: str, headers: str = "", body: bytes = b"", method: str = "GET"
) -> tuple[int, bytes]:
    extra = f"Content-Length: {len(body)}\r\n" if body else ""
    raw = (
        f"{method} /user HTTP/1.1\r\nHost: {host}\r\n{headers}{extra}Connection: close\r\n\r\n".encode()
        + body
    )
    status, payload, _ = _request(setup, host, raw)
    return status, payload


def test_placeholder_becomes_the_secret_in_the_mapped_header_only(brokered: Brokered) -> None:
    placeholder = brokered.credential.placeholder
    body = json.dumps({"note": placeholder}).encode()
    status, payload = _get(
        brokered,
        API,
        f"Authorization: token {placeholder}\r\nX-Echo: {placeholder}\r\nContent-Type: application/json\r\n",
        body,
        method="POST",
    )
    assert status == 200
    (received,) = brokered.upstream.received
    assert received.headers["authorization"] == f"token {SECRET}"
    assert received.headers["x-echo"] == placeholder  # another header: never substituted
    assert received.body == body  # the body echoing the placeholder: never substituted
    assert SECRET.encode() not in payload  # the echo came back masked
    assert brokered.brokered == [(API, "github")]


def test_bearer_and_basic_forms_carry_the_placeholder_too(brokered: Brokered) -> None:
    placeholder = brokered.credential.placeholder
    basic = base64.b64encode(f"x-access-token:{placeholder}".encode()).decode()
    for value in (f"Bearer {placeholder}", f"Basic {basic}", placeholder):
        assert _get(brokered, API, f"Authorization: {value}\r\n")[0] == 200
    assert [r.headers["authorization"] for r in brokered.upstream.received] == [f"token {SECRET}"] * 3


def test_another_key_is_refused_and_reported_without_the_key(brokered: Brokered) -> None:
    planted = "ghp_ATTACKERkey99999999999999999999999"
    for headers in (f"Authorization: token {planted}\r\n", f"X-Api-Key: {planted}\r\n"):
        status, payload = _get(brokered, API, headers)
        assert status == 403
        assert planted.encode() not in payload
    assert brokered.upstream.received == []
    assert [host for host, _, _ in brokered.refused] == [API, API]
    assert all(planted not in reason for _, _, reason in brokered.refused)


def test_a_key_in_a_known_body_field_or_the_url_is_refused(brokered: Brokered) -> None:
    planted = "sk-attacker-0000000000000000"
    body = json.dumps({"api_key": planted, "data": "workspace"}).encode()
    status, _ = _get(brokered, API, "Content-Type: application/json\r\n", body, method="POST")
    assert status == 403
    raw = f"GET /user?access_token={planted} HTTP/1.1\r\nHost: {API}\r\nConnection: close\r\n\r\n".encode()
    assert _request(brokered, API, raw)[0] == 403
    assert brokered.upstream.received == []
    assert len(brokered.refused) == 2


def test_host_header_is_forced_to_the_tunnel_host(brokered: Brokered) -> None:
    placeholder = brokered.credential.placeholder
    raw = (
        f"GET /user HTTP/1.1\r\nHost: attacker.example\r\nAuthorization: token {placeholder}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    assert _request(brokered, API, raw)[0] == 200
    assert brokered.upstream.received[0].headers["host"] == API


def test_unbrokered_hosts_keep_a_plain_tunnel(brokered: Brokered) -> None:
    # The session CA cannot vouch for the plain host: only the server's own certificate verifies.
    with pytest.raises(ssl.SSLCertVerificationError):
        _get(brokered, PLAIN, "Authorization: token anything\r\n")
    certificate_only = brokered.bundle.parent / "cert.pem"
    raw = (
        f"GET /x HTTP/1.1\r\nHost: {PLAIN}\r\nAuthorization: token mine\r\nConnection: close\r\n\r\n".encode()
    )
    status, _, _ = _request(brokered, PLAIN, raw, cafile=certificate_only)
    assert status == 200
    assert brokered.plain.received[0].headers["authorization"] == "token mine"


def test_keep_alive_requests_each_get_checked(brokered: Brokered) -> None:
    placeholder = brokered.credential.placeholder
    first = f"GET /a HTTP/1.1\r\nHost: {API}\r\nAuthorization: token {placeholder}\r\n\r\n".encode()
    second = (
        f"GET /b HTTP/1.1\r\nHost: {API}\r\nAuthorization: token evil\r\nConnection: close\r\n\r\n".encode()
    )
    status, payload, _ = _request(brokered, API, first + second)
    assert status == 200
    assert b"403 Forbidden" in payload
    assert [r.path for r in brokered.upstream.received] == ["/a"]


def test_the_upstream_certificate_is_verified(tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path, API)
    credential = BrokeredCredential("github", (API,), "Authorization", "token", SECRET)
    broker = CredentialBroker([credential])
    authority = SessionCA(broker.hosts)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(authority.bundle_pem())
    interceptor = Interceptor(broker, authority)  # system CAs only: the test server is not trusted
    with http_server(certificate.server_context()) as api:
        running = start_proxy(
            HostPolicy.from_config(source="test", allow=[API, "127.0.0.1"]),
            {API: ("127.0.0.1", api.port)},
            tunnel_hook=interceptor,
        )
        try:
            setup = Brokered(running, api, api, credential, bundle, [], [])
            status, payload = _get(setup, API, f"Authorization: token {credential.placeholder}\r\n")
        finally:
            running.proxy.close()
    assert status == 502
    assert b"certificate" in payload.lower()
    assert api.received == []


def test_curl_through_the_proxy_with_the_bundle(brokered: Brokered) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is needed (Debian package curl)")
    placeholder = brokered.credential.placeholder
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "--proxy",
            f"http://127.0.0.1:{brokered.proxy.port}",
            "--cacert",
            str(brokered.bundle),
            "-H",
            f"Authorization: token {placeholder}",
            f"https://{API}/user",
        ],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert brokered.upstream.received[0].headers["authorization"] == f"token {SECRET}"
    assert SECRET.encode() not in done.stdout + done.stderr


def test_rewrite_head_units() -> None:
    credential = BrokeredCredential("npm", ("registry.npmjs.org",), "Authorization", "bearer", "npm_secret")
    broker = CredentialBroker([credential])
    headers, used = broker.rewrite_head(
        "registry.npmjs.org",
        443,
        b"/-/whoami",
        [(b"authorization", f"Bearer {credential.placeholder}".encode())],
    )
    assert headers == [(b"Authorization", b"Bearer npm_secret")]
    assert used == [credential]
    # Another port of the host is not brokered: nothing is substituted there.
    assert broker.rewrite_head("registry.npmjs.org", 8443, b"/", [(b"authorization", b"Bearer x")])[1] == []
    with pytest.raises(CredentialRefused):
        broker.rewrite_head("registry.npmjs.org", 443, b"/", [(b"private-token", b"glpat-other")])
    broker.check_body("application/json", json.dumps({"token": credential.placeholder}).encode())
    with pytest.raises(CredentialRefused):
        broker.check_body("application/x-www-form-urlencoded", b"a=1&password=hunter2")


def test_body_checks_see_every_key_and_refuse_what_they_cannot_read() -> None:
    credential = BrokeredCredential("npm", ("registry.npmjs.org",), "Authorization", "bearer", "npm_secret")
    broker = CredentialBroker([credential])
    placeholder = credential.placeholder
    # Python keeps the last of two keys; an upstream parser may keep the first (the attacker's).
    with pytest.raises(CredentialRefused):
        broker.check_body(
            "application/json", f'{{"token": "npm_attacker", "token": "{placeholder}"}}'.encode()
        )
    with pytest.raises(CredentialRefused):
        broker.check_body("application/json", b'{"token": "npm_attacker",}')  # lenient parsers take it
    broker.check_body("application/json", b"")  # no body: nothing to check
    broker.check_body("application/json", b'{"outer": {"token": "nested is not a known field"}}')


def test_scrubber_masks_a_secret_split_across_chunks() -> None:
    scrubber = Scrubber([b"SECRET"])
    out = scrubber.feed(b"xxSEC") + scrubber.feed(b"RETyy") + scrubber.flush()
    assert out == b"xx******yy"


def test_plain_http_to_a_brokered_host_is_refused_and_reported(brokered: Brokered) -> None:
    with socket.create_connection(("127.0.0.1", brokered.proxy.port), timeout=5) as client:
        client.sendall(f"GET http://{API}/user HTTP/1.1\r\nHost: {API}\r\n\r\n".encode())
        assert client.recv(100) == b""  # a refused plain request gets no response at all
    assert brokered.upstream.received == []
    assert [(host, port) for host, port, _ in brokered.proxy.violations] == [(API, 80)]
