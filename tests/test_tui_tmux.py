"""Both shells in a real terminal (tmux): the Textual app and `corral shell --plain`.

Each test starts `corral shell` in a private tmux server at 120x40, answers the trust question, runs a
workspace command (no prompt), then `touch ~/x` (one escalation prompt, answered "allow once"), checks
the file on the host, and shows that markup and escape sequences in output stay visible text.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CORRAL

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (Debian package: tmux)"
)
SPOOF = r"printf '[red]spoof[/] \033]52;c;aGk=\007 %s\n' $((40000+2))"
SPOOF_DONE = "40002"  # only in the output, never in the typed command


class Terminal:
    """A tmux session on a private socket."""

    def __init__(self, socket: str, env: dict[str, str], cwd: Path, command: list[str]) -> None:
        self.socket = socket
        environment = " ".join(f"{name}={value}" for name, value in env.items())
        shell_command = f"cd {cwd} && env {environment} {' '.join(command)}; echo EXITED=$?; sleep 30"
        # bash, whatever the user's login shell: dash (a normal user's default on Debian) dies of the Ctrl-C
        # its foreground child handled, taking the pane and the EXITED line with it.
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "120",
            "-y",
            "40",
            f"exec bash -c {shlex.quote(shell_command)}",
        )

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False, timeout=10
        )
        return done.stdout

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        self._tmux("send-keys", "-t", "t", "Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t", "-J", "-S", "-200")

    def wait_for(self, text: str, count: int = 1, timeout: float = 30.0) -> str:
        """Wait until `text` is on screen (including scrollback) at least `count` times."""
        return self.wait_until(lambda shown: shown.count(text) >= count, f"{text!r} x{count}", timeout)

    def wait_gone(self, text: str, timeout: float = 30.0) -> str:
        """Wait until `text` is no longer on screen."""
        return self.wait_until(lambda shown: text not in shown, f"{text!r} gone", timeout)

    def wait_until(self, check: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if check(shown):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"never on screen: {what}\n{self.screen()}")

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    # Something to decide on: a project with no trust-relevant file opens with no trust question.
    (root / ".mcp.json").write_text("{}\n")
    return root


@pytest.fixture
def terminal_env(isolated_home: Path) -> dict[str, str]:
    names = (
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_STATE_HOME",
        "XDG_RUNTIME_DIR",
    )
    env = {name: os.environ[name] for name in names}
    env.update({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TERM": "xterm-256color"})
    return env


@pytest.fixture
def tmux_socket(tmp_path: Path) -> Iterator[str]:
    socket = f"corral-test-{os.getpid()}-{tmp_path.name}"
    yield socket
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def test_textual_shell_in_a_real_terminal(
    workspace: Path, terminal_env: dict[str, str], isolated_home: Path, tmux_socket: str
) -> None:
    term = Terminal(tmux_socket, terminal_env, workspace, [CORRAL, "shell"])
    try:
        term.wait_for("not trusted yet")
        term.send("t")
        term.wait_gone("not trusted yet")
        term.type("echo hello-from-the-shell")
        term.wait_for("ran sandboxed")
        term.type(SPOOF)
        term.wait_for(SPOOF_DONE)
        shown = term.wait_for("ran sandboxed", count=2)
        assert "[red]spoof[/]" in shown and "^[]52;c;aGk=^G" in shown
        term.type("touch ~/x")
        term.wait_for("crossed the sandbox boundary")
        time.sleep(0.6)  # the dialog ignores answer keys for its first 0.4 s
        term.send("o")
        term.wait_gone("crossed the sandbox boundary")
        term.wait_for("escalated → allowed")
        assert (isolated_home / "x").exists()
        term.send("C-q")
        term.wait_for("EXITED=0")
        assert "not trusted" not in term.screen()
    finally:
        term.close()


def test_plain_shell_in_a_real_terminal(
    workspace: Path, terminal_env: dict[str, str], isolated_home: Path, tmux_socket: str
) -> None:
    term = Terminal(tmux_socket, terminal_env, workspace, [CORRAL, "shell", "--plain"])
    try:
        term.wait_for("Trust this project?")
        term.send("t")
        term.wait_for("corral . $")
        term.type(SPOOF)
        term.wait_for(SPOOF_DONE)
        shown = term.wait_for("ran sandboxed")
        assert "[red]spoof[/]" in shown and "^[]52;c;aGk=^G" in shown
        term.type("touch ~/x")
        term.wait_for("Allow?")
        term.send("o")
        term.wait_for("escalated → allowed")
        assert (isolated_home / "x").exists()
        term.type("touch ~/y")
        term.wait_for("Allow?", count=2)
        term.send("Enter")  # the default is deny
        term.wait_for("denied (asked)")
        assert not (isolated_home / "y").exists()
        term.type("exit")
        term.wait_for("EXITED=0")
    finally:
        term.close()
