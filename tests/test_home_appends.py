"""A write to an existing hidden shell start-up file prompts and, approved, applies (`sandbox.appends`),
with the real bubblewrap, as root and as the unprivileged user whose HOME is its real home.

`~/.bashrc` stays hidden (it often exports tokens), so the sandbox shows a one-line stand-in that takes
appends: `echo x >> ~/.bashrc` succeeds inside, is captured as "the real file plus that line", is asked
(denied without a terminal, the host file untouched) and, allowed, lands on the host exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Actor
from tests.test_escape_support import assert_denied_under

_DRIVER = """
import json, sys
from pathlib import Path
from corral.command import Command
from corral.decision import Decision, Scope
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import open_session

asked = []
def ask(request):
    asked.extend(f"{v.kind.value} {v.target}" for v in request.violations)
    return {v: Decision(Scope.ONCE if sys.argv[2] == "allow" else Scope.DENY) for v in request.violations}

session, _ = open_session(Path.cwd(), Locations.default(), ask=ask, frontend="test", on_violation=OnViolation.ASK)
try:
    outcome = session.run(Command.from_shell(sys.argv[1]))
finally:
    session.close()
print(json.dumps({"status": outcome.status, "asked": asked,
                  "reported": [f"{o.violation.kind.value} {o.violation.target}" for o in outcome.outcomes]}))
"""


def _answering(actor: Actor, script: str, answer: str) -> dict[str, object]:
    """Run `script` through a corral Session as `actor`, answering every prompt with `answer`."""
    command = [sys.executable, "-c", _DRIVER, script, answer]
    if actor.uid != os.geteuid():
        command = ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]
    done = subprocess.run(
        command, cwd=actor.workspace, env=actor.env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _bashrc(actor: Actor) -> Path:
    return actor.home / ".bashrc"


def test_append_to_bashrc_is_captured_and_denied_without_a_terminal(actor: Actor) -> None:
    before = _bashrc(actor).read_bytes()
    result = actor.sandboxed("echo 'export ADDED=1' >> ~/.bashrc && echo appended")
    assert "appended" in result.stdout, result.stderr
    assert "Permission denied" not in result.stderr
    assert_denied_under(result.stderr, "fs-write", _bashrc(actor), actor.home)
    assert result.returncode == 77
    assert _bashrc(actor).read_bytes() == before


def test_append_to_bashrc_approved_lands_after_the_real_content(actor: Actor) -> None:
    before = _bashrc(actor).read_bytes()
    try:
        outcome = _answering(actor, "echo 'export ADDED=1' >> ~/.bashrc", "allow")
        assert outcome["status"] == 0, outcome
        assert f"fs-write {_bashrc(actor)}" in outcome["asked"], outcome  # type: ignore[operator]
        assert _bashrc(actor).read_bytes() == before + b"export ADDED=1\n"
    finally:
        _bashrc(actor).write_bytes(before)  # the shared real home of the test user


def test_reading_or_leaving_the_stand_in_is_no_write(actor: Actor) -> None:
    before = _bashrc(actor).read_bytes()
    outcome = _answering(actor, "cat ~/.bashrc >/dev/null; touch ~/.bashrc; true", "deny")
    assert outcome["asked"] == [], outcome
    assert f"fs-write {_bashrc(actor)}" not in outcome["reported"], outcome  # type: ignore[operator]
    assert _bashrc(actor).read_bytes() == before


def test_rewriting_a_file_the_command_never_saw_is_asked_as_a_replacement(actor: Actor) -> None:
    before = _bashrc(actor).read_bytes()
    outcome = _answering(actor, "echo 'replaced' > ~/.bashrc", "deny")
    assert f"fs-write {_bashrc(actor)}" in outcome["asked"], outcome  # type: ignore[operator]
    assert _bashrc(actor).read_bytes() == before


def test_reading_a_hidden_empty_file_is_not_reported(actor: Actor) -> None:
    empty = actor.own_dir / "empty-marker"
    empty.write_text("")
    actor.chown_path(empty)
    try:
        result = actor.sandboxed(f"cat {empty} && echo read")
        assert result.returncode == 0, result.stderr
        assert "corral: denied" not in result.stderr
    finally:
        empty.unlink()
