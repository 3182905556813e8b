"""`corral session [DIR] [--on-violation ask|deny]`: a live session with no UI, beside an agent.

Agents' `corral run` (and `corral mcp`) for the project join it; its prompts are asked on this
terminal. Exit status: 0 when ended by a signal; 1 when another session already serves the project
or its socket directory is unsafe; 2 for usage errors.
"""

from __future__ import annotations

import argparse

from cli.backend_option import add_backend_option, apply_backend_option


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "session",
        help="serve a project's live session (no UI) for agents' commands",
        description="Own the project's live session: agents' `corral run` commands run here, prompts ask here.",
    )
    parser.add_argument(
        "dir", nargs="?", metavar="DIR", help="the project (default: git root of the current directory)"
    )
    parser.add_argument(
        "--on-violation",
        choices=("ask", "deny"),
        default="ask",
        help="ask on this terminal (default) or deny every crossing no rule allows",
    )
    add_backend_option(parser)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    """The prompt is loaded here, at the top (cli imports the front end; the core never does)."""
    apply_backend_option(args)
    from cli.commands.run_cmd import line_mode_ask
    from corral.broker.headless import has_terminal, run_session

    ask = line_mode_ask() if has_terminal() and args.on_violation != "deny" else None
    return run_session(args.dir, ask)
