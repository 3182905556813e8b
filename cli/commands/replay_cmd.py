"""`corral replay`: run a workload of agent commands through the sandbox and count the prompts.

corral replay FILE.jsonl [--project DIR] [--on-violation deny|allow] [--timeout S] [--json] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `corral replay`."""
    parser = subparsers.add_parser(
        "replay",
        help="replay a JSONL workload in the sandbox and report prompts against classic approval",
        description=(
            'Run every command of FILE.jsonl (one {"command": ..., "cwd": ...} object per line) through '
            "the sandbox in the project, answering prompts with --on-violation, and print the fatigue "
            "report: the classic approval baseline and corral's prompts side by side."
        ),
    )
    parser.add_argument("file", metavar="FILE.jsonl", help="the workload")
    parser.add_argument("--project", metavar="DIR", default=".", help="the project to run in (default: .)")
    parser.add_argument(
        "--on-violation",
        choices=("deny", "allow"),
        default="deny",
        help="answer every prompt: deny, or allow for this project (default: deny)",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=float,
        default=120.0,
        help="kill a command after S seconds (default 120)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON (every line included)")
    parser.add_argument("--dry-run", action="store_true", help="classify only; run nothing")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from corral.fatigue.replay import (
        WorkloadError,
        load_workload,
        progress_bar,
        render_report,
        replay,
        stderr_is_terminal,
    )
    from corral.workspace import WorkspaceError, find_workspace

    if not args.timeout > 0:
        print("corral: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    workload = Path(args.file)
    try:
        lines = load_workload(workload)
    except WorkloadError as error:
        print(f"corral: {error}", file=sys.stderr)
        return 2
    try:
        project = find_workspace(Path(args.project), explicit=True)
    except WorkspaceError as error:
        print(f"corral: {error}", file=sys.stderr)
        return 2
    bar = progress_bar(sys.stderr) if stderr_is_terminal() else None
    show = next(bar) if bar is not None else None
    try:
        report = replay(
            workload, lines, project, on_violation=args.on_violation, dry_run=args.dry_run,
            timeout_s=args.timeout, progress=show,
        )  # fmt: skip
    except Exception as error:
        from sandbox.bwrap import SandboxSetupError

        if isinstance(error, SandboxSetupError):
            print(f"corral: the sandbox could not start, so the replay stopped: {error}", file=sys.stderr)
            return 125
        raise
    finally:
        if bar is not None:
            next(bar, None)  # ends the progress line
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_report(report))
    return 1 if report.errors() else 0
