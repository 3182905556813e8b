"""Issue 5 end to end through the real sandbox: the proxy is the only way out, allowed hosts work with no
prompt, other hosts fail with a `net` violation, raw sockets find no route."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.command import Command
from corral.decision import Decision, Scope
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import compose_session
from corral.session import Session
from sandbox.egress.hostpolicy import HostPolicy
from sandbox.egress.proxy import static_resolver
from sandbox.runner import StdioSpec

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the test internet\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[int, list[str]]]:
    hits: list[str] = []

    class Handler(_Hello):
        def do_GET(self) -> None:
            hits.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    return ws


def _session(
    workspace: Path,
    port: int,
    allow: list[str],
    ask: object = None,
    proxy_port: int = 3128,
    ask_timeout_s: float = 300.0,
) -> Session:
    hosts = HostPolicy.from_config(source="test", allow=allow)
    resolver = static_resolver({"allowed.example": ("127.0.0.1", port), "other.example": ("127.0.0.1", port)})
    return compose_session(
        workspace,
        locations=Locations.default(),
        hosts=hosts,
        resolver=resolver,
        ask=ask,  # type: ignore[arg-type]
        on_violation=OnViolation.ASK if ask else OnViolation.DENY,
        proxy_port=proxy_port,
        ask_timeout_s=ask_timeout_s,
    )


def _run(session: Session, script: str, tmp_path: Path) -> tuple[int, str, object]:
    out = tmp_path / "out.txt"
    with out.open("wb") as handle:
        outcome = session.run(
            Command.from_argv(["/bin/sh", "-c", script]),
            stdio=StdioSpec(stdout=handle.fileno(), stderr=handle.fileno()),
        )
    return outcome.exit_code, out.read_text(), outcome


def test_allowed_host_works_without_a_prompt(
    workspace: Path, web: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, hits = web
    asked: list[object] = []
    session = _session(
        workspace, port, ["allowed.example", "127.0.0.1"], ask=lambda request: asked.append(request)
    )
    code, text, outcome = _run(
        session,
        f"curl -sS -f http://allowed.example:{port}/a && curl -sS -f -p http://allowed.example:{port}/b",
        tmp_path,
    )
    assert code == 0, text
    assert text.count("hello from the test internet") == 2
    assert hits == ["/a", "/b"]
    assert asked == []
    assert outcome.outcomes == []  # type: ignore[attr-defined]


def test_other_host_is_denied_with_a_net_violation(
    workspace: Path, web: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, hits = web
    session = _session(workspace, port, ["allowed.example", "127.0.0.1"])
    code, _text, outcome = _run(session, f"curl -sS -f http://other.example:{port}/secret", tmp_path)
    assert code != 0
    assert hits == []
    report = outcome.report()  # type: ignore[attr-defined]
    assert [(v["kind"], v["target"], v["decision"]) for v in report["violations"]] == [
        ("net", f"other.example:{port}", "deny")
    ]


def test_new_host_is_asked_live_and_the_answer_is_honoured(
    workspace: Path, web: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, hits = web
    asked: list[object] = []

    def ask(request: object) -> Decision:
        asked.append(request)
        return Decision(Scope.SESSION)

    session = _session(workspace, port, ["127.0.0.1"], ask=ask)
    code, text, _ = _run(
        session,
        f"curl -sS -f http://other.example:{port}/x; curl -sS -f http://other.example:{port}/y",
        tmp_path,
    )
    assert code == 0, text
    assert hits == ["/x", "/y"]
    assert len(asked) == 1  # decided once for the session


def test_allowed_name_resolving_to_loopback_is_refused_without_explicit_address(
    workspace: Path, web: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, hits = web
    session = _session(workspace, port, ["allowed.example"])
    code, _text, _ = _run(session, f"curl -sS -f http://allowed.example:{port}/", tmp_path)
    assert code != 0
    assert hits == []


def test_raw_sockets_reach_nothing_unasked(
    workspace: Path, web: tuple[int, list[str]], tmp_path: Path
) -> None:
    """The sandbox's own loopback is not the host's; a connect that ignores the proxy is accepted by
    corral's transparent listener, decided (no terminal: denied) and reset before a byte is answered."""
    port, hits = web
    session = _session(workspace, port, ["allowed.example", "127.0.0.1"])
    script = (
        "python3 - <<'EOF'\n"
        "import socket\n"
        f"for target in [('127.0.0.1', {port}), ('1.1.1.1', 80), ('::1', {port})]:\n"
        "    try:\n"
        "        s = socket.create_connection(target, timeout=2)\n"
        "        s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
        "        s.settimeout(5)\n"
        "        print('ANSWERED' if s.recv(10) else 'closed', target)\n"
        "    except OSError as e:\n"
        "        print('refused', target, e.errno)\n"
        "EOF"
    )
    _code, text, outcome = _run(session, script, tmp_path)
    assert "ANSWERED" not in text
    assert hits == []
    assert [o.violation.target for o in outcome.denied] == ["1.1.1.1:80"]  # type: ignore[attr-defined]


def test_proxy_gone_means_no_network(workspace: Path, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    session = _session(workspace, port, ["allowed.example", "127.0.0.1"], proxy_port=3129)
    # the proxy listens on 3129 inside the sandbox: nothing listens on 3128
    _code, text, _ = _run(
        session, "curl -sS -f -x http://127.0.0.1:3128 http://allowed.example/ ; echo rc=$?", tmp_path
    )
    assert "rc=0" not in text


def test_a_late_answer_for_a_refused_connection_stores_no_rule(
    workspace: Path, web: tuple[int, list[str]], tmp_path: Path
) -> None:
    """Through the real proxy: the connection is refused at the core's deadline, the prompt is
    dismissed, and the person's late "allow for this project" stores nothing."""
    from corral.decision import PromptRequest
    from corral.rules import RuleStore

    port, hits = web
    dismissed: list[bool] = []

    def late(request: PromptRequest) -> Decision:
        dismissed.append(request.cancelled.wait(6.0))
        return Decision(Scope.PROJECT)

    session = _session(workspace, port, ["127.0.0.1"], ask=late, ask_timeout_s=1.0)
    code, _text, outcome = _run(session, f"curl -sS -f --max-time 20 http://other.example:{port}/x", tmp_path)
    session.close()
    assert code != 0
    assert hits == []
    assert dismissed == [True]
    with RuleStore.open(Locations.default().rules_path) as rules:
        assert rules.list(workspace) == []
    report = outcome.report()  # type: ignore[attr-defined]
    assert [(v["kind"], v["decision"]) for v in report["violations"]] == [("net", "deny")]
