"""The `corral run` path: one command, one Session, output passed through live.

When stdout or stderr is a terminal, the sandbox writes to a pipe and corral copies the bytes through
`TerminalFilter`, so no raw escape sequence from the sandbox reaches the terminal (colours survive).
When stdin is a terminal, the sandbox reads a pipe that corral feeds, so the sandbox never holds the
user's terminal. While a prompt is open the copier holds the output back (`OutputHold`) and the input
feed is paused, so the prompt stays the last thing on screen and no key meant for it reaches the
command. Otherwise the descriptors are passed straight through (agents, pipes: zero copies).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from corral.command import Command, RunRequest
from corral.decision import AskCallback, PromptAnswer, PromptRequest
from corral.denials import denial_lines
from corral.errors import CommandNotFound, SetupError, Untrusted, UsageError
from corral.locations import Locations
from corral.opening import open_session
from corral.piping import Pump, filtered_pump, sigint_interrupts
from corral.project import ConfigError, open_project
from corral.session import CommandOutcome, Session, resolve_command
from corral.termsafe import OutputHold
from corral.workspace import find_workspace
from sandbox.bwrap import SandboxSetupError
from sandbox.fdwait import readable
from sandbox.runner import StdioSpec

if TYPE_CHECKING:
    from corral.sshagent import TerminalTurn

_T = TypeVar("_T")


def _err(message: str) -> None:
    print(f"corral: {message}", file=sys.stderr)


def run_command(request: RunRequest) -> int:
    """Run one command sandboxed; returns corral's exit status (the command's own, or 77 when it exited 0
    but a crossing was denied). Raises `corral.errors.CorralError` when nothing could run."""
    locations = Locations.default()
    start = request.project if request.project is not None else Path.cwd()
    workspace = find_workspace(
        start, explicit=request.project is not None, allow_home=request.allow_home_workspace
    )
    try:
        project = open_project(workspace, locations)
    except ConfigError as error:
        raise UsageError(str(error)) from error
    if not project.trusted and request.require_trust:
        raise Untrusted(project.gate.refusal().removeprefix("corral: "))
    notice = project.notice()
    if notice:
        print(notice, file=sys.stderr)
    ask = request.ask
    terminal_input = TerminalInput() if _isatty(sys.stdin) else None
    hold = OutputHold()
    if ask is not None and terminal_input is not None:
        ask = terminal_input.paused_while(ask)
    if ask is not None:
        ask = hold.around(ask)  # the command's output waits while the prompt is on screen
    terminal_turn: TerminalTurn | None = None
    if terminal_input is not None:
        paused = terminal_input

        def terminal_turn(work: Callable[[], None]) -> None:
            with hold.holding():  # ssh-add's passphrase prompt stays the last thing on screen
                paused.paused(work)

    session, warnings = open_session(
        workspace,
        locations,
        ask=ask,
        terminal_turn=terminal_turn,
        frontend="line" if ask else "cli",
        on_violation=request.on_violation,
        allow_hosts=request.allow_hosts,
        project=project,
        session_start=False,  # one standalone command is not a session (README: Hooks)
    )
    for warning in warnings:
        _err(f"warning: {warning}")
    cwd = Path.cwd()
    try:
        if resolve_command(request.command.argv, session.policy(cwd).env, cwd) is None:
            raise CommandNotFound(f"{request.command.argv[0]}: command not found")
        try:
            outcome = _run_with_stdio(session, request.command, cwd, terminal_input, hold)
        except SandboxSetupError as error:
            raise SetupError(f"{error.summary}: {error}") from error
    finally:
        session.close()
    for part in (*outcome.hook_outcomes, outcome):
        for line in denial_lines(workspace, part.decisions):
            print(line, file=sys.stderr)
    for notice in outcome.notices:
        print(notice if notice.startswith("corral:") else f"corral: {notice}", file=sys.stderr)
    for change, reason in outcome.refused:
        _err(f"not applied: {change.path}: {reason}")
    if request.report is not None:
        _write_report(request.report, outcome)
    return outcome.status


def _write_report(path: Path, outcome: CommandOutcome) -> None:
    try:
        path.write_text(json.dumps(outcome.report(), indent=2) + "\n")
    except OSError as error:
        _err(f"could not write the report {path}: {error.strerror}")


def _run_with_stdio(
    session: Session,
    command: Command,
    cwd: Path,
    terminal_input: TerminalInput | None,
    hold: OutputHold | None = None,
) -> CommandOutcome:
    pumps: list[Pump] = []
    close_after: list[int] = []
    stdin_fd: int | None = None
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    if terminal_input is not None:
        stdin_fd = terminal_input.start()
        close_after.append(stdin_fd)
    for stream, assign in ((sys.stdout, "out"), (sys.stderr, "err")):
        if _isatty(stream):
            read_end, write_end = os.pipe()
            close_after.append(write_end)
            pumps.append(filtered_pump(stream.fileno(), hold)(read_end))
            if assign == "out":
                stdout_fd = write_end
            else:
                stderr_fd = write_end
    stdio = StdioSpec(stdin_fd, stdout_fd, stderr_fd)
    try:
        with sigint_interrupts(session):
            outcome = session.run_with_hooks(command, cwd=cwd, stdio=stdio)
    finally:
        if terminal_input is not None:
            terminal_input.stop()
        for fd in close_after:
            os.close(fd)
        for pump in pumps:
            pump.join(5.0)
    return outcome


class TerminalInput:
    """Feeds the person's terminal input to the sandbox through a pipe, so the sandbox never holds the
    terminal. It reads only while not paused: a prompt (which reads the terminal itself) pauses it, so
    no keypress meant for the prompt is ever handed to the command."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paused = False
        self._stop_r, self._stop_w = os.pipe()
        self._write_end = -1
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Start feeding; returns the read end to give the command as its stdin."""
        read_end, self._write_end = os.pipe()
        self._thread = threading.Thread(target=self._feed, daemon=True, name="corral-stdin")
        self._thread.start()
        return read_end

    def paused_while(self, ask: AskCallback) -> AskCallback:
        def asking(request: PromptRequest) -> PromptAnswer:
            return self.paused(lambda: ask(request))

        return asking

    def paused(self, work: Callable[[], _T]) -> _T:
        """Run `work` (which reads the terminal itself) with no input fed to the command meanwhile."""
        with self._lock:
            self._paused = True
        try:
            return work()
        finally:
            with self._lock:
                self._paused = False

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)

    def _feed(self) -> None:
        source = sys.stdin.fileno()
        try:
            while True:
                ready = readable([source, self._stop_r], 0.2)
                if self._stop_r in ready:
                    return
                if source not in ready:
                    continue
                with self._lock:
                    chunk = None if self._paused else os.read(source, 65536)
                if chunk is None:
                    time.sleep(0.05)
                    continue
                if not chunk:
                    return
                os.write(self._write_end, chunk)
        except OSError:
            return
        finally:
            os.close(self._write_end)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["RunRequest", "TerminalInput", "run_command"]
