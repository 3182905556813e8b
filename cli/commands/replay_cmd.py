"""`corral replay`: run a workload of agent commands through the sandbox and count the prompts.

corral replay FILE.jsonl --project DIR [--home DIR] [--on-violation deny|allow] [--timeout S] [--json]
corral replay FILE.jsonl --dry-run [--project DIR]

`--project` is required to run anything (never the current directory by default: a workload's `git
add -A` or `rm` would act on whatever clone you stand in). Commands run with HOME pointing at a
throwaway home (a fresh temporary directory, removed afterwards; `--home DIR` keeps one across runs),
never the real one, and the simulated person allows nothing outside the project and that home.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.fatigue.replay import WorkloadLine


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
    parser.add_argument(
        "--project", metavar="DIR", help="the project to run in (required unless --dry-run; never defaulted)"
    )
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="the throwaway home commands see (kept; default: a fresh temporary one, removed after)",
    )
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
    from corral.errors import UsageError
    from corral.fatigue.replay import WorkloadError, load_workload
    from corral.fatigue.replayhome import ReplayHomeError
    from corral.workspace import find_workspace

    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    workload = Path(args.file)
    try:
        lines = load_workload(workload)
    except WorkloadError as error:
        raise UsageError(str(error)) from error
    if args.project is None and not args.dry_run:
        raise UsageError("replay needs --project DIR (the project the workload runs in)")
    project = find_workspace(Path(args.project), explicit=True) if args.project is not None else None
    with contextlib.ExitStack() as stack:
        environ: dict[str, str] | None = None
        if project is not None and not args.dry_run:
            try:
                home = _replay_home(args.home, project, stack)
            except (ReplayHomeError, OSError) as error:
                raise UsageError(str(error)) from error
            environ = {**os.environ, "HOME": str(home)}
        return _run(args, workload, lines, project, environ)


def _replay_home(requested: str | None, project: Path, stack: contextlib.ExitStack) -> Path:
    import tempfile

    from corral.fatigue.replayhome import check_replay_home, seed_home

    if requested is not None:
        home = check_replay_home(Path(requested), Path.home(), project)
    else:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="corral-replay-home-")))
    seed_home(home)
    return home


def _run(
    args: argparse.Namespace,
    workload: Path,
    lines: list[WorkloadLine],
    project: Path | None,
    environ: dict[str, str] | None,
) -> int:
    import json

    from corral.errors import SetupError
    from corral.fatigue.replay import progress_bar, render_report, replay, stderr_is_terminal

    bar = progress_bar(sys.stderr) if stderr_is_terminal() else None
    show = next(bar) if bar is not None else None
    try:
        report = replay(
            workload, lines, project, on_violation=args.on_violation, dry_run=args.dry_run,
            timeout_s=args.timeout, progress=show, environ=environ,
        )  # fmt: skip
    except Exception as error:
        from sandbox.bwrap import SandboxSetupError

        if isinstance(error, SandboxSetupError):
            raise SetupError(f"the sandbox could not start, so the replay stopped: {error}") from error
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
