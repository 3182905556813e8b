"""The `corral run` path: one command, one Session, output passed through live.

When stdout or stderr is a terminal, the sandbox writes to a pipe and corral copies the bytes through
`TerminalFilter`, so no raw escape sequence from the sandbox reaches the terminal (colours survive).
When stdin is a terminal, the sandbox reads a pipe that corral feeds, so the sandbox never holds the
user's terminal. Otherwise the descriptors are passed straight through (agents, pipes: zero copies).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from corral.decision import AskCallback, PromptAnswer, PromptRequest
from corral.denials import denial_lines
from corral.escalation import OnViolation
from corral.ledger import LedgerError
from corral.locations import Locations
from corral.opening import open_session
from corral.project import ConfigError, open_project
from corral.rules import RuleError
from corral.session import CommandOutcome, Session, command_text, resolve_command, shell_argv
from corral.termsafe import copy_filtered
from corral.userconfig import UserConfigError
from corral.workspace import WorkspaceError, find_workspace
from sandbox.bwrap import SandboxSetupError
from sandbox.egress.hostpolicy import PolicyError
from sandbox.runner import EXIT_SETUP_FAILED, StdioSpec

EXIT_USAGE = 2
EXIT_NOT_FOUND = 127
EXIT_UNTRUSTED = 3


def _err(message: str) -> None:
    print(f"corral: {message}", file=sys.stderr)


def run_from_cli(args: argparse.Namespace, argv: list[str]) -> int:
    locations = Locations.default()
    start = Path(args.project) if args.project else Path.cwd()
    try:
        workspace = find_workspace(start, explicit=bool(args.project), allow_home=args.allow_home_workspace)
    except WorkspaceError as error:
        _err(str(error))
        return EXIT_USAGE
    command = shell_argv(args.shell_command) if args.shell_command is not None else argv
    try:
        project = open_project(workspace, locations)
    except ConfigError as error:
        _err(str(error))
        return EXIT_USAGE
    if not project.trusted and args.require_trust:
        print(project.gate.notice(), file=sys.stderr)
        return EXIT_UNTRUSTED
    notice = project.notice()
    if notice:
        print(notice, file=sys.stderr)
    interactive = _isatty(sys.stdin) and _isatty(sys.stderr)
    on_violation = OnViolation(args.on_violation or ("ask" if interactive else "deny"))
    ask = _line_mode_ask() if interactive and on_violation is OnViolation.ASK else None
    terminal_input = TerminalInput() if _isatty(sys.stdin) else None
    if ask is not None and terminal_input is not None:
        ask = terminal_input.paused_while(ask)
    try:
        session, warnings = open_session(
            workspace,
            locations,
            ask=ask,
            frontend="line" if ask else "cli",
            on_violation=on_violation,
            allow_hosts=args.allow_host,
            project=project,
            session_start=False,  # one standalone command is not a session (README: Hooks)
        )
    except (UserConfigError, PolicyError) as error:
        _err(str(error))
        return EXIT_USAGE
    except (LedgerError, RuleError, sqlite3.DatabaseError) as error:
        # corral's own state is damaged: refuse (nothing ran) and leave the file for the person to inspect.
        _err(f"cannot use corral's state: {error} (move the file aside to start afresh)")
        return EXIT_SETUP_FAILED
    for warning in warnings:
        _err(f"warning: {warning}")
    cwd = Path.cwd()
    if resolve_command(command, session.policy(cwd).env, cwd) is None:
        _err(f"{command[0]}: command not found")
        return EXIT_NOT_FOUND
    try:
        outcome = _run_with_stdio(session, command, cwd, terminal_input, args.description)
    except SandboxSetupError as error:
        _err(f"the sandbox could not start, so nothing ran: {error}")
        return EXIT_SETUP_FAILED
    finally:
        session.close()
    for part in (*outcome.hook_outcomes, outcome):
        for line in denial_lines(workspace, part.decisions):
            print(line, file=sys.stderr)
    for notice in outcome.notices:
        print(notice if notice.startswith("corral:") else f"corral: {notice}", file=sys.stderr)
    for change, reason in outcome.refused:
        _err(f"not applied: {change.path}: {reason}")
    if args.report:
        _write_report(Path(args.report), outcome)
    return outcome.status


def _line_mode_ask() -> AskCallback | None:
    """The prompt-toolkit line-mode prompt, found through the `corral.frontends` entry point (the core
    never imports a front end). None when no front end is installed: then nothing is asked."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="corral.frontends", name="line-ask"):
        try:
            factory = entry.load()
            ask: AskCallback = factory()
            return ask
        except Exception:
            return None
    return None


def _write_report(path: Path, outcome: CommandOutcome) -> None:
    try:
        path.write_text(json.dumps(outcome.report(), indent=2) + "\n")
    except OSError as error:
        _err(f"could not write the report {path}: {error.strerror}")


def _run_with_stdio(
    session: Session,
    command: Sequence[str],
    cwd: Path,
    terminal_input: TerminalInput | None,
    description: str | None = None,
) -> CommandOutcome:
    pumps: list[threading.Thread] = []
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
            thread = threading.Thread(target=copy_filtered, args=(read_end, stream.fileno()), daemon=True)
            pumps.append(thread)
            if assign == "out":
                stdout_fd = write_end
            else:
                stderr_fd = write_end
    for thread in pumps:
        thread.start()
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: session.runner.interrupt(signal.SIGINT))
    stdio = StdioSpec(stdin_fd, stdout_fd, stderr_fd)
    try:
        outcome = session.run_with_hooks(command, cwd=cwd, stdio=stdio, description=description)
    finally:
        signal.signal(signal.SIGINT, previous)
        if terminal_input is not None:
            terminal_input.stop()
        for fd in close_after:
            os.close(fd)
        for thread in pumps:
            thread.join(timeout=5)
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
            with self._lock:
                self._paused = True
            try:
                return ask(request)
            finally:
                with self._lock:
                    self._paused = False

        return asking

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
                ready, _, _ = select.select([source, self._stop_r], [], [], 0.2)
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


__all__ = ["command_text", "run_from_cli"]
