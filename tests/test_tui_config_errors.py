"""A config that cannot be used stops both shells the way it stops `corral run`: one line naming the file
and key, exit status 2, nothing run. (The Textual app used to fall back to a default policy.)"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from cli.commands import shell_cmd
from cli.main import main
from corral.errors import UsageError
from corral.locations import Locations
from corral.trusting import ProjectTrust
from tui.app import CorralShell, ShellOptions

BROKEN = "[network]\nallw = ['pypi.org']\n"


def _broken_user_config() -> Path:
    path = Locations.default().user_config_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BROKEN)
    return path


def _workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "project"
    (workspace / ".git").mkdir(parents=True)
    return workspace


def _run_corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`corral ARGS` with stdin and stdout on a pseudo-terminal that is not its controlling terminal (a
    new session has none): it counts as interactive, yet no prompt can reach a person, so nothing waits."""
    master, slave = pty.openpty()
    try:
        return subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from cli.main import main; sys.exit(main(sys.argv[1:]))",
                *args,
            ],
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            start_new_session=True,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)


def test_corral_shell_stops_before_the_app_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _broken_user_config()
    started: list[bool] = []
    monkeypatch.setattr(CorralShell, "run", lambda self, *a, **k: started.append(True))
    monkeypatch.setattr(shell_cmd, "_is_terminal", lambda stream: True)
    status = main(["shell", str(_workspace(tmp_path))])
    error = capsys.readouterr().err
    assert status == 2
    assert started == []  # the screen was never taken over
    assert str(config) in error and "allw" in error
    assert error.startswith("corral: ") and error.count("\n") == 1


@pytest.mark.parametrize("command", [["run", "-c", "true"], ["shell", "--plain"]])
def test_line_mode_and_corral_run_stop_the_same_way(tmp_path: Path, command: list[str]) -> None:
    config = _broken_user_config()
    workspace = _workspace(tmp_path)
    result = _run_corral(*command, cwd=workspace)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("corral: ")]
    assert any(str(config) in line and "allw" in line for line in lines), result.stderr


@pytest.mark.asyncio(loop_scope="function")
async def test_the_app_opened_without_a_session_stops_instead_of_a_default_policy(tmp_path: Path) -> None:
    _broken_user_config()
    project = ProjectTrust(_workspace(tmp_path), Locations.default())
    project.refresh(with_history=False)
    app = CorralShell(project, options=ShellOptions(arm_delay_s=0.0, show_trust_dialog=False))
    async with app.run_test() as pilot:
        await pilot.pause()
    assert app.session is None
    assert isinstance(app.failure, UsageError) and "allw" in str(app.failure)
    assert app.return_code == 2
