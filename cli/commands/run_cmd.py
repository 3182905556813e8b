"""`corral run`: run one command in the sandbox.

    corral run [--project DIR] [--on-violation ask|deny] [--report FILE] -- CMD [ARG...]
    corral run [...] -c 'SHELL STRING'

Exit status: the command's own; 77 when it exited 0 but a violation was denied; 125 when the sandbox
could not be set up (nothing ran); 127 when the command does not exist; 3 with --require-trust in an
untrusted project; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cli.backend_option import add_backend_option, apply_backend_option

if TYPE_CHECKING:
    from corral.decision import AskCallback


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one command in the sandbox",
        description="Run one command in the sandbox; ask (on a TTY) or deny when it crosses the boundary.",
    )
    parser.add_argument(
        "--project", metavar="DIR", help="the workspace (default: git root of the current directory)"
    )
    parser.add_argument(
        "--on-violation",
        choices=("ask", "deny"),
        default=None,
        help="what to do when the command crosses the boundary (default: ask on a TTY, else deny)",
    )
    parser.add_argument("--report", metavar="FILE", help="write a JSON report of the run to FILE")
    parser.add_argument("--allow-home-workspace", action="store_true", help="allow $HOME as the workspace")
    parser.add_argument("--require-trust", action="store_true", help="exit 3 unless the project is trusted")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="allow HOST for this run (repeatable)",
    )
    parser.add_argument(
        "--description",
        metavar="TEXT",
        help="what the agent says the command does (shown in a prompt after the command, labelled unverified)",
    )
    parser.add_argument(
        "--no-session", action="store_true", help="run standalone even when the project has a live session"
    )
    parser.add_argument("-c", dest="shell_command", metavar="STRING", help="run STRING with the shell")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")
    add_backend_option(parser)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    """Build the typed request for the core: the `Command` once, here, and the prompt if one is needed."""
    apply_backend_option(args)
    from dataclasses import replace
    from pathlib import Path

    from corral.command import Command, OnViolation, RunRequest
    from corral.errors import UsageError

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if args.shell_command is not None and argv:
        raise UsageError("give either -c STRING or -- CMD [ARG...], not both")
    if args.shell_command is None and not argv:
        raise UsageError("no command to run (usage: corral run -- CMD [ARG...] or corral run -c STRING)")
    if args.shell_command is not None:
        command = Command.from_shell(args.shell_command, args.description)
    else:
        command = Command.from_argv(argv, args.description)
    interactive = _interactive()
    on_violation = OnViolation(args.on_violation or ("ask" if interactive else "deny"))
    request = RunRequest(
        command=command,
        on_violation=on_violation,
        project=Path(args.project) if args.project else None,
        report=Path(args.report) if args.report else None,
        allow_home_workspace=args.allow_home_workspace,
        require_trust=args.require_trust,
        allow_hosts=tuple(args.allow_host),
        # A forced backend runs standalone: a live session runs under its own backend.
        no_session=args.no_session or args.backend not in (None, "auto"),
    )
    from corral.broker.run_client import run_via_session

    joined = run_via_session(request, hint=args.on_violation is None)
    if joined is not None:
        return joined
    if interactive and on_violation is OnViolation.ASK:
        request = replace(request, ask=line_mode_ask())
    from corral.run import run_command

    return run_command(request)


def _interactive() -> bool:
    """A person is at the terminal: both stdin and stderr are terminals."""
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def line_mode_ask() -> AskCallback:
    """The prompt-toolkit line-mode prompt, loaded directly (the command line sits above the front ends).

    A prompt that cannot load is a setup failure, exit 125 with one line, before anything runs: never
    a run in which nobody is asked and every crossing is silently denied.
    """
    from corral.errors import SetupError

    try:
        from tui.line import make_ask

        return make_ask()
    except Exception as error:
        raise SetupError(f"the line-mode prompt could not start, so nothing ran: {error}") from error
