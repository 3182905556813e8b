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

from tests.conftest import LANDLOCK_MISSING

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


def _start(base: list[str], workspace: Path, script: str, *flags: str) -> None:
    env = " ".join(
        f"{k}={shlex.quote(v)}" for k, v in os.environ.items() if k.startswith(("XDG_", "HOME", "PATH"))
    )
    run = " ".join([CORRAL, "run", *flags])
    inner = f"cd {shlex.quote(str(workspace))} && env {env} {run} -c {shlex.quote(script)}; echo EXIT=$?; sleep 60"
    # bash, whatever the user's login shell: dash (a normal user's default on Debian) dies of the Ctrl-C its
    # foreground child handled, taking the pane and the EXIT line with it; bash waits and goes on.
    subprocess.run(
        [
            *base,
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            "t",
            f"exec bash -c {shlex.quote(inner)}",
        ],
        check=True,
    )


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


@pytest.mark.skipif(LANDLOCK_MISSING is not None, reason=f"Landlock backend: {LANDLOCK_MISSING}")
def test_landlock_prompt_says_allowing_reruns_before_the_answer(tmux: list[str], isolated_home: Path) -> None:
    """Under Landlock a refused write was not captured: the prompt says, while it waits for the answer,
    that allowing re-runs the whole command, and allowing it does (the workspace counts the runs)."""
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    target = isolated_home / "outside.txt"
    _start(tmux, workspace, f"echo ran >> runs.txt; echo hi > {target}", "--backend", "landlock")
    screen = _wait_for(tmux, "allow once")
    shown = "".join(screen.split())  # the prompt wraps at the terminal's width, mid-word
    assert "itwasrefused,sonothingreachedthehost;allowingre-runsthewholecommandwiththispathwritable" in shown
    assert not target.exists()
    assert (workspace / "runs.txt").read_text() == "ran\n"
    subprocess.run([*tmux, "send-keys", "-t", "t", "o"], check=True)
    time.sleep(0.5)
    subprocess.run([*tmux, "send-keys", "-t", "t", "Enter"], check=True)
    _wait_for(tmux, "EXIT=0")
    assert target.read_text() == "hi\n"
    assert (workspace / "runs.txt").read_text() == "ran\nran\n"


def test_ctrl_c_reaches_the_command(tmux: list[str], isolated_home: Path) -> None:
    workspace = isolated_home / "project"
    workspace.mkdir()
    _start(tmux, workspace, 'trap "echo got-int; exit 3" INT; echo ready; sleep 30 & wait')
    _wait_for(tmux, "ready")
    subprocess.run([*tmux, "send-keys", "-t", "t", "C-c"], check=True)
    screen = _wait_for(tmux, "EXIT=")
    assert "got-int" in screen
    assert "EXIT=3" in screen


FLOOD = (
    "( i=0; while [ $i -lt 2000 ]; do printf '\\033[2J\\033[HFAKE-PROMPT Allow? [o]\\n'; i=$((i+1)); "
    "sleep 0.005; done ) & sleep 0.3; curl -sS -m 30 http://other.example/x; echo curl-done; wait"
)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_output_cannot_scroll_or_fake_the_open_prompt_and_typed_ahead_keys_do_not_answer(
    tmux: list[str], isolated_home: Path
) -> None:
    """A command floods fake prompts and clear-screen sequences while the real (live network) prompt is
    open: the real prompt stays the last thing on screen, the sequences arrive only as visible text, and
    an `o` typed the moment the prompt appeared is discarded instead of allowing."""
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    _start(tmux, workspace, FLOOD)
    _wait_for(tmux, "crossed the sandbox boundary")
    subprocess.run([*tmux, "send-keys", "-t", "t", "o"], check=True)  # typed ahead, during arming
    screen = _wait_for(tmux, "any other key denies")
    time.sleep(1.5)  # the flood goes on meanwhile
    screen = _screen(tmux)
    lines = [line for line in screen.splitlines() if line.strip()]
    assert lines[-1].startswith("letter or Enter"), screen  # the real prompt is still the last thing
    tail = "\n".join(lines[lines.index(next(ln for ln in lines if ln.startswith("Allow?"))) :])
    assert "FAKE-PROMPT" not in tail and "EXIT=" not in screen, screen
    assert "oAllow?" not in screen  # the typed-ahead key was neither taken nor echoed
    subprocess.run([*tmux, "send-keys", "-t", "t", "Enter"], check=True)  # the default: deny
    screen = _wait_for(tmux, "EXIT=", timeout=60)
    assert "denied net other.example:80" in screen
    assert "^[[2J^[[HFAKE-PROMPT" in screen  # held output arrives afterwards, as visible text
