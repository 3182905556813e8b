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
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.locations import Locations
    from trust.gate import GateResult

WIDENING_MARK = "!"


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


def _fail(message: str) -> int:
    from trust.display import visible

    print(f"corral trust: {visible(message, keep_newlines=False)}", file=sys.stderr)
    return 1


def _evaluate(args: argparse.Namespace) -> GateResult | None:
    from corral.trusting import evaluate_project
    from trust.store import TrustError

    try:
        return evaluate_project(_project(args), _locations())
    except (OSError, ValueError, TrustError) as error:
        _fail(str(error))
        return None


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _status_line(result: GateResult) -> str:
    from trust.display import visible_path

    root = visible_path(str(result.root))
    if result.untrustable:
        return f"untrusted {root} (can never be trusted)"
    if result.record is not None:
        return f"{result.state.value} {root} (decided {_when(result.record.decided_at)})"
    return f"{result.state.value} {root}"


def _status(args: argparse.Namespace) -> int:
    result = _evaluate(args)
    if result is None:
        return 1
    print(_status_line(result))
    return 0 if result.trusted else 1


def _list(args: argparse.Namespace) -> int:
    from corral.trusting import trust_store
    from trust.display import visible_path

    records = trust_store(_locations()).records()
    if not records:
        print("no trust decisions")
    for record in records:
        print(f"{record.decision.value:8} {_when(record.decided_at)}  {visible_path(record.root)}")
    return 0


def _marked_config_lines(text: str, values: list[str]) -> list[str]:
    """Prefix lines naming a widening value or key with the mark (a visual aid; the list below rules)."""
    out = []
    needles = [f'"{v}"' for v in values] + [f"'{v}'" for v in values]
    for line in text.splitlines():
        bare = line.strip()
        widening = any(n in line for n in needles) or bare.startswith(("writable", "allow"))
        out.append(f"{WIDENING_MARK if widening else ' '} | {line}")
    return out


def _print_report(result: GateResult) -> None:
    from trust.config import CONFIG_SOURCE
    from trust.discovery import FileCategory
    from trust.display import visible, visible_path

    print(_status_line(result))
    print(f"fingerprint {result.fingerprint}")
    for problem in result.discovery.problems:
        print(f"problem: {visible_path(problem)}")
    review = result.review()
    values = [w.value for w in review.widening]
    groups = (
        (FileCategory.CORRAL, "Project config (loads only after trust):"),
        (FileCategory.AGENT, "Other agents' config (corral never loads it; a change withdraws trust):"),
        (FileCategory.SHELL, "Shell hooks of other tools (content not shown; a change withdraws trust):"),
        (FileCategory.LISTED, "Also present (corral never reads these):"),
    )
    for category, title in groups:
        files = [f for f in result.discovery.files if f.category is category]
        if not files:
            continue
        print(f"\n{title}")
        for found in files:
            digest = f"  sha256 {found.sha256[:16]}" if found.sha256 else ""
            print(f"  {visible_path(found.path)}  {found.size} bytes{digest}")
        for found in files:
            if found.content is None:
                continue
            print(f"\n--- {visible_path(found.path)}")
            text = found.visible_text()
            if found.path == CONFIG_SOURCE:
                print("\n".join(_marked_config_lines(text, values)))
            else:
                print("\n".join(f"  | {line}" for line in text.splitlines()))
    if review.widening:
        print("\nWidens the sandbox boundary:")
        for widening in review.widening:
            value = visible(widening.value, keep_newlines=False)
            print(f"{WIDENING_MARK} {widening.key} = {value}  ({widening.reason})")
    for warning in review.host_warnings:
        print(f"{WIDENING_MARK} warning: {visible(warning, keep_newlines=False)}")
    if review.hooks:
        print("\nHooks (run inside the sandbox):")
        for hook in review.hooks:
            print(f"  {hook.event}: {visible(hook.command, keep_newlines=False)}")
    if review.env:
        print("\nEnvironment for commands:")
        for name, value in review.env:
            print(f"  {name}={visible(value, keep_newlines=False)}")
    if review.error:
        print(f"\nConfig error (it cannot be trusted as is): {visible(review.error, keep_newlines=False)}")
    if result.diff:
        print("\nChanged since you trusted it:")
        print(result.diff, end="")
    if result.commits:
        print("\nCommits touching these files since the decision:")
        for commit in result.commits:
            summary = visible(commit.summary, keep_newlines=False)
            author = visible(commit.author, keep_newlines=False)
            print(f"  {commit.sha[:12]} {_when(commit.time)} {author}: {summary}")


def _show(args: argparse.Namespace) -> int:
    result = _evaluate(args)
    if result is None:
        return 1
    _print_report(result)
    return 0


def _grant(args: argparse.Namespace) -> int:
    from corral.trusting import grant_shown
    from trust.store import TrustError

    result = _evaluate(args)
    if result is None:
        return 1
    _print_report(result)
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
