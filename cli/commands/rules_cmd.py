"""`corral rules`: list, add and revoke project rules ("allow for this project").

    corral rules list [--project DIR] [--json]
    corral rules add --project DIR (--path P [--dir] | --host H) [--kind KIND] [--note TEXT]
                     [--confirm-sensitive]
    corral rules revoke ID

A rule allows one exact path (or, with `--dir`, a directory and everything under it) or one exact host
(`host` for any port, `host:port` for one) in one project. `--kind` defaults to `fs-write` for paths
and `net` for hosts; use `fs-protected` for protected workspace paths and `fs-read` for hidden
credential paths. Sensitive rules (protected paths, start-up files, credential stores, or directories
that hold them) need `--confirm-sensitive` and are listed with a warning.

Exit status: 0 on success; 1 when `revoke` finds no such rule or a rule is refused; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.rules import RuleStore

_KINDS = ("fs-write", "fs-protected", "fs-read", "net")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `corral rules` and its sub-commands."""
    parser = subparsers.add_parser(
        "rules",
        help="list, add and revoke project rules",
        description="Rules allow one path, directory or exact host in one project. They live in your "
        "data directory, never in the repository.",
    )
    actions = parser.add_subparsers(dest="rules_action", metavar="ACTION", parser_class=type(parser))

    listing = actions.add_parser("list", help="list rules (all projects, or one)")
    listing.add_argument("--project", metavar="DIR", help="only this project's rules")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    adding = actions.add_parser("add", help="allow one path, directory or host in a project")
    adding.add_argument("--project", metavar="DIR", required=True, help="the project the rule applies to")
    target = adding.add_mutually_exclusive_group(required=True)
    target.add_argument("--path", metavar="P", help="an exact path (with --dir: a directory and below)")
    target.add_argument("--host", metavar="H", help="an exact host, or host:port (no wildcards)")
    adding.add_argument(
        "--dir", action="store_true", help="the path is a directory: allow everything under it"
    )
    adding.add_argument(
        "--kind", choices=_KINDS, help="violation kind (default: fs-write for paths, net for hosts)"
    )
    adding.add_argument("--note", default="", help="a note shown by `corral rules list`")
    adding.add_argument(
        "--confirm-sensitive",
        action="store_true",
        help="confirm a rule for a protected path, start-up file or credential store",
    )
    adding.set_defaults(handler=_add)

    revoking = actions.add_parser("revoke", help="delete a rule by its id")
    revoking.add_argument("rule_id", metavar="ID", type=int, help="the id shown by `corral rules list`")
    revoking.set_defaults(handler=_revoke)

    parser.set_defaults(handler=_usage(parser))


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from corral.errors import UsageError

        parser.print_help(sys.stderr)
        return UsageError.exit_status

    return handler


def _open_store() -> RuleStore:
    from corral.locations import Locations
    from corral.rules import RuleStore

    locations = Locations.default()
    locations.ensure(locations.data_dir)
    return RuleStore.open(locations.rules_path)


def _list(args: argparse.Namespace) -> int:
    import json

    from corral.rules import Rule, canonical_project

    with _open_store() as store:
        rules: list[Rule] = store.list(args.project)
    if args.json:
        print(json.dumps([rule.to_json() for rule in rules], indent=2))
        return 0
    if not rules:
        where = f" for {canonical_project(args.project)}" if args.project else ""
        print(f"no rules{where}")
        return 0
    for rule in rules:
        shape = "dir " if rule.is_directory else ""
        warning = "  WARNING: sensitive (protected path or credential)" if rule.sensitive else ""
        note = f"  # {rule.note}" if rule.note else ""
        print(f"{rule.id:>4}  {rule.project}  {rule.kind.value:<12} {shape}{rule.target}{warning}{note}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from boundary.violations import ViolationKind
    from corral.errors import Refused, UsageError
    from corral.rules import RuleError, SensitiveRuleNeedsConfirmation

    if args.host is not None:
        kind = ViolationKind(args.kind or "net")
        if kind is not ViolationKind.NET:
            raise UsageError("--host needs --kind net")
        target = args.host
    else:
        kind = ViolationKind(args.kind or "fs-write")
        if kind is ViolationKind.NET:
            raise UsageError("--kind net needs --host, not --path")
        target = args.path
    if args.dir and args.host is not None:
        raise UsageError("--dir applies to --path only")
    try:
        with _open_store() as store:
            rule = store.add(
                args.project,
                kind,
                target,
                directory=args.dir,
                note=args.note,
                confirmed_sensitive=args.confirm_sensitive,
            )
    except SensitiveRuleNeedsConfirmation as error:
        raise Refused(f"{error} (add --confirm-sensitive)") from error
    except RuleError as error:
        raise Refused(f"rule refused: {error}") from error
    warning = " (sensitive: protected path or credential)" if rule.sensitive else ""
    print(f"rule {rule.id}: {rule.kind.value} {rule.target} in {rule.project}{warning}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with _open_store() as store:
        removed = store.revoke(args.rule_id)
    if not removed:
        from corral.errors import Refused

        raise Refused(f"no rule with id {args.rule_id}")
    print(f"rule {args.rule_id} revoked")
    return 0
