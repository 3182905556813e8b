"""The project's `session_start` hook runs once per session, inside the sandbox, from the trusted bytes,
and never before trust; a standalone `corral run` is not a session and never runs it.

The session is opened the way both shells open theirs (`corral.opening.open_session`, then each typed
command through `Session.run_with_hooks`), in a subprocess as root and as the unprivileged actor, with
the real bubblewrap; the host is checked afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import Actor

_SESSION_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from corral.command import Command, OnViolation
    from corral.locations import Locations
    from corral.opening import open_session

    session, _ = open_session(Path(sys.argv[1]), Locations.default(), ask=None, frontend="test",
                              on_violation=OnViolation.DENY)
    try:
        hooks = []
        for _ in range(3):
            outcome = session.run_with_hooks(Command.from_shell("echo cmd >> commands.txt"))
            hooks.append([[o.violation.kind.value, o.violation.target, o.scope]
                          for hook in outcome.hook_outcomes for o in hook.outcomes])
    finally:
        session.close()
    print(json.dumps(hooks))
    """
)


def _open_session_and_run_three(actor: Actor) -> list[list[list[str]]]:
    command = [sys.executable, "-c", _SESSION_SCRIPT, str(actor.workspace)]
    if actor.uid != os.geteuid():
        command = ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]
    env = {**actor.env, "PYTHONPATH": str(os.path.dirname(os.path.dirname(__file__)))}
    done = subprocess.run(
        command, cwd=actor.workspace, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: list[list[list[str]]] = json.loads(done.stdout.splitlines()[-1])
    return result


def _plant_session_start(actor: Actor) -> None:
    hooks = actor.workspace / ".corral" / "hooks"
    hooks.mkdir(parents=True)
    (hooks / "start.sh").write_text(f"echo started >> started.txt\ntouch {actor.outside}/hook-outside\n")
    (actor.workspace / ".corral" / "config.toml").write_text(
        '[hooks]\nsession_start = ".corral/hooks/start.sh"\n'
    )
    actor.chown_tree(actor.base)


def test_session_start_runs_once_sandboxed_and_only_after_trust(actor: Actor) -> None:
    _plant_session_start(actor)
    started = actor.workspace / "started.txt"
    outside = actor.outside / "hook-outside"

    untrusted = _open_session_and_run_three(actor)
    assert untrusted == [[], [], []]
    assert not started.exists(), "the hook ran before trust"
    assert (actor.workspace / "commands.txt").read_text() == "cmd\n" * 3

    assert actor.run("trust", "grant").returncode == 0
    # The script on disk changes after trust: the exact trusted bytes run, and the change withdraws
    # trust, so nothing at all runs; restore it and trust holds again.
    script = actor.workspace / ".corral" / "hooks" / "start.sh"
    trusted_text = script.read_text()

    hooks = _open_session_and_run_three(actor)
    assert started.read_text() == "started\n", "session_start must run exactly once per session"
    assert not outside.exists(), "the hook's write outside the workspace reached the host"
    assert hooks[0] == [["fs-write", str(outside), "deny"]], hooks
    assert hooks[1:] == [[], []]

    _open_session_and_run_three(actor)  # a new session: once more
    assert started.read_text() == "started\n" * 2

    script.write_text(trusted_text + "echo tampered >> started.txt\n")
    actor.chown_tree(actor.base)
    assert _open_session_and_run_three(actor) == [[], [], []]
    assert started.read_text() == "started\n" * 2


def test_standalone_run_is_not_a_session(actor: Actor) -> None:
    """README: a standalone `corral run` never runs `session_start` (before/after_command do run)."""
    _plant_session_start(actor)
    config = actor.workspace / ".corral" / "config.toml"
    config.write_text(config.read_text() + 'before_command = "echo before >> before.txt"\n')
    actor.chown_tree(actor.base)
    assert actor.run("trust", "grant").returncode == 0
    for _ in range(2):
        result = actor.sandboxed("true")
        assert result.returncode == 0, result.stderr
    assert not (actor.workspace / "started.txt").exists()
    assert (actor.workspace / "before.txt").read_text() == "before\n" * 2
