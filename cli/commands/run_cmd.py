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
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if args.shell_command is not None and argv:
        print("corral: give either -c STRING or -- CMD [ARG...], not both", file=sys.stderr)
        return 2
    if args.shell_command is None and not argv:
        print(
            "corral: no command to run (usage: corral run -- CMD [ARG...] or corral run -c STRING)",
            file=sys.stderr,
        )
        return 2
    from corral.broker.run_client import run_via_session

    joined = run_via_session(args, argv)
    if joined is not None:
        return joined
    from corral.run import run_from_cli

    return run_from_cli(args, argv)
