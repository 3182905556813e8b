"""The shell end to end with the real sandbox (bubblewrap), driven by Pilot: a workspace command runs
with no prompt; `touch ~/x` opens exactly one escalation dialog whose answer is honoured on the host and
recorded in the ledger; a 100,000-line burst stays bounded and the UI keeps answering."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from corral.ledger import Ledger
from corral.locations import Locations
from corral.trusting import ProjectTrust
from corral.words import Status
from tui.app import CorralShell, ShellOptions
from tui.commandlog import CommandEntry, CommandLog
from tui.escalation import EscalationScreen
from tui.output import MAX_LINES

pytestmark = [
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for the workspace"),
]
SIZE = (120, 40)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "README.md").write_text("test project\n")
    return root


def _shell(workspace: Path) -> CorralShell:
    project = ProjectTrust(workspace, Locations.default())
    project.refresh(with_history=False)
    return CorralShell(project, options=ShellOptions(arm_delay_s=0.0, show_trust_dialog=False))


async def _type(pilot: object, app: CorralShell, command: str) -> CommandEntry:
    app.query_one("#command").value = command  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    entries = list(app.query_one(CommandLog).query(CommandEntry))
    return entries[-1]


async def _until(pilot: object, predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting for the shell"
        await pilot.pause(0.05)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("key", "applied", "scope"), [("o", True, "once"), ("escape", False, "deny")])
async def test_touch_home_opens_one_dialog_and_the_answer_is_honoured(
    workspace: Path, isolated_home: Path, key: str, applied: bool, scope: str
) -> None:
    app = _shell(workspace)
    dialogs: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        first = await _type(pilot, app, "echo inside > made-here.txt && echo ok")
        await _until(pilot, lambda: first.finished is not None)
        assert not isinstance(app.screen, EscalationScreen)
        assert first.finished is not None and first.finished.status is Status.SANDBOXED
        entry = await _type(pilot, app, "touch ~/x")
        await _until(pilot, lambda: isinstance(app.screen, EscalationScreen) or entry.finished is not None)
        assert isinstance(app.screen, EscalationScreen)
        dialogs.append(app.screen.request.command)
        assert [v.target for v in app.screen.request.violations] == [str(isolated_home / "x")]
        await pilot.press(key)
        await _until(pilot, lambda: entry.finished is not None)
        assert not isinstance(app.screen, EscalationScreen)
        assert entry.finished is not None
        assert entry.finished.status is (Status.ALLOWED if applied else Status.DENIED)
    assert dialogs == ["touch ~/x"]
    assert (workspace / "made-here.txt").read_text() == "inside\n"
    assert (isolated_home / "x").exists() is applied
    ledger = Ledger.open(Locations.default().ledger_path)
    try:
        prompts = [p for p in ledger.prompts() if p.target == str(isolated_home / "x")]
        commands = [c.command for c in ledger.commands()]
    finally:
        ledger.close()
    assert [(p.scope, p.asked, p.frontend) for p in prompts] == [(scope, True, "textual")]
    assert "touch ~/x" in commands


async def test_a_100k_line_burst_is_bounded_and_the_ui_stays_responsive(workspace: Path) -> None:
    app = _shell(workspace)
    async with app.run_test(size=SIZE) as pilot:
        entry = await _type(pilot, app, "seq 1 100000")
        started = time.monotonic()
        await _until(pilot, lambda: entry.finished is not None, timeout=60)
        elapsed = time.monotonic() - started
        # The UI answers a key while the log holds the burst.
        await pilot.press("e", "c", "h", "o")
        await pilot.pause()
        assert app.query_one("#command").value == "echo"  # type: ignore[attr-defined]
    assert len(entry.output.lines) == MAX_LINES
    assert entry.output.lines[-1] == "100000"
    assert entry.output.dropped + len(entry.output.lines) == 100_000
    assert elapsed < 30, f"the burst took {elapsed:.1f}s"


async def test_spoofed_output_is_kept_as_text(workspace: Path) -> None:
    app = _shell(workspace)
    async with app.run_test(size=SIZE) as pilot:
        entry = await _type(pilot, app, r"printf '[red]x[/] \033]52;c;aGk=\007 \342\200\256rev\n'")
        await _until(pilot, lambda: entry.finished is not None)
    shown = entry._output_text().plain
    assert "[red]x[/]" in shown
    assert "^[]52;c;aGk=^G" in shown
    assert "<U+202E>rev" in shown


async def test_ctrl_c_interrupts_the_running_command(workspace: Path) -> None:
    app = _shell(workspace)
    async with app.run_test(size=SIZE) as pilot:
        entry = await _type(pilot, app, "sleep 30")
        await pilot.pause(0.5)
        started = time.monotonic()
        await pilot.press("ctrl+c")
        await _until(pilot, lambda: entry.finished is not None, timeout=10)
    assert time.monotonic() - started < 10
    assert entry.finished is not None and entry.finished.status is Status.FAILED
