"""Fuzzing the broker's protocol (hypothesis): whatever bytes a same-user process sends, the decoder
only returns a message or raises ProtocolError, and a live session answers garbage with at most one
`error` frame, closes that connection, and keeps serving real commands afterwards (the Session is
never reached: nobody is asked, nothing runs).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from corral.broker import address, client, protocol
from corral.broker.server import BrokerServer, SessionHost
from corral.decision import Decision, PromptRequest, Scope
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import compose_session

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
FIELDS = st.sampled_from(["type", "argv", "text", "cwd", "description", "timeout_s", "env", "version", "x"])
RUN_LIKE = st.dictionaries(FIELDS, JSON, max_size=6).map(lambda d: {**d, "type": "run"})


RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Two shared cores: generation time varies with the other work on the machine, not with the code."""


@RELAXED
@given(st.binary(max_size=2048))
def test_decode_returns_a_message_or_refuses(data: bytes) -> None:
    try:
        message = protocol.decode(data)
    except protocol.ProtocolError:
        return
    assert isinstance(message, dict) and isinstance(message["type"], str)


@RELAXED
@given(RUN_LIKE)
def test_validate_run_returns_a_request_or_refuses(message: dict[str, Any]) -> None:
    try:
        request = protocol.validate_run(message)
    except protocol.ProtocolError as error:
        assert "\n" not in str(error)
        return
    assert (request.argv is None) != (request.text is None)
    assert protocol.validate_run(request.to_message()) == request


def test_oversized_lines_are_refused_without_reading_them_whole() -> None:
    with pytest.raises(protocol.ProtocolError, match="too long"):
        protocol.decode(b"{" + b" " * protocol.MAX_LINE + b"}")
    with pytest.raises(protocol.ProtocolError, match="too long"):
        protocol.encode({"type": "run", "text": "x" * protocol.MAX_LINE})


class Nobody:
    def __init__(self) -> None:
        self.requests: list[PromptRequest] = []

    def __call__(self, request: PromptRequest) -> Decision:
        self.requests.append(request)
        return Decision(Scope.DENY)


def _exchange(path: Path, payload: bytes) -> list[dict[str, Any]]:
    """Send `payload`, then read what comes back until the server closes (bounded in time)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(15)
    sock.connect(str(path))
    try:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
    finally:
        sock.close()
    return [json.loads(line) for line in raw.splitlines()]


HELLO = protocol.encode({"type": "hello", "version": protocol.VERSION})


def _invalid_run(message: dict[str, Any]) -> bytes:
    try:
        protocol.validate_run(message)
    except protocol.ProtocolError:
        return json.dumps(message).encode() + b"\n"
    assume(False)
    return b""


PAYLOADS = st.one_of(
    st.binary(max_size=512),
    st.binary(max_size=512).map(lambda b: HELLO + b),
    JSON.map(lambda v: json.dumps(v).encode() + b"\n"),
    RUN_LIKE.map(_invalid_run).map(lambda b: HELLO + b),
    st.integers(min_value=0, max_value=3).map(
        lambda n: b'{"type":"hello","version":' + str(n).encode() + b"}\n"
    ),
)


def test_a_live_session_survives_malformed_and_oversized_messages(isolated_home: Path) -> None:
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    locations = Locations.default()
    nobody = Nobody()
    session = compose_session(
        workspace, locations=locations, ask=nobody, frontend="test", on_violation=OnViolation.ASK
    )
    server = BrokerServer(workspace, locations.runtime_dir, SessionHost(lambda: session), frontend="test")
    path = address.socket_path(locations.runtime_dir, workspace)
    examples = [0]

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(PAYLOADS)
    def fuzz(payload: bytes) -> None:
        examples[0] += 1
        frames = _exchange(path, payload)
        kinds = [frame["type"] for frame in frames]
        assert kinds in ([], ["error"], ["hello"], ["hello", "error"]), kinds

    with server:
        fuzz()
        started = time.monotonic()
        frames = _exchange(path, HELLO + b"{" + b"x" * (protocol.MAX_LINE + 100))
        assert [f["type"] for f in frames] == ["hello", "error"]
        assert "too long" in frames[1]["message"]
        assert time.monotonic() - started < 10
        sock = client.connect(locations.runtime_dir, workspace)
        assert sock is not None
        out: list[bytes] = []
        result = client.run(
            sock, protocol.RunRequest(argv=("echo", "alive")), on_output=lambda _s, d: out.append(d)
        )
        assert result.status == 0 and out == [b"alive\n"]
    session.close()
    assert examples[0] >= 100
    assert nobody.requests == []
