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
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from corral.decision import AskCallback
from corral.escalation import OnViolation, denial_lines
from corral.locations import Locations
from corral.project import ConfigError, open_project
from corral.session import CommandOutcome, Session, command_text, resolve_command, shell_argv
from corral.termsafe import TerminalFilter
from corral.userconfig import UserConfigError, load_user_config
from corral.workspace import WorkspaceError, find_workspace
from sandbox.bwrap import SandboxSetupError
from sandbox.egress.hostpolicy import HostPolicy, PolicyError
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
    try:
        user = load_user_config(locations.user_config_path)
        hosts = HostPolicy.from_config(
            source=user.source, allow=user.network_allow, deny=user.network_deny, presets=user.network_presets
        )
        hosts.extend(source="--allow-host", allow=args.allow_host, allow_key="--allow-host")
    except (UserConfigError, PolicyError) as error:
        _err(str(error))
        return EXIT_USAGE
    for warning in hosts.warnings:
        _err(f"warning: {warning}")
    session = Session(
        workspace,
        locations=locations,
        ask=ask,
        frontend="line" if ask else "cli",
        on_violation=on_violation,
        ask_timeout_s=user.prompt_timeout_s,
        project=project,
        hosts=hosts,
    )
    cwd = Path.cwd()
    if resolve_command(command, session.policy(cwd).env, cwd) is None:
        _err(f"{command[0]}: command not found")
        return EXIT_NOT_FOUND
    try:
        outcome = _run_with_stdio(session, command, cwd)
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


def _run_with_stdio(session: Session, command: Sequence[str], cwd: Path) -> CommandOutcome:
    pumps: list[threading.Thread] = []
    close_after: list[int] = []
    stdin_fd: int | None = None
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    if _isatty(sys.stdin):
        read_end, write_end = os.pipe()
        stdin_fd = read_end
        close_after.append(read_end)
        pumps.append(_daemon(_feed_stdin, write_end))
    for stream, assign in ((sys.stdout, "out"), (sys.stderr, "err")):
        if _isatty(stream):
            read_end, write_end = os.pipe()
            close_after.append(write_end)
            thread = threading.Thread(target=_copy_filtered, args=(read_end, stream.fileno()), daemon=True)
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
        before = session.run_hook("before_command", stdio=stdio)
        outcome = session.run(command, cwd=cwd, stdio=stdio)
        after = session.run_hook("after_command", stdio=stdio)
        for hook in (before, after):
            if hook is not None:
                outcome.hook_outcomes.append(hook)
    finally:
        signal.signal(signal.SIGINT, previous)
        for fd in close_after:
            os.close(fd)
        for thread in pumps:
            if thread.name != "stdin":
                thread.join(timeout=5)
    return outcome


def _daemon(target: object, fd: int) -> threading.Thread:
    return threading.Thread(target=target, args=(fd,), daemon=True, name="stdin")  # type: ignore[arg-type]


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _feed_stdin(write_end: int) -> None:
    try:
        while chunk := os.read(sys.stdin.fileno(), 65536):
            os.write(write_end, chunk)
    except OSError:
        pass
    finally:
        try:
            os.close(write_end)
        except OSError:
            pass


def _copy_filtered(read_end: int, target_fd: int) -> None:
    terminal_filter = TerminalFilter()
    try:
        while chunk := os.read(read_end, 65536):
            _write_all(target_fd, terminal_filter.feed(chunk))
        _write_all(target_fd, terminal_filter.flush())
    except OSError:
        pass
    finally:
        os.close(read_end)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


__all__ = ["command_text", "run_from_cli"]
