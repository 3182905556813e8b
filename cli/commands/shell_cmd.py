"""`corral shell [DIR] [--plain]`: the interactive agent shell for one project.

The front end lives in `tui/`, which the command line imports directly (cli sits above tui, which sits
above the core). Exit status: 0 on a normal exit; 3 when the person quit at the trust dialog; 2 for
usage errors and when stdin or stdout is not a terminal (both front ends would wait for keys that never
come: one clear line instead of a hang).
"""

from __future__ import annotations

import argparse
import sys

from cli.backend_option import add_backend_option, apply_backend_option
from corral.errors import UsageError

NO_TERMINAL = (
    "`corral shell` needs a terminal (stdin and stdout must be one); "
    "from scripts and agents use `corral run -c COMMAND`"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `shell` sub-command."""
    parser = subparsers.add_parser(
        "shell",
        help="open the agent shell for a project",
        description="Run commands for one project in the sandbox, answering prompts in a full-screen app.",
    )
    parser.add_argument(
        "dir", nargs="?", metavar="DIR", help="the project (default: git root of the current directory)"
    )
    parser.add_argument(
        "--plain", action="store_true", help="line mode (prompt-toolkit) instead of the full-screen app"
    )
    add_backend_option(parser)
    parser.set_defaults(handler=_handle)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:
        return False


def _handle(args: argparse.Namespace) -> int:
    apply_backend_option(args)
    if not (_is_terminal(sys.stdin) and _is_terminal(sys.stdout)):
        raise UsageError(NO_TERMINAL)
    from tui.app import run_shell

    return run_shell(args.dir, plain=args.plain)
