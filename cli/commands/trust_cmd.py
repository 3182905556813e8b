"""`corral trust`: see, grant, deny and revoke trust in a project's configuration.

    corral trust list
    corral trust status [DIR]     one line; exit 0 only when trusted and unchanged, else 1
    corral trust show [DIR]       what would load (escaped), widening values marked `!`, diff after a change
    corral trust grant [DIR]      show, then trust exactly what was shown
    corral trust deny [DIR]       deny: the project's config never loads, whatever it says
    corral trust revoke [DIR]     forget the decision (back to untrusted)

DIR defaults to the git root of the current directory (found by looking for `.git` upwards, without
running git), else the current directory. Arguments come from the command line only: no environment
variable, repo file or headless mode trusts a project. `$HOME` and `/` can never be trusted.

Exit status: 0 on success (for `status`: trusted and unchanged); 1 for a refusal or any other state;
2 for usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from corral.locations import Locations
    from trust.gate import GateResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `corral trust` and its sub-commands."""
    parser = subparsers.add_parser(
        "trust",
        help="see and decide whether a project's .corral/ configuration may load",
        description="Nothing in a project's .corral/ is read or run until you trust it; any change "
        "withdraws trust until you approve the new content.",
    )
    actions = parser.add_subparsers(dest="trust_action", metavar="ACTION", parser_class=type(parser))
    listing = actions.add_parser("list", help="list every trust decision")
    listing.set_defaults(handler=_list)
    for name, handler, text in (
        ("status", _status, "one line; exit 0 only when trusted and unchanged"),
        ("show", _show, "show what would load, and the diff after a change"),
        ("grant", _grant, "show, then trust exactly what was shown"),
        ("deny", _deny, "never load this project's config"),
        ("revoke", _revoke, "forget the decision about this project"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "directory", nargs="?", metavar="DIR", help="project directory (default: git root)"
        )
        action.set_defaults(handler=handler)
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return 2


def default_project_dir(start: Path | None = None) -> Path:
    """The nearest ancestor of `start` (default: cwd) holding a `.git` entry, else `start` itself.

    Only `lstat` is used: git is not run and nothing in `.git` is read.
    """
    origin = Path(os.path.abspath(start if start is not None else os.getcwd()))
    for candidate in (origin, *origin.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return origin


def _locations() -> Locations:
    from corral.locations import Locations

    return Locations.default()


def _project(args: argparse.Namespace) -> Path:
    return Path(args.directory) if args.directory is not None else default_project_dir()


def _fail(message: str) -> NoReturn:
    """A trust refusal: one line and exit 1, raised to the CLI edge."""
    from corral.errors import Refused

    raise Refused(f"trust: {message}")


def _evaluate(args: argparse.Namespace) -> GateResult | None:
    from corral.trusting import evaluate_project
    from trust.store import TrustError

    try:
        return evaluate_project(_project(args), _locations())
    except (OSError, ValueError, TrustError) as error:
        _fail(str(error))
        return None


def _status(args: argparse.Namespace) -> int:
    result = _evaluate(args)
    if result is None:
        return 1
    from corral.trust_report import status_line

    print(status_line(result))
    return 0 if result.trusted else 1


def _list(args: argparse.Namespace) -> int:
    from boundary.termsafe import visible_path
    from corral.trust_report import when
    from corral.trusting import trust_store

    records = trust_store(_locations()).records()
    if not records:
        print("no trust decisions")
    for record in records:
        print(f"{record.decision.value:8} {when(record.decided_at)}  {visible_path(record.root)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    result = _evaluate(args)
    if result is None:
        return 1
    from corral.locations import Locations
    from corral.trust_report import brokered_lines, report_text

    print(report_text(result, brokered_lines(result, Locations.default().user_config_path)), end="")
    return 0


def _grant(args: argparse.Namespace) -> int:
    from corral.locations import Locations
    from corral.trust_report import brokered_lines, report_text
    from corral.trusting import grant_shown
    from trust.store import TrustError

    result = _evaluate(args)
    if result is None:
        return 1
    print(report_text(result, brokered_lines(result, Locations.default().user_config_path)), end="")
    if result.untrustable:
        return _fail(result.untrustable)
    try:
        grant_shown(result, _locations())
    except (TrustError, OSError) as error:
        return _fail(str(error))
    print(f"\ntrusted {result.root}")
    return 0


def _deny(args: argparse.Namespace) -> int:
    from corral.trusting import deny_project
    from trust.store import TrustError

    try:
        record = deny_project(_project(args), _locations())
    except (TrustError, OSError) as error:
        return _fail(str(error))
    print(f"denied {record.root}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from corral.trusting import revoke_project

    try:
        removed = revoke_project(_project(args), _locations())
    except OSError as error:
        return _fail(str(error))
    print("decision removed" if removed else "no decision to remove")
    return 0
