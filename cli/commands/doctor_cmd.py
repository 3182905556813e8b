"""`corral doctor`: which backend would run, whether corral's configuration and state are usable, and
for each problem one line naming the file (and key) with its fix.

Exit status: 0 when nothing is wrong (Landlock is optional); 1 when any check failed.
"""

from __future__ import annotations

import argparse

from cli.backend_option import add_backend_option, apply_backend_option


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check the sandbox backend, your config, the project config and corral's stores"
    )
    parser.add_argument(
        "--project", metavar="DIR", help="the project whose config to check (default: git root of cwd)"
    )
    add_backend_option(parser)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    apply_backend_option(args)
    from pathlib import Path

    from corral.doctor import backend_check, euid_note, format_check, format_checks, run_checks
    from corral.locations import Locations
    from corral.statecheck import run_state_checks
    from corral.workspace import WorkspaceError, find_workspace

    locations = Locations.default()
    workspace: Path | None = None
    try:
        workspace = find_workspace(
            Path(args.project) if args.project else Path.cwd(), explicit=bool(args.project)
        )
    except WorkspaceError:
        if args.project:
            raise
        # Not in a project (e.g. the home directory): there is no project config to check.
    checks = run_checks(locations)
    backend = backend_check(locations, workspace)
    print(format_checks(checks, backend))
    state = run_state_checks(locations, workspace)
    for check in state:
        print("\n".join(format_check(check)))
    note = euid_note()
    if note:
        print(note)
    problems = [c for c in (*checks, backend[0], *state) if not c.ok and c.name != "landlock"]
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found")
        return 1
    return 0
