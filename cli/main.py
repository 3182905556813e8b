"""The `corral` command line: discovers sub-commands in `cli.commands`, dispatches, and is the one
place where an error becomes a line and an exit status.

Every failure below is a `corral.errors.CorralError` carrying its exit status: the command's own for
`run`; 2 for usage errors; 3 when `--require-trust` refused an untrusted project (or the person quit at
the trust dialog); 125 when corral could not set up the sandbox or the prompt, or its own state is
damaged; 127 when the command does not exist; 1 for other refusals. `main` catches it once and prints
``corral: <message>`` on one line, with control characters made inert.

Everything printed goes through the one escaping function: `main` runs with `sys.stdout`/`sys.stderr`
wrapped by `corral.termsafe.inert_stdio`, except while `shell` runs (its front ends own the terminal
and escape what they draw themselves) and while `mcp` runs (stdout is its JSON-RPC channel; the
tool results are JSON, never drawn on a terminal by corral).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from boundary.termsafe import visible
from cli import commands as commands_package
from corral import __version__
from corral.errors import CorralError, Interrupted, UsageError
from corral.termsafe import inert_stdio, terminal_owned


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are a `UsageError` (one line, exit status 2), caught in `main`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `corral {self._sub_name()}--help`)")

    def _sub_name(self) -> str:
        parts = self.prog.split()[1:]
        return (" ".join(parts) + " ") if parts else ""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with `only`, register just that sub-command (fast path for `corral run`)."""
    parser = _Parser(prog="corral", description="Run coding-agent commands in an OS sandbox.")
    parser.add_argument("--version", action="version", version=f"corral {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if only is not None:
        names = [f"{only}_cmd"]  # the fast path: no directory scan, one module
    else:
        import pkgutil

        names = sorted(m.name for m in pkgutil.iter_modules(commands_package.__path__))
    for name in names:
        try:
            module = importlib.import_module(f"cli.commands.{name}")
        except ModuleNotFoundError as error:
            if only is not None and error.name == f"cli.commands.{name}":
                continue
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _has_command(parser: argparse.ArgumentParser, name: str) -> bool:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return name in action.choices
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `corral` command line; returns the exit status. The only `except CorralError` in corral."""
    with inert_stdio():
        try:
            return _dispatch(list(sys.argv[1:] if argv is None else argv))
        except CorralError as error:
            print(f"corral: {visible(str(error), one_line=True)}", file=sys.stderr)
            return error.exit_status
        except KeyboardInterrupt:
            return Interrupted.exit_status


def _dispatch(args_list: list[str]) -> int:
    first = args_list[0] if args_list else None
    fast = first if first is not None and first.isidentifier() and not first.startswith("-") else None
    parser = build_parser(only=fast)
    if fast is not None and not _has_command(parser, fast):
        parser = build_parser()
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return UsageError.exit_status
    if args.command in ("shell", "mcp"):  # mcp: stdout is its JSON-RPC channel, bytes as they are
        with terminal_owned():
            return int(handler(args))
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
