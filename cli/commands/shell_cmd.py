"""`corral shell [DIR] [--plain]`: the interactive agent shell for one project.

The front end lives in `tui/` and is found through the `corral.frontends` entry point `shell` (the
core never imports it). Exit status: 0 on a normal exit; 3 when the person quit at the trust dialog;
2 for usage errors or when no front end is installed.
"""

from __future__ import annotations

import argparse
import sys


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
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from importlib.metadata import entry_points

    for entry in entry_points(group="corral.frontends", name="shell"):
        run_shell = entry.load()
        return int(run_shell(args))
    print("corral: no shell front end is installed (the `tui` package is missing)", file=sys.stderr)
    return 2
