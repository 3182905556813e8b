"""Claude Code, for real: a harness that builds the exact command string Claude Code builds and runs
it the way Claude Code does (`bash -c -l "corral-claude '<string>'"`, then reads the cwd file back from
the host's /tmp), through a real live session and the real sandbox.

It checks: the shell snapshot is sourced inside while `~/.claude`'s credentials stay hidden; the cwd
file reaches the host and nothing else of /tmp does; Claude Code's background-task output under
`/tmp/claude-<uid>/` is readable inside; exit codes and output are unchanged; a crossing prompts in the
session and the session answer holds for the next command.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.broker.claude import split_cwd_tail
from corral.broker.server import BrokerServer, SessionHost
from corral.decision import Decision, PromptRequest, Scope
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import compose_session
from tests.conftest import SECRET

PREFIX = str(Path(sys.executable).with_name("corral-claude"))


@dataclass
class Ran:
    status: int
    stdout: str
    stderr: str
    cwd: str | None


class ClaudeCode:
    """What Claude Code does for one Bash tool call, with CLAUDE_CODE_SHELL_PREFIX set."""

    def __init__(self, home: Path, workspace: Path) -> None:
        self.home = home
        self.cwd = workspace
        snapshots = home / ".claude" / "shell-snapshots"
        snapshots.mkdir(parents=True)
        self.snapshot = snapshots / f"snapshot-bash-1764640000000-{secrets.token_hex(3)}.sh"
        self.snapshot.write_text(
            "# Snapshot file\nunalias -a 2>/dev/null || true\n"
            "snapfn () { echo from-the-snapshot; }\nshopt -s expand_aliases\nalias ll='echo aliased'\n"
            f"export PATH={shlex.quote(os.environ['PATH'])}\n"
        )
        (home / ".claude" / ".credentials.json").write_text(SECRET)

    def bash(self, command: str) -> Ran:
        cwd_file = Path(f"/tmp/claude-{secrets.token_hex(2)}-cwd")
        string = (
            f"source {shlex.quote(str(self.snapshot))} && eval {shlex.quote(command)} < /dev/null"
            f" && pwd -P >| {shlex.quote(str(cwd_file))}"
        )
        shell = shutil.which("bash") or "/bin/bash"
        done = subprocess.run(
            [shell, "-c", "-l", f"{PREFIX} {shlex.quote(string)}"],
            cwd=self.cwd,
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        cwd = None
        if cwd_file.exists():
            cwd = cwd_file.read_text().strip()
            cwd_file.unlink()
            self.cwd = Path(cwd)
        return Ran(done.returncode, done.stdout, done.stderr, cwd)


class Person:
    def __init__(self) -> None:
        self.requests: list[PromptRequest] = []

    def __call__(self, request: PromptRequest) -> Decision:
        self.requests.append(request)
        return Decision(Scope.SESSION)


@pytest.fixture
def task_output() -> Iterator[Path]:
    """Claude Code's background-task output on the host, as it writes it."""
    root = Path(f"/tmp/claude-{os.getuid()}")
    created = not root.exists()
    if not created and (root.is_symlink() or root.stat().st_uid != os.getuid()):
        pytest.skip(f"{root} exists and is not this user's directory")
    tasks = root / f"-corral-test-{secrets.token_hex(4)}" / "tasks"
    tasks.mkdir(parents=True, mode=0o700)
    output = tasks / "b1.output"
    output.write_text("background task says hello\n")
    try:
        yield output
    finally:
        shutil.rmtree(tasks.parent, ignore_errors=True)
        if created:
            shutil.rmtree(root, ignore_errors=True)


def test_the_tail_is_recognised_exactly() -> None:
    string = "source /h/.claude/shell-snapshots/s.sh && eval 'a && pwd -P >| /tmp/claude-1-cwd' < /dev/null && pwd -P >| /tmp/claude-ab12-cwd"
    body, path = split_cwd_tail(string)
    assert path == "/tmp/claude-ab12-cwd"
    assert (
        body
        == "source /h/.claude/shell-snapshots/s.sh && eval 'a && pwd -P >| /tmp/claude-1-cwd' < /dev/null"
    )
    inside = "eval 'x && pwd -P >| /tmp/claude-1-cwd'"
    assert split_cwd_tail(inside) == (inside, None)  # the agent's own text, inside the quotes
    assert split_cwd_tail("true && pwd -P >| /tmp/elsewhere") == ("true && pwd -P >| /tmp/elsewhere", None)
    assert split_cwd_tail("true && pwd -P >| /tmp/claude-../../etc/x-cwd")[1] is None


def test_claude_code_through_a_live_session(isolated_home: Path, task_output: Path) -> None:
    workspace = isolated_home / "project"
    (workspace / "sub").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    claude = ClaudeCode(isolated_home, workspace)
    locations = Locations.default()
    person = Person()
    session = compose_session(
        workspace, locations=locations, ask=person, frontend="test", on_violation=OnViolation.ASK
    )
    server = BrokerServer(workspace, locations.runtime_dir, SessionHost(lambda: session), frontend="test")
    leak = f"/tmp/corral-leak-{secrets.token_hex(4)}"
    with server:
        first = claude.bash("snapfn; ll; cd sub && printf 'no newline at the end'")
        assert first.status == 0, first.stderr
        assert first.stdout == "from-the-snapshot\naliased\nno newline at the end"
        assert first.cwd == str(workspace / "sub")
        secret = claude.bash("cat ~/.claude/.credentials.json; ls ~/.claude")
        assert SECRET not in secret.stdout + secret.stderr
        background = claude.bash(f"tail -n 1 {task_output}")
        assert background.stdout == "background task says hello\n", background.stderr
        failing = claude.bash("echo before; echo err >&2; exit 3")
        assert (failing.status, failing.stdout, failing.stderr, failing.cwd) == (3, "before\n", "err\n", None)
        tmp = claude.bash(f"touch {leak} && ls /tmp")
        assert tmp.status == 0 and not Path(leak).exists()
        assert claude.cwd == workspace / "sub"
        crossing = claude.bash("touch ~/x && echo made")
        assert crossing.status == 0 and crossing.stdout == "made\n", crossing.stderr
        again = claude.bash("echo more >> ~/x")
        assert again.status == 0
    session.close()
    assert (isolated_home / "x").read_text() == "more\n"
    assert len(person.requests) == 1 and "touch ~/x" in person.requests[0].command


def test_without_a_session_a_crossing_is_denied_and_says_how_to_start_one(isolated_home: Path) -> None:
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    claude = ClaudeCode(isolated_home, workspace)
    ran = claude.bash("snapfn; touch ~/x")
    assert ran.status == 77
    assert ran.stdout == "from-the-snapshot\n"
    assert "no live corral session" in ran.stderr
    assert ran.cwd == str(workspace)
    assert not (isolated_home / "x").exists()


def test_a_carve_out_removed_before_the_sandbox_starts_is_skipped(isolated_home: Path) -> None:
    """Claude Code may clean its /tmp directory between corral's check and bwrap's mount: the command
    still runs (the carve-out is simply absent), never a setup failure."""
    import dataclasses

    from sandbox.bwrap import build_argv, prepare_layout, remove_run_dir
    from sandbox.locate import find_bwrap
    from sandbox.seccomp import filter_path

    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    locations = Locations.default()
    session = compose_session(workspace, locations=locations)
    carve = isolated_home / "carve"
    carve.mkdir()
    (carve / "f").write_text("visible\n")
    policy = dataclasses.replace(session.policy(workspace), readable=(carve,))
    run_dir = locations.runtime_dir / "carve-layout"
    layout = prepare_layout(policy, run_dir, None)
    binary = find_bwrap(workspace=workspace, cache_dir=locations.cache_dir)

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        seccomp = os.open(filter_path(locations.cache_dir), os.O_RDONLY)  # bwrap reads it up
        try:
            argv = build_argv(binary.path, policy, layout, command, seccomp_fd=seccomp)
            return subprocess.run(argv, pass_fds=(seccomp,), capture_output=True, text=True, check=False)
        finally:
            os.close(seccomp)

    try:
        shown = run(["cat", str(carve / "f")])
        assert shown.stdout == "visible\n", shown.stderr
        shutil.rmtree(carve)
        gone = run(["true"])
        assert gone.returncode == 0, gone.stderr
    finally:
        remove_run_dir(run_dir)
        session.close()
