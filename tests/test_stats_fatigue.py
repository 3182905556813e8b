"""`corral stats`: aggregates from a ledger filled through the ledger API."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral.fatigue.stats import FatigueStats, StatsError, compute_stats, parse_since, render_text
from corral.ledger import Ledger, PromptRecord
from corral.locations import Locations

NOW = 1_800_000_000.0


def _prompt(kind: str, scope: str, asked: bool, latency: float | None = None) -> PromptRecord:
    return PromptRecord(
        kind=kind,
        target=f"/t/{kind}",
        operation="create",
        scope=scope,
        asked=asked,
        decided_by="person" if asked else "rule",
        frontend="test",
        latency_ms=latency,
    )


def _command(
    ledger: Ledger,
    session: int,
    project: str,
    *,
    at: float,
    classic: bool | None,
    prompts: tuple[PromptRecord, ...] = (),
) -> None:
    ledger.record_command(
        session_id=session,
        project=project,
        command="cmd",
        cwd=project,
        started_at=at,
        duration_ms=1.0,
        exit_code=0,
        violation_count=len(prompts),
        prompted=any(p.asked for p in prompts),
        classic_would_prompt=classic,
        prompts=prompts,
    )


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    """Two projects, three sessions, an old session outside `--since 7d`."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger.open(path) as ledger:
        a1 = ledger.start_session("/p/a", "test", started_at=NOW - 3600)
        for index in range(10):
            _command(ledger, a1, "/p/a", at=NOW - 3600 + index, classic=index < 6)
        _command(
            ledger,
            a1,
            "/p/a",
            at=NOW - 3500,
            classic=True,
            prompts=(_prompt("fs-write", "project", True, 1000.0),),
        )
        _command(
            ledger,
            a1,
            "/p/a",
            at=NOW - 3400,
            classic=True,
            prompts=(_prompt("net", "deny", True, 3000.0), _prompt("fs-write", "project", False)),
        )
        b1 = ledger.start_session("/p/b", "test", started_at=NOW - 600)
        for index in range(8):
            _command(ledger, b1, "/p/b", at=NOW - 600 + index, classic=True)
        _command(
            ledger,
            b1,
            "/p/b",
            at=NOW - 500,
            classic=True,
            prompts=(_prompt("fs-read", "once", True, 2000.0),),
        )
        old = ledger.start_session("/p/a", "test", started_at=NOW - 30 * 86400)
        _command(
            ledger,
            old,
            "/p/a",
            at=NOW - 30 * 86400,
            classic=True,
            prompts=(_prompt("fs-write", "deny", True, 9000.0),),
        )
    return path


def test_totals_per_project_and_per_session(ledger_path: Path) -> None:
    report = compute_stats(ledger_path)
    total = report.total
    assert total.commands == 22
    assert total.prompts == 4
    assert total.classic_prompts == 6 + 2 + 9 + 1
    assert total.classic_known == 22
    assert total.decisions == 5
    assert total.asked == 4
    assert total.asked_allowed == 2
    assert total.approval_rate == 0.5
    assert total.median_latency_ms == 2500.0
    assert total.asked_by_kind == {"fs-write": 2, "net": 1, "fs-read": 1}
    assert total.prompts_per_100 == pytest.approx(400 / 22)
    assert total.reduction_pct == pytest.approx(100 * (18 - 4) / 18)

    projects = {p.project: p for p in report.projects}
    assert projects["/p/a"].commands == 13
    assert projects["/p/a"].prompts == 3
    assert projects["/p/a"].median_latency_ms == 3000.0
    assert projects["/p/b"].commands == 9
    assert projects["/p/b"].asked_by_kind == {"fs-read": 1}

    assert [s.project for s in report.sessions] == ["/p/b", "/p/a", "/p/a"]  # newest first
    newest = report.sessions[0]
    assert (newest.commands, newest.prompts, newest.classic_prompts) == (9, 1, 9)


def test_filters_by_project_and_since(ledger_path: Path) -> None:
    only_a = compute_stats(ledger_path, project="/p/a").total
    assert (only_a.commands, only_a.prompts) == (13, 3)
    recent = compute_stats(ledger_path, since=NOW - 7 * 86400).total
    assert (recent.commands, recent.prompts, recent.asked) == (21, 3, 3)
    assert recent.median_latency_ms == 2000.0
    both = compute_stats(ledger_path, project="/p/a", since=NOW - 7 * 86400)
    assert (both.total.commands, both.total.prompts) == (12, 2)
    assert len(both.sessions) == 1


def test_missing_ledger_is_an_empty_report(tmp_path: Path) -> None:
    report = compute_stats(tmp_path / "absent.sqlite3")
    assert report.total.commands == 0
    assert report.total.reduction_pct is None
    assert not (tmp_path / "absent.sqlite3").exists()


def test_derived_figures_with_nothing_asked() -> None:
    empty = FatigueStats()
    assert empty.prompts_per_100 == 0.0
    assert empty.approval_rate is None
    assert empty.reduction_pct is None


def test_parse_since() -> None:
    assert parse_since("7d", now=NOW) == NOW - 7 * 86400
    assert parse_since("24h", now=NOW) == NOW - 86400
    assert parse_since("30m", now=NOW) == NOW - 1800
    assert parse_since("2w", now=NOW) == NOW - 14 * 86400
    assert parse_since("2026-01-31T00:00:00+00:00") == 1769817600.0
    assert parse_since("2026-01-31") > 0
    for bad in ("yesterday", "7x", "-3d", "", "2026-13-01"):
        with pytest.raises(StatsError):
            parse_since(bad)


def test_text_report_shows_baseline_and_corral_side_by_side(ledger_path: Path) -> None:
    text = render_text(compute_stats(ledger_path))
    assert "classic approval would ask      18" in text
    assert "corral asked                     4" in text
    assert "per project:" in text and "per session" in text


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "stats", *args], capture_output=True, text=True, check=False
    )


def test_cli_json_csv_and_errors(ledger_path: Path) -> None:
    target = Locations.default().ledger_path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(ledger_path.read_bytes())

    result = _cli("--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total"]["prompts"] == 4
    assert data["total"]["classic_prompts"] == 18
    assert len(data["sessions"]) == 3

    result = _cli("--csv", "--project", "/p/b")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["scope"] == "total" and rows[0]["commands"] == "9"

    since = time.strftime("%Y-%m-%d", time.localtime(NOW - 86400))
    assert _cli("--since", since).returncode == 0

    for bad in (["--since", "soon"], ["--json", "--csv"]):
        result = _cli(*bad)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
