"""A session is a place: the commands of one session share a private /tmp (never the host's) and one
network namespace, held by a keeper (`sandbox.sessionns`); consecutive standalone `corral run`s of a
project share that project's /tmp. Real bubblewrap, as root and as an unprivileged user; the host is
checked afterwards (no file in the host's /tmp, the session's /tmp removed when it ends).
"""

from __future__ import annotations

import os
import secrets
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import CORRAL, Actor


def _as_actor(actor: Actor, command: list[str]) -> list[str]:
    if actor.uid == os.geteuid():
        return command
    return ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]


def _sessions_tmp(actor: Actor) -> Path:
    return actor.state_home / ".cache" / "corral" / "sessions"


@contextmanager
def live_session(actor: Actor) -> Iterator[subprocess.Popen[bytes]]:
    """A headless `corral session` for the actor's project (denies every crossing: no terminal)."""
    log = actor.base / f"session-{secrets.token_hex(3)}.log"
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
    sockets = actor.base / "run" / "corral" / "sessions"
    deadline = time.monotonic() + 30
    while not list(sockets.glob("*.sock")):
        if time.monotonic() > deadline or owner.poll() is not None:
            owner.kill()
            raise AssertionError(f"the session never started serving: {log.read_text()}")
        time.sleep(0.1)
    try:
        yield owner
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGTERM)
        owner.wait(timeout=60)


def test_tmp_is_handed_between_commands_of_a_live_session(actor: Actor) -> None:
    name = f"handoff-{secrets.token_hex(4)}.json"
    with live_session(actor):
        first = actor.run("run", "-c", f"echo '{{\"ok\": 1}}' > /tmp/{name}; ls -ld /tmp | cut -c1-10")
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == "drwxrwxrwt"  # a /tmp as programs expect it
        second = actor.run("run", "-c", f"cat /tmp/{name}")
        assert second.returncode == 0, second.stderr
        assert second.stdout == '{"ok": 1}\n'
        assert not Path("/tmp", name).exists()  # never the host's /tmp
        live = [p for p in _sessions_tmp(actor).iterdir() if p.name.startswith("live-")]
        assert len(live) == 1
        info = live[0].stat()
        assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == actor.uid
        assert (live[0] / "tmp" / name).read_text() == '{"ok": 1}\n'  # on disk, corral's own
    assert not any(p.name.startswith("live-") for p in _sessions_tmp(actor).iterdir())  # removed at the end


def _pending_consecutive_standalone_runs_share_the_projects_tmp(actor: Actor) -> None:
    name = f"standalone-{secrets.token_hex(4)}"
    first = actor.run("run", "--no-session", "-c", f"echo kept > /tmp/{name}")
    assert first.returncode == 0, first.stderr
    second = actor.run("run", "--no-session", "-c", f"cat /tmp/{name}")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "kept\n"
    assert not Path("/tmp", name).exists()
    other = actor.base / "other"
    other.mkdir()
    actor.chown_path(other)
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    actor.chown_tree(other)
    elsewhere = actor.run(
        "run", "--no-session", "-c", f"cat /tmp/{name} 2>/dev/null || echo absent", cwd=other
    )
    assert elsewhere.stdout == "absent\n", elsewhere.stderr  # another project's /tmp is another place


def _pending_idle_standalone_tmp_starts_empty(actor: Actor) -> None:
    name = f"idle-{secrets.token_hex(4)}"
    assert actor.run("run", "--no-session", "-c", f"echo old > /tmp/{name}").returncode == 0
    (project,) = [p for p in _sessions_tmp(actor).iterdir() if p.name.startswith("project-")]
    long_ago = time.time() - 31 * 60
    os.utime(project / "last-used", (long_ago, long_ago))
    later = actor.run("run", "--no-session", "-c", f"cat /tmp/{name} 2>/dev/null || echo emptied")
    assert later.stdout == "emptied\n", later.stderr
