"""`corral run` on a real terminal (tmux): input reaches the command, the inline prompt gets the
person's keys, and the answer is honoured on the host."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
CORRAL = str(Path(sys.executable).with_name("corral"))


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    socket = tmp_path / "tmux.sock"
    base = ["tmux", "-S", str(socket)]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True, check=False)


def _screen(base: list[str]) -> str:
    return subprocess.run(
        [*base, "capture-pane", "-p", "-t", "t"], capture_output=True, text=True, check=False
    ).stdout


def _wait_for(base: list[str], text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = _screen(base)
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared:\n{_screen(base)}")


def _start(base: list[str], workspace: Path, script: str) -> None:
    env = " ".join(
        f"{k}={shlex.quote(v)}" for k, v in os.environ.items() if k.startswith(("XDG_", "HOME", "PATH"))
    )
    inner = f"cd {shlex.quote(str(workspace))} && env {env} {CORRAL} run -c {shlex.quote(script)}; echo EXIT=$?; sleep 60"
    subprocess.run([*base, "new-session", "-d", "-x", "120", "-y", "40", "-s", "t", inner], check=True)


@pytest.mark.parametrize(("key", "applied", "status"), [("o", True, "EXIT=0"), ("Enter", False, "EXIT=77")])
def test_inline_prompt_takes_the_persons_answer(
    tmux: list[str], isolated_home: Path, key: str, applied: bool, status: str
) -> None:
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    target = isolated_home / "outside.txt"
    _start(tmux, workspace, f"read line; echo got $line; echo $line > {target}")
    time.sleep(1.0)
    subprocess.run([*tmux, "send-keys", "-t", "t", "typed-input", "Enter"], check=True)
    _wait_for(tmux, "allow once")
    assert "got typed-input" in _screen(tmux)
    if key == "o":
        subprocess.run([*tmux, "send-keys", "-t", "t", "o"], check=True)
        time.sleep(0.5)
    subprocess.run([*tmux, "send-keys", "-t", "t", "Enter"], check=True)
    _wait_for(tmux, status)
    assert target.exists() is applied
    if applied:
        assert target.read_text() == "typed-input\n"


def test_ctrl_c_reaches_the_command(tmux: list[str], isolated_home: Path) -> None:
    workspace = isolated_home / "project"
    workspace.mkdir()
    _start(tmux, workspace, 'trap "echo got-int; exit 3" INT; echo ready; sleep 30 & wait')
    _wait_for(tmux, "ready")
    subprocess.run([*tmux, "send-keys", "-t", "t", "C-c"], check=True)
    screen = _wait_for(tmux, "EXIT=")
    assert "got-int" in screen
    assert "EXIT=3" in screen
