"""Ledger recording cost per command, and the query helpers over a large ledger.

    .venv/bin/python bench/bench_ledger.py [--commands N] [--query-prompts N]

Recording: `Ledger.record_command` (one transaction: the command row and its prompt rows, WAL,
synchronous=NORMAL) timed one call at a time, with 0 and with 3 prompt rows. Queries: the aggregate
helpers (`command_totals`, `totals_by_kind`, `median_latency_ms`) over a ledger filled with
`--query-prompts` prompt rows (default 1,000,000; 0 skips).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corral.ledger import Ledger, PromptRecord

PROMPTS = [
    PromptRecord("net", f"h{i}.example.com:443", "connect", "deny", True, "person", "bench", 850.0)
    for i in range(3)
]


def time_recording(ledger: Ledger, session_id: int, count: int, prompts: list[PromptRecord]) -> list[float]:
    """Microseconds per `record_command` call."""
    samples: list[float] = []
    for index in range(count):
        started = time.perf_counter()
        ledger.record_command(
            session_id=session_id,
            project="/home/u/proj",
            command=f"pytest -q tests/test_{index}.py",
            cwd="/home/u/proj",
            started_at=time.time(),
            duration_ms=120.0,
            exit_code=0,
            violation_count=len(prompts),
            prompted=bool(prompts),
            classic_would_prompt=True,
            prompts=prompts,
        )
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(
        f"{label:<28} n={len(samples):>6}  mean {statistics.fmean(samples):7.1f} us"
        f"  p50 {statistics.median(samples):7.1f} us  p99 {p99:7.1f} us  max {ordered[-1]:8.1f} us"
    )


def fill(ledger: Ledger, prompt_rows: int) -> None:
    """Bulk-load `prompt_rows` prompt rows (4 per command, 4 projects) through raw SQL, fast."""
    db = ledger._db
    per_command = 4
    commands = prompt_rows // per_command
    kinds = ("net", "fs-write", "fs-read", "fs-protected")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO commands (session_id, project, command, cwd, started_at, duration_ms, exit_code,"
        " violation_count, prompted, classic_would_prompt) VALUES (1, ?, 'x', '/', ?, 1, 0, 4, ?, 1)",
        ((f"/p{i % 4}", float(i), i % 10 == 0) for i in range(commands)),
    )
    db.executemany(
        "INSERT INTO prompts (command_id, session_id, kind, target, operation, scope, latency_ms, frontend,"
        " asked, decided_by) VALUES (?, 1, ?, 't', 'op', ?, ?, 'bench', ?, 'person')",
        (
            (
                i // per_command + 1,
                kinds[i % 4],
                "deny" if i % 7 == 0 else "once",
                float(i % 5000),
                i % 3 == 0,
            )
            for i in range(commands * per_command)
        ),
    )
    db.execute("COMMIT")


def time_queries(ledger: Ledger) -> None:
    queries: list[tuple[str, Callable[[], object]]] = [
        ("command_totals()", lambda: ledger.command_totals()),
        ("command_totals(project)", lambda: ledger.command_totals(project="/p1")),
        ("totals_by_kind()", lambda: ledger.totals_by_kind()),
        ("totals_by_kind(project)", lambda: ledger.totals_by_kind(project="/p1")),
        ("median_latency_ms()", lambda: ledger.median_latency_ms()),
        ("median_latency_ms(project)", lambda: ledger.median_latency_ms(project="/p1")),
    ]
    for label, call in queries:
        started = time.perf_counter()
        call()
        print(f"{label:<28} {(time.perf_counter() - started) * 1000:8.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=5000)
    parser.add_argument("--query-prompts", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        with Ledger.open(Path(scratch) / "ledger.sqlite3") as ledger:
            session_id = ledger.start_session("/home/u/proj", "bench")
            time_recording(ledger, session_id, 200, [])  # warm up
            report("record_command, 0 prompts", time_recording(ledger, session_id, args.commands, []))
            report("record_command, 3 prompts", time_recording(ledger, session_id, args.commands, PROMPTS))
        if args.query_prompts:
            with Ledger.open(Path(scratch) / "big.sqlite3") as big:
                started = time.perf_counter()
                fill(big, args.query_prompts)
                print(f"filled {args.query_prompts} prompt rows in {time.perf_counter() - started:.1f} s")
                time_queries(big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
