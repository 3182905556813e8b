"""Benchmark: `corral stats` over a ledger with 1,000,000 prompt rows (target: under 1 s).

    .venv/bin/python bench/bench_stats.py [--prompts N] [--runs K]

Builds the ledger with the real schema (`Ledger.open`) in a temporary directory, bulk-inserts
sessions, commands and prompt rows in one transaction, then times the whole `corral stats` command
(`python -m cli.main stats`, a fresh process each run, as a person would run it) and the library call
`compute_stats` alone, with and without filters. Prints a table of medians.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from corral.fatigue.stats import compute_stats, ensure_indexes  # noqa: E402
from corral.ledger import Ledger  # noqa: E402

KINDS = ("fs-write", "fs-write", "fs-read", "net", "net", "fs-protected")
SCOPES = ("project", "session", "once", "deny")
DECIDED = ("rule", "rule", "session", "person")


def build(path: Path, prompts: int, projects: int, sessions: int, commands: int) -> tuple[int, float]:
    """Fill the ledger; returns (commands, seconds)."""
    started = time.perf_counter()
    Ledger.open(path).close()  # the real schema and its indexes
    rng = random.Random(1)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    now = time.time()
    span = 90 * 86400.0
    db.executemany(
        "INSERT INTO sessions (id, project, frontend, started_at) VALUES (?, ?, 'bench', ?)",
        ((s + 1, f"/work/project-{s % projects}", now - span + s * span / sessions) for s in range(sessions)),
    )
    per_session = commands // sessions

    def command_rows() -> object:
        for c in range(commands):
            session = min(c // per_session, sessions - 1) + 1
            yield (
                c + 1,
                session,
                f"/work/project-{(session - 1) % projects}",
                "make test",
                "/work",
                now - span + c * span / commands,
                12.5,
                0,
                1 if c % 5 < 2 else 0,
                1 if c % 5 == 4 else 0,
                1 if c % 10 < 6 else 0,
            )

    db.executemany(
        "INSERT INTO commands (id, session_id, project, command, cwd, started_at, duration_ms, exit_code,"
        " violation_count, prompted, classic_would_prompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        command_rows(),  # type: ignore[arg-type]
    )

    def prompt_rows() -> object:
        for p in range(prompts):
            command = p * commands // prompts + 1
            session = min((command - 1) // per_session, sessions - 1) + 1
            decided = DECIDED[p % len(DECIDED)]
            asked = 1 if decided == "person" else 0
            yield (
                command,
                session,
                KINDS[p % len(KINDS)],
                f"/home/u/.cache/x{p % 1000}",
                "create",
                SCOPES[rng.randrange(len(SCOPES))],
                rng.uniform(300, 20000) if asked else None,
                "bench",
                asked,
                decided,
            )

    db.executemany(
        "INSERT INTO prompts (command_id, session_id, kind, target, operation, scope, latency_ms, frontend,"
        " asked, decided_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        prompt_rows(),  # type: ignore[arg-type]
    )
    db.execute("COMMIT")
    db.close()
    return commands, time.perf_counter() - started


def time_cli(env: dict[str, str], args: list[str], runs: int) -> list[float]:
    """Wall-clock seconds of `corral stats ARGS`, one fresh process per run."""
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "cli.main", "stats", *args],
            env=env,
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - started)
    return times


def time_library(path: Path, runs: int, **filters: object) -> list[float]:
    """Seconds of `compute_stats` alone."""
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        compute_stats(path, **filters)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument(
        "--commands", type=int, default=None, help="command rows (default: as many as prompts)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        home = Path(tmp) / "home"
        data = home / ".local" / "share"
        env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(data), XDG_CONFIG_HOME=str(home / ".config"),
                   XDG_CACHE_HOME=str(home / ".cache"), XDG_RUNTIME_DIR=str(Path(tmp) / "run"),
                   PYTHONPATH=str(REPO))  # fmt: skip
        path = data / "corral" / "ledger.sqlite3"
        wanted = args.commands if args.commands is not None else args.prompts
        commands, seconds = build(path, args.prompts, args.projects, args.sessions, wanted)
        size_mb = path.stat().st_size / 1e6
        print(f"ledger: {args.prompts:,} prompt rows, {commands:,} commands, {args.sessions:,} sessions, "
              f"{args.projects} projects; built in {seconds:.1f} s ({size_mb:.0f} MB)")  # fmt: skip
        started = time.perf_counter()
        ensure_indexes(path)
        print(f"stats indexes created once in {time.perf_counter() - started:.2f} s")

        rows: list[tuple[str, list[float]]] = [
            ("corral stats (CLI, fresh process)", time_cli(env, [], args.runs)),
            ("corral stats --json", time_cli(env, ["--json"], args.runs)),
            ("corral stats --project P", time_cli(env, ["--project", "/work/project-3"], args.runs)),
            ("corral stats --since 7d", time_cli(env, ["--since", "7d"], args.runs)),
            ("compute_stats() (library)", time_library(path, args.runs)),
            (
                "compute_stats(project=P, since=30d)",
                time_library(path, args.runs, project="/work/project-3", since=time.time() - 30 * 86400),
            ),
        ]
        print(f"\n{'what':<40} {'median':>8} {'min':>8} {'max':>8}   (s, {args.runs} runs)")
        for label, times in rows:
            print(f"{label:<40} {statistics.median(times):>8.3f} {min(times):>8.3f} {max(times):>8.3f}")
        worst = max(statistics.median(t) for _, t in rows[:4])
        print(
            f"\ntarget < 1 s for `corral stats`: {'met' if worst < 1.0 else 'NOT met'} (worst median {worst:.3f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
