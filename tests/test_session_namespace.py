"""The session keeper (`sandbox.sessionns`): one network namespace the session's processes share, with
its own loopback (never the host's), and one pid namespace that takes every one of them down with it,
when the session closes and when corral itself is killed. Real namespaces; the host is checked.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sandbox.sessionns import SessionNamespace, SessionNamespaceError

LISTEN = "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); print('up', flush=True); time.sleep(int(sys.argv[2]))"


def _keeper() -> SessionNamespace:
    try:
        return SessionNamespace()
    except SessionNamespaceError as error:
        pytest.skip(f"user namespaces are refused here: {error}")


def _start_in(keeper: SessionNamespace, argv: list[str]) -> subprocess.Popen[str]:
    join, fds = keeper.enter()
    try:
        return subprocess.Popen(argv, preexec_fn=join, stdout=subprocess.PIPE, text=True)
    finally:
        for fd in fds:
            os.close(fd)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_processes_of_a_session_share_its_loopback_and_not_the_hosts() -> None:
    keeper = _keeper()
    port = _free_port()
    marker = str(900000 + secrets.randbelow(99999))
    try:
        assert os.stat(keeper.namespace_path("net")).st_ino != os.stat("/proc/self/ns/net").st_ino
        server = _start_in(keeper, [sys.executable, "-c", LISTEN, str(port), marker])
        assert server.stdout is not None and server.stdout.readline() == "up\n"
        client = _start_in(
            keeper,
            [
                sys.executable,
                "-c",
                f"import socket; socket.create_connection(('127.0.0.1', {port}), 2); print('reached')",
            ],
        )
        assert client.stdout is not None and client.stdout.read() == "reached\n"
        client.wait(10)
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), 1):
            pass  # the host's loopback is another namespace
    finally:
        keeper.close()
    deadline = time.monotonic() + 5
    while _alive(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive(marker) == []  # the session's end killed its server


def test_every_process_of_the_session_dies_when_corral_is_killed(tmp_path: Path) -> None:
    """corral SIGKILLed with a double-forked, signal-ignoring process left in the session: the keeper
    sees its pipe close and the kernel empties the session's pid namespace."""
    marker = str(800000 + secrets.randbelow(99999))
    script = tmp_path / "owner.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, subprocess, sys, time
            sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
            from sandbox.sessionns import SessionNamespace
            keeper = SessionNamespace()
            join, fds = keeper.enter()
            code = "import os,signal,time\\nif os.fork(): os._exit(0)\\nos.setsid()\\nif os.fork(): os._exit(0)\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\nos.execvp('sleep', ['sleep', '{marker}'])"
            subprocess.run([sys.executable, "-c", code], preexec_fn=join)
            print("ready", flush=True)
            time.sleep(600)
            """
        )
    )
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 20
        while not _alive(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(marker), "the session's process never started"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 10
    while _alive(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = _alive(marker)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == []


def test_a_closed_session_refuses_new_commands() -> None:
    keeper = _keeper()
    keeper.close()
    assert not keeper.alive()
    with pytest.raises(SessionNamespaceError):
        keeper.enter()
