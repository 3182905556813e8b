"""`corral stats`: approval fatigue from the ledger, against the classic approval baseline.

corral stats [--project DIR] [--since WHEN] [--sessions N] [--json | --csv]
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `corral stats`."""
    parser = subparsers.add_parser(
        "stats",
        help="prompts per 100 commands, approval rate, and the reduction against classic approval",
        description=(
            "Read the ledger: commands run (hook runs counted apart), prompts shown, prompts needed "
            "with nobody to ask (no terminal, --on-violation deny: needed, never saved), prompts per "
            "100 commands in total and by violation kind, approval rate (one decision per prompt), "
            "median decision latency and the reduction against the classic approval baseline — in "
            "total, per project and per session."
        ),
    )
    parser.add_argument("--project", metavar="DIR", help="only this project")
    parser.add_argument("--since", metavar="WHEN", help="only commands since WHEN: 2026-01-31, 7d, 24h, 30m")
    parser.add_argument(
        "--sessions", metavar="N", type=int, default=10, help="sessions listed in the text report (0: all)"
    )
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON")
    form.add_argument("--csv", action="store_true", help="print CSV (total, projects, sessions)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    import csv
    import json

    from corral.errors import StateError, UsageError
    from corral.fatigue.stats import (
        CSV_COLUMNS,
        StatsError,
        compute_stats,
        csv_rows,
        parse_since,
        render_text,
    )
    from corral.locations import Locations
    from corral.rules import canonical_project

    try:
        since = parse_since(args.since) if args.since is not None else None
    except StatsError as error:
        raise UsageError(str(error)) from error
    project = canonical_project(args.project) if args.project is not None else None
    ledger = Locations.default().ledger_path
    try:
        report = compute_stats(ledger, project=project, since=since)
    except Exception as error:  # an unreadable ledger: one line naming the file and the fix, no traceback
        reason = str(error).replace(str(ledger), "").strip(": ") or type(error).__name__
        raise StateError(
            f"{ledger}: not a usable ledger: {reason} (move it aside to start afresh; "
            "`corral doctor` checks every store)"
        ) from error
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_rows(report))
    else:
        sys.stdout.write(render_text(report, max_sessions=args.sessions))
    return 0
