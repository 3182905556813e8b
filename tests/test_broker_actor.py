"""The broker as root and as an unprivileged user: a headless `corral session` (no terminal, so it
denies every crossing without asking) serves the actor's project; the actor's no-TTY `corral run` and
`corral-claude` join it (the session announces each with the process that asked), output and exit
status come back exactly, a crossing is denied and never reaches the host, the credentials stay
hidden, and the Claude Code cwd file is written on the host for that user.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import CORRAL, SECRET, Actor

CLAUDE = str(Path(sys.executable).with_name("corral-claude"))


def _as_actor(actor: Actor, command: list[str]) -> list[str]:
    if actor.uid == os.geteuid():
        return command
    return ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]


def _wait_for_socket(actor: Actor, timeout: float = 30.0) -> None:
    sessions = actor.base / "run" / "corral" / "sessions"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(sessions.glob("*.sock")):
            return
        time.sleep(0.1)
    raise AssertionError("the session never started serving")


def test_agents_join_a_headless_session(actor: Actor) -> None:
    log = actor.base / "session.log"
    with open(log, "wb") as out:
        owner = subprocess.Popen(
            _as_actor(actor, [CORRAL, "session"]),
            cwd=actor.workspace,
            env=actor.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        _wait_for_socket(actor)
        done = actor.run(
            "run", "-c", f"echo out; echo err >&2; cat ~/.ssh/id_rsa; touch {actor.outside}/x; exit 0"
        )
        assert done.returncode == 77, done.stderr
        assert done.stdout == "out\n"
        assert "err\n" in done.stderr and "denied fs-write" in done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert not (actor.outside / "x").exists()
        status = actor.run("run", "--", "sh", "-c", "exit 9")
        assert status.returncode == 9
        cwd_file = f"/tmp/claude-{secrets.token_hex(3)}-cwd"
        string = f"eval {shlex.quote('cd sub 2>/dev/null || mkdir sub && cd sub; echo claude-ok')} < /dev/null && pwd -P >| {cwd_file}"
        claude = subprocess.run(
            _as_actor(actor, [CLAUDE, string]),
            cwd=actor.workspace,
            env=actor.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert claude.returncode == 0, claude.stderr
        assert claude.stdout == "claude-ok\n"
        written = Path(cwd_file)
        try:
            assert written.read_text() == f"{actor.workspace}/sub\n"
            assert written.stat().st_uid == actor.uid
        finally:
            written.unlink(missing_ok=True)
    finally:
        os.killpg(owner.pid, signal.SIGTERM)
        owner.wait(timeout=30)
    announced = log.read_text()
    assert announced.count("corral session: pid ") == 3
    assert "exit 77, 2 crossing(s)" in announced  # the credential read and the write
    assert owner.returncode == 0
