"""The ledger: schema version, rows in and out, several writers at once, a writer killed mid-loop."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from corral.ledger import SCHEMA_VERSION, Ledger, LedgerError, PromptRecord


def prompt(
    kind: str = "net", scope: str = "deny", asked: bool = True, latency: float | None = 100.0
) -> PromptRecord:
    return PromptRecord(
        kind=kind,
        target="evil.test:443" if kind == "net" else "/home/u/x",
        operation="connect" if kind == "net" else "create",
        scope=scope,
        asked=asked,
        decided_by="person" if asked else "rule",
        frontend="test",
        latency_ms=latency if asked else None,
    )


def record(ledger: Ledger, session_id: int | None, project: str = "/p", **overrides: object) -> int:
    values: dict[str, object] = {
        "session_id": session_id,
        "project": project,
        "command": "make test",
        "cwd": project,
        "started_at": 1000.0,
        "duration_ms": 12.5,
        "exit_code": 0,
        "violation_count": 0,
        "prompted": False,
        "classic_would_prompt": None,
        "prompts": (),
    }
    values.update(overrides)
    return ledger.record_command(**values)  # type: ignore[arg-type]


def test_schema_version_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ledger.sqlite3"
    with Ledger.open(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION == 4
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    assert os.stat(path).st_mode & 0o777 == 0o600
    with Ledger.open(path) as again:  # reopening does not migrate twice
        assert again.schema_version == SCHEMA_VERSION


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger.open(path)


def test_not_a_database_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="not a usable ledger"):
        Ledger.open(path)


def test_rows_round_trip_and_aggregates(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        s1 = ledger.start_session("/p", "textual", started_at=500.0)
        s2 = ledger.start_session("/q", "line", started_at=600.0)
        record(ledger, s1, classic_would_prompt=False)
        record(
            ledger,
            s1,
            command="curl evil.test",
            violation_count=2,
            prompted=True,
            classic_would_prompt=True,
            started_at=2000.0,
            exit_code=77,
            prompts=[prompt(latency=100.0), prompt("fs-write", "once", latency=300.0)],
        )
        record(
            ledger, s2, project="/q", prompts=[prompt("fs-write", "project", asked=False)], violation_count=1
        )
        assert [s.frontend for s in ledger.sessions()] == ["textual", "line"]
        assert [s.id for s in ledger.sessions(project="/q")] == [s2]

        rows = ledger.commands(project="/p")
        assert [r.command for r in rows] == ["make test", "curl evil.test"]
        assert rows[1].exit_code == 77 and rows[1].prompted and rows[1].classic_would_prompt is True
        assert rows[0].classic_would_prompt is False
        assert [r.command for r in ledger.commands(limit=1)] == ["make test"]
        assert len(ledger.commands(since=1500.0)) == 1

        totals = ledger.command_totals(project="/p")
        assert (totals.commands, totals.prompted, totals.violations) == (2, 1, 2)
        assert (totals.classic_prompted, totals.classic_known) == (1, 2)
        assert ledger.command_totals().commands == 3

        by_kind = {k.kind: k for k in ledger.totals_by_kind()}
        assert by_kind["net"].asked == 1 and by_kind["net"].allowed == 0
        assert by_kind["fs-write"].decisions == 2 and by_kind["fs-write"].asked_allowed == 1
        assert [k.kind for k in ledger.totals_by_kind(project="/q")] == ["fs-write"]

        assert ledger.median_latency_ms() == 200.0
        assert ledger.median_latency_ms(project="/q") is None
        prompts = list(ledger.prompts(session_id=s1))
        assert [p.scope for p in prompts] == ["deny", "once"]
        assert prompts[0].session_id == s1 and prompts[0].decided_by == "person"


def test_record_prompts_after_the_fact(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        command_id = record(ledger, None)
        ledger.record_prompts(command_id, [prompt()])
        assert [p.command_id for p in ledger.prompts()] == [command_id]


def _write_many(path: str, worker: int, count: int) -> None:
    with Ledger.open(Path(path)) as ledger:
        session_id = ledger.start_session(f"/w{worker}", "test")
        for _ in range(count):
            record(ledger, session_id, project=f"/w{worker}", prompts=[prompt(), prompt("fs-write")])


def test_several_processes_lose_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger.open(path).close()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(str(path), w, 150)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    with Ledger.open(path) as ledger:
        assert ledger.command_totals().commands == 600
        assert sum(k.decisions for k in ledger.totals_by_kind()) == 1200
        for worker in range(4):
            assert ledger.command_totals(project=f"/w{worker}").commands == 150


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from corral.ledger import Ledger, PromptRecord

    ledger = Ledger.open(Path(sys.argv[1]))
    session = ledger.start_session("/p", "test")
    records = [PromptRecord("net", f"h{i}.test:443", "connect", "deny", True, "person", "test", 5.0)
               for i in range(3)]
    while True:
        command_id = ledger.record_command(
            session_id=session, project="/p", command="x", cwd="/p", started_at=0.0, duration_ms=1.0,
            exit_code=0, violation_count=3, prompted=True, classic_would_prompt=True, prompts=records)
        sys.stdout.write(f"{command_id}\\n")
        sys.stdout.flush()
    """
)


def test_writer_killed_mid_loop_loses_no_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert writer.stdout is not None
    reported: list[int] = []
    try:
        while len(reported) < 300:
            line = writer.stdout.readline()
            assert line, "the writer stopped early"
            reported.append(int(line))
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
    assert writer.returncode == -signal.SIGKILL
    with Ledger.open(path) as ledger:
        stored = {row.id for row in ledger.commands()}
        assert set(reported) <= stored
        counts: dict[int, int] = {}
        for row in ledger.prompts():
            counts[row.command_id] = counts.get(row.command_id, 0) + 1
        # Each command and its prompts are one transaction: all three prompts or no command.
        assert all(counts.get(command_id) == 3 for command_id in stored)


def test_brokered_requests_are_counted_per_host_and_credential(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        session = ledger.start_session("/p", "cli")
        record(
            ledger, session, brokered=[("api.github.com:443", "github", 3), ("github.com:443", "github", 2)]
        )
        record(ledger, session, brokered=[("api.github.com:443", "github", 1)])
        record(ledger, session, project="/other", brokered=[("api.openai.com:443", "openai", 5)])
        assert ledger.brokered_totals("/p") == [
            ("api.github.com:443", "github", 4),
            ("github.com:443", "github", 2),
        ]
        assert ledger.brokered_totals()[0] == ("api.openai.com:443", "openai", 5)


def test_a_version_3_ledger_gains_the_brokered_table(tmp_path: Path) -> None:
    from corral.ledger import _MIGRATIONS

    path = tmp_path / "ledger.sqlite3"
    raw = sqlite3.connect(path)
    for step in _MIGRATIONS[:3]:
        step(raw)
    raw.execute("PRAGMA user_version=3")
    raw.commit()
    raw.close()
    with Ledger.open(path) as ledger:
        assert ledger.schema_version == 4
        assert ledger.brokered_totals() == []


def _open_after_barrier(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        Ledger.open(Path(path)).close()
        results.put("ok")
    except Exception as error:  # reported to the parent, which asserts on it
        results.put(f"{type(error).__name__}: {error}")


def test_a_fresh_ledger_opened_by_sixteen_processes_at_once_opens_in_all(tmp_path: Path) -> None:
    """16 agents' commands starting together in a new project all open the ledger (one was refused
    with "database is locked" while another switched the new file to WAL)."""
    context = multiprocessing.get_context("fork")
    failures: list[str] = []
    for round_number in range(40):
        path = tmp_path / f"round-{round_number}" / "ledger.sqlite3"
        barrier = context.Barrier(16)
        results = context.Queue()
        workers = [
            context.Process(target=_open_after_barrier, args=(str(path), barrier, results)) for _ in range(16)
        ]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        failures += [outcome for outcome in outcomes if outcome != "ok"]
    assert failures == []
