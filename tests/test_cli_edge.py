"""The command line is the one edge: typed values go down, one `CorralError` comes up as one line."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import cli.commands.run_cmd as run_cmd
from cli.main import main
from corral.decision import AskCallback
from corral.errors import CorralError, SetupError, UsageError
from corral.escalation import OnViolation
from corral.run import RunRequest


@pytest.fixture
def workspace(isolated_home: Path) -> Path:
    path = isolated_home / "project"
    (path / ".git").mkdir(parents=True)
    return path


def test_a_prompt_that_cannot_load_stops_the_run_instead_of_denying_silently(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `_line_mode_ask` swallowed a load error and returned no prompt, so every crossing
    was denied with nobody asked. Now nothing runs: exit 125 and one line saying why."""

    def broken() -> AskCallback:
        raise ImportError("prompt_toolkit is missing")

    import tui.line

    monkeypatch.setattr(run_cmd, "_interactive", lambda: True)
    monkeypatch.setattr(tui.line, "make_ask", broken)
    marker = workspace / "ran"
    status = main(["run", "--no-session", "--project", str(workspace), "--", "touch", str(marker)])
    err = capsys.readouterr().err
    assert status == SetupError.exit_status == 125
    assert err.count("\n") == 1
    assert err.startswith("corral: the line-mode prompt could not start")
    assert "prompt_toolkit is missing" in err
    assert not marker.exists()


def test_a_deny_run_never_loads_the_prompt(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--on-violation deny` on a terminal needs no front end, so a broken one cannot stop it."""
    calls: list[str] = []
    monkeypatch.setattr(run_cmd, "_interactive", lambda: True)
    monkeypatch.setattr(run_cmd, "line_mode_ask", lambda: calls.append("loaded"))
    captured: list[RunRequest] = []

    def fake_run(request: RunRequest) -> int:
        captured.append(request)
        return 0

    monkeypatch.setattr("corral.run.run_command", fake_run)
    assert (
        main(["run", "--no-session", "--on-violation", "deny", "--project", str(workspace), "--", "true"])
        == 0
    )
    assert calls == []
    assert captured[0].ask is None
    assert captured[0].on_violation is OnViolation.DENY


def test_the_cli_hands_the_core_typed_values_not_a_namespace(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: list[RunRequest] = []
    monkeypatch.setattr(run_cmd, "_interactive", lambda: False)

    def fake_run(request: RunRequest) -> int:
        captured.append(request)
        return 0

    monkeypatch.setattr("corral.run.run_command", fake_run)
    argv = [
        "run",
        "--no-session",
        "--project",
        str(workspace),
        "--allow-host",
        "pypi.org",
        "--description",
        "lists",
    ]
    assert main([*argv, "-c", "ls | wc -l"]) == 0
    request = captured[0]
    assert isinstance(request, RunRequest)
    assert request.command.text == "ls | wc -l"
    assert request.command.argv[1:] == ("-c", "ls | wc -l")
    assert request.command.description == "lists"
    assert request.allow_hosts == ("pypi.org",)
    assert request.project == workspace
    assert request.on_violation is OnViolation.DENY  # no terminal: nobody to ask


def test_usage_errors_are_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-c", "true", "--", "false"]) == UsageError.exit_status == 2
    assert capsys.readouterr().err == "corral: give either -c STRING or -- CMD [ARG...], not both\n"
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("corral: ") and err.count("\n") == 1


def test_an_error_raised_anywhere_is_caught_once_with_its_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Odd(CorralError):
        exit_status = 42

    def explode(request: RunRequest) -> int:
        raise Odd("bad name \x1b[2J\nsecond line")

    monkeypatch.setattr(run_cmd, "_interactive", lambda: False)
    monkeypatch.setattr("corral.run.run_command", explode)
    assert main(["run", "--no-session", "--", "true"]) == 42
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "\x1b" not in err and "bad name" in err


def test_a_workspace_error_is_a_usage_error(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--project", str(isolated_home / "nope"), "--", "true"]) == 2
    assert capsys.readouterr().err == f"corral: {isolated_home / 'nope'}: no such directory\n"


def test_no_front_end_is_found_through_an_entry_point() -> None:
    """The front ends are imported by the command line (a downward arrow), never looked up by name from
    the core, which would hide a core-to-front-end arrow from the import contracts."""
    assert list(entry_points(group="corral.frontends")) == []
    source = Path(__file__).resolve().parents[1]
    hits = subprocess.run(
        ["grep", "-rln", "--include=*.py", "entry_points", str(source / "corral"), str(source / "cli")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert hits.stdout == ""


def test_corral_console_script_is_the_cli_package() -> None:
    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts")}
    assert scripts["corral"] == "cli.main:main"
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("corral ")
