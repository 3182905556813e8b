"""The `corral` command line: discovers sub-commands in `cli.commands` and dispatches.

Exit statuses: the command's own for `run`; 2 for usage errors; 125 when corral could not set up the
sandbox; 3 when `--require-trust` refused an untrusted project; 1 for other refusals.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cli import commands as commands_package
from corral import __version__

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"corral: {message} (see `corral {self._sub_name()}--help`)\n")

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
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = args_list[0] if args_list else None
    fast = first if first is not None and first.isidentifier() and not first.startswith("-") else None
    parser = build_parser(only=fast)
    if fast is not None and not _has_command(parser, fast):
        parser = build_parser()
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
