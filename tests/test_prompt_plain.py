"""Plain (line) mode says only what is true: no "show the captured changes" without captured changes,
"new empty file" for an empty new file; `corral shell` without a terminal is one clear line, not a hang."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from boundary.violations import Change, ChangeOp, Violation, ViolationKind
from screenshots import demo
from tui.changes import diff_for
from tui.line import LineAsk

CORRAL = str(Path(sys.executable).with_name("corral"))

pytestmark = pytest.mark.usefixtures("demo_directory")


class Recorder:
    def __init__(self) -> None:
        self.offered: list[list[str]] = []

    def __call__(self, question: str, options: list[tuple[str, str]], default: str) -> str | None:
        self.offered.append([value for value, _label in options])
        return "deny"


def _offered(tmp_path: Path, violations: list[Violation]) -> list[str]:
    tty = tmp_path / "tty"
    tty.write_text("")
    demo.prepare()
    recorder = Recorder()
    LineAsk(str(tty), chooser=recorder, arm_delay_s=0)(demo.demo_request(violations))
    return recorder.offered[0]


def test_network_only_prompt_offers_no_changes_view(tmp_path: Path) -> None:
    offered = _offered(tmp_path, [Violation(ViolationKind.NET, "example.com:443", "connect")])
    assert "changes" not in offered and offered[0] == "deny"


def test_prompt_with_captured_changes_offers_them(tmp_path: Path) -> None:
    source = tmp_path / "captured"
    source.write_text("x")
    change = Change(Path("/home/dev/x"), ChangeOp.CREATE, source=source, size=1)
    offered = _offered(tmp_path, [Violation(ViolationKind.FS_WRITE, "/home/dev/x", "create", "", (change,))])
    assert "changes" in offered


def test_new_empty_file_is_called_that(tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.write_text("")
    assert diff_for(Change(tmp_path / "new", ChangeOp.CREATE, source=source)) == [
        f"{tmp_path / 'new'}: new empty file"
    ]


def test_shell_without_a_terminal_exits_with_one_line(tmp_path: Path) -> None:
    for extra in ([], ["--plain"]):
        result = subprocess.run(
            [CORRAL, "shell", *extra, str(tmp_path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "needs a terminal" in result.stderr
        assert "corral run -c" in result.stderr


def test_a_host_prompt_offers_this_port_only_and_answers_one_port(tmp_path: Path) -> None:
    """Issue 13: "allow for this project" covers the host on any port; the person may pick the port."""
    from corral.decision import Decision, Scope

    offered = _offered(tmp_path, [Violation(ViolationKind.NET, "db.example:5432", "connect")])
    assert "port" in offered
    tty = tmp_path / "tty"
    answer = LineAsk(str(tty), chooser=lambda *_: "port", arm_delay_s=0)(
        demo.demo_request([Violation(ViolationKind.NET, "db.example:5432", "connect")])
    )
    assert answer == Decision(Scope.PROJECT, one_port=True)
    assert "port" not in _offered(tmp_path, [Violation(ViolationKind.FS_WRITE, "/home/dev/x", "create")])
