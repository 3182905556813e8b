"""Done-when for the session broker: `corral shell` open under tmux owns the project's live session;
a separate process with no TTY runs `corral run -c 'touch ~/x'`, the dialog appears in the TUI, the
answer ("allow for this session") reaches that process, and it holds for the next no-TTY command.
The headless `corral session` asks on its own terminal, inline.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CORRAL
from tests.test_tui_tmux import Terminal, terminal_env, tmux_socket, workspace

__all__ = ["terminal_env", "tmux_socket", "workspace"]

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "tmux"], capture_output=True, check=False).returncode != 0,
    reason="tmux is not installed (Debian package: tmux)",
)


def _agent(env: dict[str, str], workspace: Path, script: str) -> subprocess.Popen[str]:
    """A no-TTY `corral run -c SCRIPT`, as an agent runs it."""
    return subprocess.Popen(
        [CORRAL, "run", "-c", script],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_socket(runtime: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list((runtime / "corral" / "sessions").glob("*.sock")):
            return
        time.sleep(0.1)
    raise AssertionError("the shell never started serving its session")


def test_agent_command_prompts_in_the_tui_and_session_answer_holds(
    workspace: Path, terminal_env: dict[str, str], isolated_home: Path, tmux_socket: str
) -> None:
    term = Terminal(tmux_socket, terminal_env, workspace, [CORRAL, "shell"])
    try:
        term.wait_for("not trusted yet")
        term.send("u")
        term.wait_gone("not trusted yet")
        _wait_for_socket(Path(terminal_env["XDG_RUNTIME_DIR"]))
        agent = _agent(terminal_env, workspace, "touch ~/x && echo agent-wrote-x")
        term.wait_for("crossed the sandbox boundary")
        assert agent.poll() is None  # the agent waits for the person's answer
        time.sleep(0.6)  # the dialog ignores answer keys for its first 0.4 s
        term.send("s")
        out, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err
        assert out == "agent-wrote-x\n"
        assert (isolated_home / "x").exists()
        term.wait_for("escalated → allowed")
        # The session answer holds for the next no-TTY command: no dialog, the write is applied.
        second = _agent(terminal_env, workspace, "echo again >> ~/x")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert (isolated_home / "x").read_text() == "again\n"
        assert term.screen().count("crossed the sandbox boundary") == 0
        term.send("C-q")
        term.wait_for("EXITED=0")
    finally:
        term.close()
    # With the shell gone, the next no-TTY command runs standalone and is denied without asking.
    third = _agent(terminal_env, workspace, "touch ~/y")
    _out, err = third.communicate(timeout=60)
    assert third.returncode == 77
    assert not (isolated_home / "y").exists()
    assert "corral session" in err  # says, once, how to start a session


def test_headless_session_asks_on_its_own_terminal(
    workspace: Path, terminal_env: dict[str, str], isolated_home: Path, tmux_socket: str
) -> None:
    term = Terminal(tmux_socket, terminal_env, workspace, [CORRAL, "session"])
    try:
        term.wait_for("corral session: serving")
        agent = _agent(terminal_env, workspace, "touch ~/x; echo out; echo err >&2; exit 4")
        term.wait_for("Allow?")
        assert "touch ~/x" in term.screen()
        term.send("o")
        out, err = agent.communicate(timeout=60)
        assert agent.returncode == 4
        assert out == "out\n" and "err\n" in err
        assert (isolated_home / "x").exists()
        term.wait_for("exit 4")
        denied = _agent(terminal_env, workspace, "touch ~/y")
        term.wait_for("Allow?", count=2)
        term.send("Enter")  # the default is deny
        _out, err = denied.communicate(timeout=60)
        assert denied.returncode == 77
        assert "denied fs-write ~/y" in err
        assert not (isolated_home / "y").exists()
        term.send("C-c")
        term.wait_for("EXITED=0")
    finally:
        term.close()


def test_agent_command_prompts_inline_in_the_line_shell(
    workspace: Path, terminal_env: dict[str, str], isolated_home: Path, tmux_socket: str
) -> None:
    term = Terminal(tmux_socket, terminal_env, workspace, [CORRAL, "shell", "--plain"])
    try:
        term.wait_for("Trust this project?")
        term.send("u")
        term.wait_for("corral . $")
        _wait_for_socket(Path(terminal_env["XDG_RUNTIME_DIR"]))
        term._tmux("send-keys", "-t", "t", "-l", "echo half-typed")  # typed, not yet entered
        agent = _agent(terminal_env, workspace, "touch ~/x && echo agent-wrote-x")
        term.wait_for("Allow?")
        assert "touch ~/x" in term.screen()
        term.send("s")
        out, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err
        assert out == "agent-wrote-x\n"
        assert (isolated_home / "x").exists()
        second = _agent(terminal_env, workspace, "echo again >> ~/x")
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert (isolated_home / "x").read_text() == "again\n"
        assert term.screen().count("Allow?") == 1
        term.send("Enter")  # the half-typed line survived the agent's prompt
        term.wait_for("half-typed", count=2)
        term.type("exit")
        term.wait_for("EXITED=0")
    finally:
        term.close()
