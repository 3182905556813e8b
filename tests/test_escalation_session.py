"""Issue 3 end to end through the real sandbox: one prompt only when a command crosses the boundary,
exact violations, apply without re-running, deny discards, project rules scoped to the boundary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from boundary.violations import ViolationKind
from corral.command import Command
from corral.decision import Decision, PromptRequest, Scope
from corral.escalation import OnViolation
from corral.ledger import Ledger
from corral.locations import Locations
from corral.opening import compose_session
from corral.session import Session


@pytest.fixture
def workspace(isolated_home: Path) -> Path:
    ws = isolated_home / "project"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    return ws


class Person:
    """Answers prompts with a fixed decision and remembers what it was shown."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.requests: list[PromptRequest] = []

    def __call__(self, request: PromptRequest) -> Decision:
        self.requests.append(request)
        return self.decision


def _session(workspace: Path, person: Person) -> Session:
    return compose_session(
        workspace, locations=Locations.default(), ask=person, frontend="test", on_violation=OnViolation.ASK
    )


def test_workspace_only_command_gets_no_prompt(workspace: Path) -> None:
    person = Person(Decision(Scope.ONCE))
    outcome = _session(workspace, person).run(
        Command.from_argv(["sh", "-c", "mkdir -p src && echo x > src/a.py && rm -f README"])
    )
    assert outcome.exit_code == 0
    assert person.requests == []
    assert (workspace / "src/a.py").read_text() == "x\n"


def test_touch_home_yields_exactly_one_fs_write_and_deny_discards(
    workspace: Path, isolated_home: Path
) -> None:
    person = Person(Decision(Scope.DENY))
    outcome = _session(workspace, person).run(Command.from_argv(["touch", str(isolated_home / "x")]))
    assert len(person.requests) == 1
    [violation] = person.requests[0].violations
    assert (violation.kind, violation.target, violation.operation) == (
        ViolationKind.FS_WRITE,
        str(isolated_home / "x"),
        "create",
    )
    assert not (isolated_home / "x").exists()
    assert outcome.status == 77


def test_allow_once_applies_without_running_again(workspace: Path, isolated_home: Path) -> None:
    person = Person(Decision(Scope.ONCE))
    outcome = _session(workspace, person).run(
        Command.from_argv(
            [
                "sh",
                "-c",
                f"echo ran >> runs.log; printf 'data' > {isolated_home}/x; chmod 640 {isolated_home}/x",
            ]
        )
    )
    assert outcome.status == 0
    assert (isolated_home / "x").read_text() == "data"
    assert oct((isolated_home / "x").stat().st_mode & 0o777) == "0o640"
    assert (workspace / "runs.log").read_text() == "ran\n"  # the command ran exactly once


def test_protected_and_read_violations_are_exact(workspace: Path, isolated_home: Path) -> None:
    (isolated_home / ".ssh").mkdir()
    (isolated_home / ".ssh/id_rsa").write_text("KEY")
    person = Person(Decision(Scope.DENY))
    outcome = _session(workspace, person).run(
        Command.from_argv(
            ["sh", "-c", "echo x > .git/hooks/pre-commit; echo y > .envrc; cat ~/.ssh/id_rsa; true"]
        )
    )
    [request] = person.requests
    seen = {(v.kind, v.target) for v in request.violations}
    assert seen == {
        (ViolationKind.FS_PROTECTED, str(workspace / ".git/hooks/pre-commit")),
        (ViolationKind.FS_PROTECTED, str(workspace / ".envrc")),
    }
    # The read already failed inside the sandbox: it is reported and recorded, not asked.
    reported = {(o.violation.kind, o.violation.target, o.scope, o.asked) for o in outcome.outcomes}
    assert (ViolationKind.FS_READ, str(isolated_home / ".ssh/id_rsa"), "deny", False) in reported
    assert not (workspace / ".git/hooks/pre-commit").exists()
    assert not (workspace / ".envrc").exists()


def test_project_rule_stops_the_prompt_for_that_path_only(
    workspace: Path, isolated_home: Path, tmp_path: Path
) -> None:
    person = Person(Decision(Scope.PROJECT))
    _session(workspace, person).run(Command.from_argv(["touch", str(isolated_home / "allowed")]))
    assert len(person.requests) == 1
    later = Person(Decision(Scope.DENY))
    _session(workspace, later).run(Command.from_argv(["sh", "-c", f"echo again > {isolated_home}/allowed"]))
    assert later.requests == []  # the rule answered: no prompt in the next command
    assert (isolated_home / "allowed").read_text() == "again\n"
    _session(workspace, later).run(Command.from_argv(["touch", str(isolated_home / "other")]))
    assert len(later.requests) == 1  # another path still asks
    other_project = tmp_path / "other-project"
    other_project.mkdir()
    elsewhere = Person(Decision(Scope.DENY))
    _session(other_project, elsewhere).run(
        Command.from_argv(["sh", "-c", f"echo third > {isolated_home}/allowed"])
    )
    # Another project has no rule: there the existing file is hidden behind a read-only stand-in (the
    # home's read allow-list), so the write fails inside and nothing reaches the host.
    assert elsewhere.requests == []
    assert (isolated_home / "allowed").read_text() == "again\n"


def test_every_command_and_prompt_is_recorded(workspace: Path, isolated_home: Path) -> None:
    person = Person(Decision(Scope.DENY))
    session = _session(workspace, person)
    session.run(Command.from_argv(["true"]))
    session.run(Command.from_argv(["touch", str(isolated_home / "x")]))
    session.close()
    with Ledger.open(Locations.default().ledger_path) as ledger:
        commands = ledger.commands()
        prompts = ledger.prompts()
    assert [c.command for c in commands] == ["true", f"touch {isolated_home / 'x'}"]
    assert [(p.kind, p.target, p.scope) for p in prompts] == [("fs-write", str(isolated_home / "x"), "deny")]


def test_read_rule_makes_a_credential_readable_for_later_commands(
    workspace: Path, isolated_home: Path
) -> None:
    from corral.rules import RuleStore

    (isolated_home / ".netrc").write_text("machine example.com password NETRC-SECRET\n")
    (isolated_home / ".ssh").mkdir()
    (isolated_home / ".ssh/id_rsa").write_text("SSH-SECRET")
    out = workspace / "out.txt"
    person = Person(Decision(Scope.DENY))
    _session(workspace, person).run(
        Command.from_argv(["sh", "-c", f"cat ~/.netrc ~/.ssh/id_rsa > {out} 2>&1; true"])
    )
    assert "SECRET" not in out.read_text()
    store = RuleStore.open(Locations.default().rules_path)
    store.add(workspace, ViolationKind.FS_READ, str(isolated_home / ".netrc"), confirmed_sensitive=True)
    _session(workspace, person).run(
        Command.from_argv(["sh", "-c", f"cat ~/.netrc ~/.ssh/id_rsa > {out} 2>&1; true"])
    )
    text = out.read_text()
    assert "NETRC-SECRET" in text
    assert "SSH-SECRET" not in text
    assert person.requests == [], [v for r in person.requests for v in r.violations]


def test_later_command_is_not_charged_for_corral_mount_points(workspace: Path, isolated_home: Path) -> None:
    """Regression: after an allowed write created ~/.rustup (where corral mounts a cache layer at
    ~/.rustup/downloads), the next command was charged with a chmod of ~/.rustup it never made."""
    person = Person(Decision(Scope.ONCE))
    session = _session(workspace, person)
    session.run(
        Command.from_argv(
            ["sh", "-c", "mkdir -p ~/.rustup && chmod 700 ~/.rustup && echo v > ~/.rustup/settings.toml"]
        )
    )
    assert (isolated_home / ".rustup/settings.toml").read_text() == "v\n"
    asked_before = len(person.requests)
    outcome = session.run(Command.from_argv(["true"]))
    assert outcome.outcomes == []
    assert len(person.requests) == asked_before


def test_agent_description_reaches_the_prompt_labelled_and_after_the_command(
    workspace: Path, isolated_home: Path
) -> None:
    """A03: the agent's narration travels with the request, but the front end renders the command first
    and labels the narration unverified; hostile markup and escapes in it stay inert."""
    from tui.line import render_request

    person = Person(Decision(Scope.DENY))
    said = "run the unit tests [bold]safe[/bold] \x1b[2K"
    _session(workspace, person).run(Command.from_argv(["touch", str(isolated_home / "x")], said))
    [request] = person.requests
    assert request.description == said
    text = render_request(request)
    assert text.index("touch") < text.index("unverified") < text.index("run the unit tests")
    assert "\x1b" not in text
    assert "[bold]safe[/bold]" in text


def test_the_report_lists_what_an_allow_applied_outside_the_workspace(
    workspace: Path, isolated_home: Path
) -> None:
    """Regression: `--report` listed only the workspace's own changes; a write outside it that the person
    allowed was applied but missing from `applied`. The one apply step returns both lists."""
    person = Person(Decision(Scope.ONCE))
    session = _session(workspace, person)
    outcome = session.run(Command.from_shell(f"echo in > inside.txt; echo out > {isolated_home}/outside.txt"))
    session.close()
    assert (isolated_home / "outside.txt").read_text() == "out\n"
    applied = outcome.report()["applied"]
    assert isinstance(applied, list)
    assert str(isolated_home / "outside.txt") in applied
    assert str(workspace / "inside.txt") in applied


def test_a_denied_write_outside_is_not_reported_as_applied(workspace: Path, isolated_home: Path) -> None:
    session = _session(workspace, Person(Decision(Scope.DENY)))
    outcome = session.run(Command.from_shell(f"echo out > {isolated_home}/outside.txt"))
    session.close()
    assert not (isolated_home / "outside.txt").exists()
    assert outcome.report()["applied"] == []
