"""Issue 13 item 2: every network attempt is seen — traffic that ignores the proxy (ssh, psql, raw TCP,
DNS look-ups) is a `net` violation with host and port, asked live, and connects when allowed.

Each test runs the real bubblewrap with the real NAT rules, as root and as the unprivileged test user
(`actor`), through `tests/net_driver.py` (a real corral session whose resolver maps test names to
local servers on 127.0.0.1: nothing reaches the internet).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.egress.interception import find_nft
from tests.conftest import Actor

REPO = Path(__file__).resolve().parent.parent
DRIVER = REPO / "tests" / "net_driver.py"

pytestmark = pytest.mark.skipif(find_nft() is None, reason="nft (Debian package nftables) is not installed")

SSH_CLIENT = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(10)
    banner = s.recv(100)
    s.sendall(b"SSH-2.0-client\\r\\n")
    print("banner", banner.decode().strip() if banner else "none")
    print("echo", s.recv(100).decode().strip())
except OSError as error:
    print("failed", type(error).__name__)
"""

PSQL_CLIENT = """
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((host, port), timeout=10)
    body = struct.pack("!I", 196608) + b"user\\0app\\0\\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    s.settimeout(10)
    reply = s.recv(9)
    print("auth", "ok" if reply[:1] == b"R" and reply[5:9] == b"\\0\\0\\0\\0" else repr(reply))
except OSError as error:
    print("failed", type(error).__name__)
"""


@dataclass
class TcpServer:
    port: int
    received: list[bytes] = field(default_factory=list)


@pytest.fixture
def ssh_like() -> Iterator[TcpServer]:
    """A stand-in for an ssh server: sends a banner, echoes the client's first line."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = TcpServer(listener.getsockname()[1])

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                try:
                    connection.sendall(b"SSH-2.0-test_server\r\n")
                    line = connection.recv(100)
                    server.received.append(line)
                    connection.sendall(b"got " + line)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield server
    listener.close()


@pytest.fixture
def psql_like() -> Iterator[TcpServer]:
    """A stand-in for PostgreSQL: reads a start-up packet, answers AuthenticationOk."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = TcpServer(listener.getsockname()[1])

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                try:
                    server.received.append(connection.recv(100))
                    connection.sendall(b"R\0\0\0\x08\0\0\0\0")
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield server
    listener.close()


def drive(actor: Actor, **spec: Any) -> dict[str, Any]:
    """Run `spec["script"]` in a real session as `actor`; the driver's JSON result."""
    spec.setdefault("workspace", str(actor.workspace))
    command = [sys.executable, str(DRIVER), json.dumps(spec)]
    if actor.uid != os.geteuid():
        command = ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]
    environment = dict(actor.env, PYTHONPATH=str(REPO))
    done = subprocess.run(
        command,
        cwd=actor.workspace,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def client(actor: Actor, name: str, source: str) -> str:
    path = actor.workspace / name
    path.write_text(source)
    actor.chown_path(path)
    return f"python3 {name}"


def net_decisions(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v["target"], v["decision"]) for v in result["report"]["violations"] if v["kind"] == "net"]


def test_ssh_like_client_to_an_allowed_host_connects_and_the_lookup_is_seen(
    actor: Actor, ssh_like: TcpServer
) -> None:
    run = client(actor, "ssh_client.py", SSH_CLIENT)
    result = drive(
        actor,
        allow=["git.example", "127.0.0.1"],
        names={"git.example": ["127.0.0.1", ssh_like.port]},
        script=f"{run} git.example 22",
    )
    assert "banner SSH-2.0-test_server" in result["output"], result
    assert "echo got SSH-2.0-client" in result["output"], result
    assert ssh_like.received == [b"SSH-2.0-client\r\n"]
    assert result["status"] == 0 and result["asked"] == []
    assert "git.example (A)" in result["report"]["lookups"]


def test_ssh_like_client_to_an_unknown_host_is_asked_and_connects_when_allowed(
    actor: Actor, ssh_like: TcpServer
) -> None:
    run = client(actor, "ssh_client.py", SSH_CLIENT)
    result = drive(
        actor,
        allow=["127.0.0.1"],
        names={"git.example": ["127.0.0.1", ssh_like.port]},
        script=f"{run} git.example 22",
        answer="once",
    )
    assert [entry["target"] for entry in result["asked"]] == ["git.example:22"]
    assert "banner SSH-2.0-test_server" in result["output"], result
    assert result["status"] == 0


def test_denied_raw_tcp_is_reset_reported_and_never_reaches_the_server(
    actor: Actor, ssh_like: TcpServer
) -> None:
    run = client(actor, "ssh_client.py", SSH_CLIENT)
    result = drive(
        actor,
        allow=["127.0.0.1"],
        names={"git.example": ["127.0.0.1", ssh_like.port]},
        script=f"{run} git.example 22",
        answer="deny",
    )
    assert "failed ConnectionResetError" in result["output"], result
    assert ssh_like.received == []
    assert net_decisions(result) == [("git.example:22", "deny")]
    assert result["status"] == 77
    assert any("denied net git.example:22" in line for line in result["denials"]), result["denials"]


def test_psql_like_client_reaches_an_allowed_database(actor: Actor, psql_like: TcpServer) -> None:
    run = client(actor, "psql_client.py", PSQL_CLIENT)
    result = drive(
        actor,
        allow=["db.example", "127.0.0.1"],
        names={"db.example": ["127.0.0.1", psql_like.port]},
        script=f"{run} db.example 5432",
    )
    assert "auth ok" in result["output"], result
    assert len(psql_like.received) == 1 and b"user\0app\0" in psql_like.received[0]


def test_a_literal_address_is_asked_as_that_address(actor: Actor, ssh_like: TcpServer) -> None:
    run = client(actor, "ssh_client.py", SSH_CLIENT)
    result = drive(actor, allow=[], script=f"{run} 192.0.2.7 2222", answer="deny")
    assert [entry["target"] for entry in result["asked"]] == ["192.0.2.7:2222"]
    assert "failed ConnectionResetError" in result["output"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_denied_plain_http_fails_loudly_for_curl(actor: Actor) -> None:
    """`curl -s URL && echo UP` never prints UP for a denied host, through the proxy or around it."""
    result = actor.sandboxed(
        "curl -s --max-time 10 http://denied.example/ && echo UP-PROXY; echo rc=$?; "
        "curl -s --noproxy '*' --max-time 10 http://denied.example/ && echo UP-DIRECT; echo rc=$?"
    )
    assert "UP-PROXY" not in result.stdout and "UP-DIRECT" not in result.stdout, result.stdout
    codes = [line for line in result.stdout.splitlines() if line.startswith("rc=")]
    # through the proxy: empty reply (52); around it: the connection is reset (7 or 56, by timing)
    assert codes[0] == "rc=52" and codes[1] in ("rc=7", "rc=56"), result.stdout
    assert "denied net denied.example:80" in result.stderr


def _suggested_commands(denial: str) -> list[list[str]]:
    """The `corral rules add ...` commands a denial line suggests, as argv lists (without `corral`)."""
    suggestion = denial.split("to allow: ", 1)[1].split(", or rerun", 1)[0].rstrip(")")
    return [part.split()[1:] for part in suggestion.split(" && ")]


def test_allow_for_this_project_covers_the_host_on_any_port(actor: Actor, ssh_like: TcpServer) -> None:
    run = client(actor, "ssh_client.py", SSH_CLIENT)
    spec: dict[str, Any] = {
        "allow": ["127.0.0.1"],
        "names": {"git.example": ["127.0.0.1", ssh_like.port]},
    }
    first = drive(actor, script=f"{run} git.example 22", answer="project", **spec)
    assert [entry["target"] for entry in first["asked"]] == ["git.example:22"]
    assert "banner SSH-2.0-test_server" in first["output"], first
    listed = actor.run("rules", "list", "--project", str(actor.workspace))
    assert "git.example" in listed.stdout and "git.example:22" not in listed.stdout, listed.stdout
    again = drive(actor, script=f"{run} git.example 2222", answer="deny", **spec)
    assert again["asked"] == [] and "banner SSH-2.0-test_server" in again["output"], again
    assert again["status"] == 0


def test_allow_one_port_only_asks_again_for_another_port(actor: Actor, ssh_like: TcpServer) -> None:
    run = client(actor, "ssh_client.py", SSH_CLIENT)
    spec: dict[str, Any] = {"allow": ["127.0.0.1"], "names": {"git.example": ["127.0.0.1", ssh_like.port]}}
    drive(actor, script=f"{run} git.example 22", answer="project-port", **spec)
    again = drive(actor, script=f"{run} git.example 2222", answer="deny", **spec)
    assert [entry["target"] for entry in again["asked"]] == ["git.example:2222"]
    assert "failed ConnectionResetError" in again["output"]


@pytest.mark.parametrize("rule", ["suggested", "cidr"])
def test_a_name_resolving_to_a_private_address_says_why_and_the_suggested_fix_works(
    actor: Actor, psql_like: TcpServer, rule: str
) -> None:
    run = client(actor, "psql_client.py", PSQL_CLIENT)
    spec: dict[str, Any] = {"allow": ["db.example"], "names": {"db.example": ["127.0.0.1", psql_like.port]}}
    refused = drive(actor, script=f"{run} db.example 5432", **spec)
    assert "failed ConnectionResetError" in refused["output"], refused
    assert psql_like.received == []
    [denial] = refused["denials"]
    assert "db.example resolves to 127.0.0.1 is loopback and not explicitly allowed" in denial, denial
    commands = _suggested_commands(denial)
    assert commands == [["rules", "add", "--project", ".", "--host", "127.0.0.1"]], denial
    if rule == "cidr":
        commands = [["rules", "add", "--project", ".", "--host", "127.0.0.0/8"]]
    for command in commands:
        added = actor.run(*command)
        assert added.returncode == 0, added.stderr
    allowed = drive(actor, script=f"{run} db.example 5432", **spec)
    assert "auth ok" in allowed["output"], allowed
    assert allowed["denials"] == [] and allowed["status"] == 0


def test_without_nft_the_sandbox_stays_closed_and_doctor_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fail closed: with no `nft` nothing is steered (connects find no route), and doctor names the fix."""
    from corral import doctor
    from corral.command import Command
    from corral.locations import Locations
    from corral.opening import compose_session
    from sandbox.egress import interception
    from sandbox.egress.hostpolicy import HostPolicy
    from sandbox.runner import StdioSpec

    monkeypatch.setattr(interception, "find_nft", lambda: None)
    check = doctor.interception_check()
    assert not check.ok and "nftables" in check.detail and "apt-get install nftables" in check.fix
    workspace = tmp_path / "ws"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    session = compose_session(
        workspace, locations=Locations.default(), hosts=HostPolicy.from_config(source="test", allow=[])
    )
    out = tmp_path / "out"
    script = (
        'python3 -c \'import socket\ntry:\n socket.create_connection(("192.0.2.1", 22), timeout=5)\n'
        ' print("CONNECTED")\nexcept OSError as e: print("errno", e.errno)\''
    )
    with out.open("wb") as handle:
        outcome = session.run(
            Command.from_argv(["/bin/sh", "-c", script]),
            stdio=StdioSpec(stdout=handle.fileno(), stderr=handle.fileno()),
        )
    session.close()
    assert "errno 101" in out.read_text()  # ENETUNREACH: no route was added
    assert outcome.exit_code == 0


def test_a_name_looked_up_in_one_command_connects_in_the_next(actor: Actor, ssh_like: TcpServer) -> None:
    """In one session the placeholder a command was given still maps to its name in later commands."""
    run = client(actor, "ssh_client.py", SSH_CLIENT)
    result = drive(
        actor,
        allow=["git.example", "127.0.0.1"],
        names={"git.example": ["127.0.0.1", ssh_like.port]},
        scripts=[
            "getent hosts git.example | cut -d' ' -f1 > addr.txt; cat addr.txt",
            f'{run} "$(cat addr.txt)" 22',
        ],
    )
    first, second = result["runs"]
    assert first["output"].startswith("198.1"), first
    assert "git.example (A)" in first["report"]["lookups"]
    assert "banner SSH-2.0-test_server" in second["output"], second
    assert second["asked"] == [] and second["status"] == 0
