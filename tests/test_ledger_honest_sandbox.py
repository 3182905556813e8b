"""Honest numbers end to end, with the real sandbox as root and as the unprivileged actor: a `corral run`
with no terminal that crosses the boundary is counted by `corral stats` as a prompt needed with nobody
to ask (not a prompt saved), and a project hook run is recorded but never counted as a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import Actor

_SESSION_SCRIPT = textwrap.dedent(
    """
    from pathlib import Path
    import sys
    from corral.command import Command, OnViolation
    from corral.locations import Locations
    from corral.opening import open_session

    session, _ = open_session(Path(sys.argv[1]), Locations.default(), ask=None, frontend="test",
                              on_violation=OnViolation.DENY)
    try:
        session.run_with_hooks(Command.from_shell("echo cmd >> commands.txt"))
    finally:
        session.close()
    """
)


def _stats(actor: Actor) -> dict[str, object]:
    done = actor.run("stats", "--json")
    assert done.returncode == 0, done.stderr
    total = json.loads(done.stdout)["total"]
    assert isinstance(total, dict)
    return total


def test_no_tty_crossing_is_needed_not_saved_and_hooks_are_not_commands(actor: Actor) -> None:
    denied = actor.run("run", "-c", "touch ~/x")  # no TTY, default --on-violation: nobody to ask
    assert not (actor.home / "x").exists(), "the write reached the host"
    assert denied.returncode != 0 or "denied" in denied.stderr
    total = _stats(actor)
    assert (total["commands"], total["prompts"], total["unasked"], total["needed"]) == (1, 0, 1, 1)
    assert total["reduction_pct"] is None or float(str(total["reduction_pct"])) < 100.0
    by_kind = total["by_kind"]
    assert isinstance(by_kind, dict)
    assert sum(int(row["unasked"]) for row in by_kind.values()) == 1
    assert all(float(row["needed_per_100"]) == 100.0 for row in by_kind.values())

    hooks = actor.workspace / ".corral" / "hooks"
    hooks.mkdir(parents=True)
    (hooks / "start.sh").write_text("echo started >> started.txt\n")
    (actor.workspace / ".corral" / "config.toml").write_text(
        '[hooks]\nsession_start = ".corral/hooks/start.sh"\n'
    )
    actor.chown_tree(actor.base)
    assert actor.run("trust", "grant").returncode == 0
    command = [sys.executable, "-c", _SESSION_SCRIPT, str(actor.workspace)]
    if actor.uid != os.geteuid():
        command = ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]
    env = {**actor.env, "PYTHONPATH": str(os.path.dirname(os.path.dirname(__file__)))}
    done = subprocess.run(
        command, cwd=actor.workspace, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (actor.workspace / "started.txt").read_text() == "started\n", "the hook did not run"
    total = _stats(actor)
    assert (total["commands"], total["hooks"], total["needed"]) == (2, 1, 1)
