"""The session broker through the real sandbox: agents' commands join one live Session over its Unix
socket, stream their output back byte for byte, get the exact exit status, share session answers,
are recorded with the process that asked, and are killed when their client goes away.

Also the socket's own boundary: directory 0700, socket 0600, one owner per project (a second server
refused, a stale socket replaced), an unsafe directory refused by both sides, and SO_PEERCRED turning
away another user even when the file modes would let them connect.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.broker import address, client, protocol
from corral.broker.address import AddressError
from corral.broker.server import AlreadyServed, BrokerServer, SessionHost
from corral.decision import DENY, Decision, PromptRequest, Scope
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import compose_session
from tests.conftest import CORRAL, TEST_USER


class Person:
    """Answers prompts with a fixed decision and counts them (optionally waiting first)."""

    def __init__(self, decision: Decision, delay_s: float = 0.0) -> None:
        self.decision = decision
        self.delay_s = delay_s
        self.requests: list[PromptRequest] = []

    def __call__(self, request: PromptRequest) -> Decision:
        self.requests.append(request)
        time.sleep(self.delay_s)
        return self.decision


@pytest.fixture
def workspace(isolated_home: Path) -> Path:
    ws = isolated_home / "project"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    return ws


class Served:
    def __init__(self, workspace: Path, person: Person) -> None:
        self.locations = Locations.default()
        self.person = person
        self.session = compose_session(
            workspace, locations=self.locations, ask=person, frontend="test", on_violation=OnViolation.ASK
        )
        self.host = SessionHost(lambda: self.session)
        self.server = BrokerServer(
            workspace,
            self.locations.runtime_dir,
            self.host,
            frontend="test",
            ledger_path=self.locations.ledger_path,
        )
        self.workspace = workspace

    def run(self, request: protocol.RunRequest) -> tuple[client.SessionResult, bytes, bytes]:
        sock = client.connect(self.locations.runtime_dir, self.workspace)
        assert sock is not None
        out: list[bytes] = []
        err: list[bytes] = []
        result = client.run(
            sock, request, on_output=lambda stream, data: (out if stream == "stdout" else err).append(data)
        )
        return result, b"".join(out), b"".join(err)


@pytest.fixture
def served(workspace: Path) -> Iterator[Served]:
    served = Served(workspace, Person(Decision(Scope.SESSION)))
    served.server.start()
    try:
        yield served
    finally:
        served.server.close()
        served.session.close()


def _env() -> dict[str, str]:
    return dict(os.environ)


def test_output_is_streamed_byte_for_byte_and_the_status_is_exact(served: Served) -> None:
    script = "printf '\\000\\377\\033[31mraw\\n'; printf 'to-err' >&2; exit 42"
    result, out, err = served.run(protocol.RunRequest(text=script))
    assert result.status == 42 and result.exit_code == 42
    assert out == b"\x00\xff\x1b[31mraw\n"
    assert err == b"to-err"
    assert served.person.requests == []


def test_output_arrives_while_the_command_runs(served: Served) -> None:
    seen: list[float] = []
    sock = client.connect(served.locations.runtime_dir, served.workspace)
    assert sock is not None
    started = time.monotonic()
    client.run(
        sock,
        protocol.RunRequest(text="echo first; sleep 1.5; echo second"),
        on_output=lambda _stream, _data: seen.append(time.monotonic() - started),
    )
    assert len(seen) == 2
    assert seen[0] < 1.2 <= seen[1]  # the first line came before the command finished


def test_session_answer_holds_for_later_clients_and_the_ledger_names_the_agent(
    served: Served, isolated_home: Path
) -> None:
    first = subprocess.run(
        [CORRAL, "run", "-c", "touch ~/x"], cwd=served.workspace, env=_env(), capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    assert (isolated_home / "x").exists()
    assert len(served.person.requests) == 1
    assert served.person.requests[0].command == "touch ~/x"
    second = subprocess.run(
        [CORRAL, "run", "-c", "echo more >> ~/x"],
        cwd=served.workspace,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert second.returncode == 0, second.stderr
    assert (isolated_home / "x").read_text() == "more\n"
    assert len(served.person.requests) == 1  # the session answer held: no second prompt
    with sqlite3.connect(served.locations.ledger_path) as db:
        rows = db.execute(
            "SELECT c.command, a.pid, a.exe, a.cmdline, a.parent_pid FROM commands c"
            " JOIN command_agents a ON a.command_id = c.id ORDER BY c.id"
        ).fetchall()
    assert [row[0] for row in rows] == ["touch ~/x", "echo more >> ~/x"]
    assert all("python" in row[2] and "corral run -c" in row[3] for row in rows)
    assert all(row[4] == os.getpid() for row in rows)  # the agent: the process that ran `corral run`
    assert rows[0][1] != rows[1][1]


def test_a_killed_client_kills_its_command_and_a_denial_applies_nothing(
    workspace: Path, isolated_home: Path
) -> None:
    served = Served(workspace, Person(DENY))
    with served.server:
        agent = subprocess.Popen(
            [CORRAL, "run", "-c", "touch ~/early; echo started; sleep 6071; touch ~/late"],
            cwd=workspace,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert agent.stdout is not None
        assert agent.stdout.readline() == b"started\n"
        killed_at = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        assert time.monotonic() - killed_at < 10
        assert agent.returncode != 0
        # The session is not harmed and the next command runs at once (the lock was released).
        result, out, _err = served.run(protocol.RunRequest(argv=("echo", "still-here")))
        assert result.status == 0 and out == b"still-here\n"
    served.session.close()
    assert not (isolated_home / "early").exists()  # its crossing was decided (denied), not applied
    assert not (isolated_home / "late").exists()
    assert [r.command for r in served.person.requests] == [
        "touch ~/early; echo started; sleep 6071; touch ~/late"
    ]
    leftover = subprocess.run(["pgrep", "-f", "sleep 6071"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


def test_a_client_that_vanishes_mid_run_gets_its_command_killed(served: Served) -> None:
    sock = client.connect(served.locations.runtime_dir, served.workspace)
    assert sock is not None
    reader = protocol.LineReader(sock)
    sock.sendall(protocol.encode({"type": "hello", "version": 1}))
    assert reader.read_message() is not None
    sock.sendall(protocol.encode(protocol.RunRequest(text="echo go; sleep 60").to_message()))
    assert reader.read_message() == protocol.stream_frame("stdout", b"go\n")
    started = time.monotonic()
    sock.close()
    result, _out, _err = served.run(protocol.RunRequest(argv=("true",)))  # waits for the lock
    assert result.status == 0
    assert time.monotonic() - started < 10


def test_command_not_found_and_timeout(served: Served) -> None:
    with pytest.raises(client.BrokerError) as missing:
        served.run(protocol.RunRequest(argv=("no-such-command-here",)))
    assert missing.value.status == 127
    started = time.monotonic()
    result, _out, err = served.run(protocol.RunRequest(text="sleep 60", timeout_s=0.5))
    assert time.monotonic() - started < 10
    assert result.status != 0
    assert b"timed out" in err


def test_socket_modes_one_owner_and_stale_sockets(served: Served, workspace: Path) -> None:
    path = served.server.socket_path
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    other = BrokerServer(workspace, served.locations.runtime_dir, served.host, frontend="test")
    with pytest.raises(AlreadyServed):
        other.start()
    assert client.connect(served.locations.runtime_dir, workspace) is not None  # still served
    served.server.close()
    assert client.connect(served.locations.runtime_dir, workspace) is None
    # A stale socket (bound, owner gone: nobody listens, nobody holds the lock) is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(os.fspath(path))
    stale.close()
    assert client.connect(served.locations.runtime_dir, workspace) is None
    again = BrokerServer(workspace, served.locations.runtime_dir, served.host, frontend="test")
    with again:
        _result, out, _err = served.run(protocol.RunRequest(argv=("echo", "ok")))
        assert out == b"ok\n"


def test_an_unsafe_session_directory_is_refused_by_both_sides(workspace: Path) -> None:
    locations = Locations.default()
    directory = address.sessions_dir(locations.runtime_dir)
    directory.mkdir(parents=True, mode=0o700)
    os.chmod(directory, 0o777)
    host = SessionHost(lambda: None)
    with pytest.raises(AddressError, match="open to other users"):
        BrokerServer(workspace, locations.runtime_dir, host, frontend="test").start()
    with pytest.raises(AddressError):
        client.connect(locations.runtime_dir, workspace)
    os.rmdir(directory)
    os.symlink("/tmp", directory)
    with pytest.raises(AddressError, match="not a directory"):
        BrokerServer(workspace, locations.runtime_dir, host, frontend="test").start()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_another_user_is_turned_away_by_peer_credentials(served: Served) -> None:
    import pwd

    try:
        other = pwd.getpwnam(TEST_USER)
    except KeyError:
        pytest.skip(f"the test user {TEST_USER} does not exist")
    path = served.server.socket_path
    # Open the file modes on purpose: only the SO_PEERCRED check stands between them and the session.
    for directory in (path.parent, path.parent.parent, *path.parent.parent.parents):
        if directory == Path("/"):
            break
        os.chmod(directory, os.stat(directory).st_mode | 0o011)
    os.chmod(path.parent, 0o711)
    os.chmod(path, 0o666)
    probe = (
        "import socket\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.connect({os.fspath(path)!r})\n"
        "print('CONNECTED')\n"
        "try:\n"
        '    s.sendall(b\'{"type":"hello","version":1}\\n{"type":"run","argv":["true"]}\\n\')\n'
        "    data = s.recv(65536)\n"
        "except (BrokenPipeError, ConnectionResetError):\n"
        "    data = b''\n"
        "print('DATA', repr(data))\n"
    )
    done = subprocess.run(
        [
            "setpriv",
            f"--reuid={other.pw_uid}",
            f"--regid={other.pw_gid}",
            "--clear-groups",
            sys.executable,
            "-c",
            probe,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.split("\n")[:2] == ["CONNECTED", "DATA b''"], done.stdout + done.stderr
    assert served.person.requests == []


def test_without_a_session_the_run_is_standalone_and_hints_once(workspace: Path) -> None:
    runs = [
        subprocess.run(
            [CORRAL, "run", "-c", "touch ~/nope"], cwd=workspace, env=_env(), capture_output=True, text=True
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [77, 77]
    assert "corral session" in runs[0].stderr
    assert "corral session" not in runs[1].stderr


def test_the_client_path_imports_no_ui_no_git_and_no_sandbox(served: Served) -> None:
    code = (
        "import sys\n"
        "from cli.main import main\n"
        "status = main(['run', '--', 'true'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('textual', 'rich', 'prompt_toolkit', 'git', 'sandbox', 'trust', 'tui', 'boundary')"
        " or m in ('corral.session', 'corral.run', 'corral.opening', 'corral.escalation'))\n"
        # the one escaping function (stdlib only) is on every print path, the client's included; the
        # backend names (a tuple of strings) are `--backend`'s choices
        "bad = [m for m in bad if m not in ('boundary', 'boundary.termsafe', 'boundary.backends')]\n"
        "print(status, bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=served.workspace, env=_env(), capture_output=True, text=True
    )
    assert done.stdout.strip() == "0 []", done.stdout + done.stderr


def test_concurrent_clients_all_complete(served: Served) -> None:
    results: list[int] = []

    def one(index: int) -> None:
        result, out, _err = served.run(protocol.RunRequest(text=f"echo {index} > f{index}; cat f{index}"))
        assert out == f"{index}\n".encode()
        results.append(result.status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [0] * 6
    assert all((served.workspace / f"f{i}").read_text() == f"{i}\n" for i in range(6))
