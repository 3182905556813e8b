"""`corral mcp [DIR]`: an MCP server over stdio with a sandboxed `run_command` tool for the project.

Register it in an MCP client as the command `corral mcp /path/to/project`. Exit status: 0 when the
client closes the connection; 2 for usage errors.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "mcp",
        help="serve a sandboxed run_command tool over MCP (stdio)",
        description="An MCP server over stdio: run_command runs in the project's sandbox and session.",
    )
    parser.add_argument(
        "dir", nargs="?", metavar="DIR", help="the project (default: git root of the current directory)"
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from corral.broker.mcp_server import serve
    from corral.workspace import find_workspace

    workspace = find_workspace(Path(args.dir) if args.dir else Path.cwd(), explicit=bool(args.dir))
    return serve(workspace)
