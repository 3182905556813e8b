"""Quiet when nothing is at stake: `corral run` says nothing about trust in a project with nothing to
trust, one line when a project's config is not used, and `--require-trust` refuses in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from corral.locations import Locations
from corral.trusting import ProjectTrust
from tests.conftest import Actor
from trust.gate import TrustState

SESSION_HINT = "corral: no live session for this project"
"""The broker's hint, printed once per project (corral.broker.run_client): not about trust."""


def _trust_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith(SESSION_HINT)]


def test_nothing_to_trust_means_no_trust_line(actor: Actor) -> None:
    first = actor.sandboxed("echo hi > out.txt")
    assert first.returncode == 0
    assert _trust_lines(first.stderr) == []
    second = actor.sandboxed("echo hi > out.txt")
    assert second.returncode == 0
    assert second.stderr == "", "a second run must print nothing at all"
    # Other agents' config is fingerprinted but never loaded by corral: still nothing to say.
    (actor.workspace / ".mcp.json").write_text("{}\n")
    actor.chown_tree(actor.workspace)
    assert actor.sandboxed("true").stderr == ""


def test_unused_project_config_is_one_line(actor: Actor) -> None:
    (actor.workspace / ".corral").mkdir()
    (actor.workspace / ".corral" / "config.toml").write_text('[env]\nFLAG = "1"\n')
    actor.chown_tree(actor.workspace)
    for _ in range(2):
        result = actor.sandboxed("true")
        assert result.returncode == 0
        lines = _trust_lines(result.stderr)
        assert len(lines) == 1 and "is not trusted; using your policy only" in lines[0], lines


def test_require_trust_refuses_in_one_line_and_runs_nothing(actor: Actor) -> None:
    (actor.workspace / ".corral").mkdir()
    (actor.workspace / ".corral" / "config.toml").write_text('[env]\nFLAG = "1"\n')
    actor.chown_tree(actor.workspace)
    refused = actor.run("run", "--require-trust", "--", "touch", "ran.txt")
    assert refused.returncode == 3
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.endswith(": nothing ran (--require-trust; see `corral trust show`)\n")
    assert not (actor.workspace / "ran.txt").exists()

    assert actor.run("trust", "grant").returncode == 0
    allowed = actor.run("run", "--require-trust", "--", "touch", "ran.txt")
    assert allowed.returncode == 0
    assert allowed.stderr == ""
    assert (actor.workspace / "ran.txt").exists()


def test_opening_a_shell_asks_nothing_when_nothing_is_at_stake(tmp_path: Path) -> None:
    """The shells' trust question (`ProjectTrust.needs_question`): none for a project with no
    trust-relevant file; asked once there is one (here another agent's config)."""
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "README.md").write_text("nothing to trust\n")
    trust = ProjectTrust(project, Locations.default())
    trust.refresh(with_history=False)
    assert trust.state is TrustState.UNTRUSTED and not trust.needs_question
    (project / ".mcp.json").write_text("{}\n")
    trust.refresh(with_history=False)
    assert trust.needs_question
