"""Honest numbers in the ledger and `corral stats`: a crossing denied because nobody could be asked is a
prompt needed (not one saved), hook runs are not commands, the approval rate counts one decision per
prompt (not the violations in it), and prompts per 100 commands are shown by kind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from corral.fatigue.stats import compute_stats, csv_rows, render_text
from corral.ledger import _MIGRATIONS, SCHEMA_VERSION, Ledger, PromptRecord

NOW = 1_800_000_000.0


def _decision(kind: str, scope: str, decided_by: str, target: str = "/t") -> PromptRecord:
    return PromptRecord(
        kind=kind,
        target=target,
        operation="create",
        scope=scope,
        asked=decided_by in ("person", "unconfirmed"),
        decided_by=decided_by,
        frontend="test",
        latency_ms=500.0 if decided_by == "person" else None,
    )


def _record(
    ledger: Ledger, session: int, prompts: tuple[PromptRecord, ...] = (), hook: str | None = None
) -> int:
    return ledger.record_command(
        session_id=session,
        project="/p",
        command="cmd",
        cwd="/p",
        started_at=NOW,
        duration_ms=1.0,
        exit_code=0,
        violation_count=len(prompts),
        prompted=any(p.asked for p in prompts),
        classic_would_prompt=True,
        prompts=prompts,
        hook=hook,
    )


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "ledger.sqlite3"
    with Ledger.open(path) as ledger:
        s = ledger.start_session("/p", "test", started_at=NOW)
        for _ in range(6):
            _record(ledger, s)  # plain commands, nothing crossed
        # One prompt listing three violations, the person allowed two and denied one: one decision, a
        # refusal (not "two of three approved").
        _record(
            ledger,
            s,
            (
                _decision("fs-write", "project", "person", "/a"),
                _decision("fs-write", "once", "person", "/b"),
                _decision("net", "deny", "person", "example.com:443"),
            ),
        )
        _record(ledger, s, (_decision("fs-protected", "once", "person"),))  # one prompt, approved
        # Nobody to ask: no terminal, and `--on-violation deny`: needed, not saved.
        _record(ledger, s, (_decision("fs-write", "deny", "no-frontend"),))
        _record(ledger, s, (_decision("net", "deny", "flag"),))
        # Decided without a person: a rule, the session's memory, a hidden read.
        _record(
            ledger, s, (_decision("fs-write", "project", "rule"), _decision("fs-read", "deny", "sandbox"))
        )
        _record(ledger, s, (_decision("fs-write", "session", "session"),))
        # Hook runs: recorded, flagged, never commands — even one that prompted.
        _record(ledger, s, hook="session_start")
        _record(ledger, s, (_decision("fs-write", "once", "person"),), hook="before_command")
    return path


def test_command_rows_carry_needed_hook_and_one_approval_per_prompt(ledger_path: Path) -> None:
    with Ledger.open(ledger_path) as ledger:
        rows = ledger.commands()
        totals = ledger.command_totals()
    assert [r.hook for r in rows[-2:]] == ["session_start", "before_command"]
    assert [r.unasked for r in rows[8:10]] == [True, True]
    assert not any(r.unasked for r in rows[:8] + rows[10:])
    assert [r.approved for r in rows[6:8]] == [False, True]
    assert rows[0].approved is None and rows[8].approved is None
    assert (totals.commands, totals.prompted, totals.unasked, totals.hooks) == (12, 2, 2, 2)


def test_stats_counts_needed_prompts_excludes_hooks_and_counts_decisions(ledger_path: Path) -> None:
    total = compute_stats(ledger_path).total
    assert total.commands == 12  # the two hook runs are not commands
    assert (total.hooks, total.hook_prompts) == (2, 1)
    assert total.prompts == 2
    assert total.unasked == 2
    assert total.needed == 4
    assert total.needed_per_100 == pytest.approx(400 / 12)
    assert total.approved == 1
    assert total.approval_rate == 0.5  # per prompt: one refused, one approved (items would say 3 of 5)
    assert total.by_rule_or_session == 2
    # Classic would have asked on all 12 commands; corral needed 4 (never "2, the rest saved").
    assert total.reduction_pct == pytest.approx(100 * (12 - 4) / 12)
    assert total.prompts_by_kind == {"fs-write": 1, "net": 1, "fs-protected": 1}
    assert total.unasked_by_kind == {"fs-write": 1, "net": 1}
    by_kind = total.per_100_by_kind()
    assert by_kind["fs-write"]["needed_per_100"] == pytest.approx(round(200 / 12, 2))
    assert by_kind["fs-protected"] == {
        "asked": 1,
        "unasked": 0,
        "asked_per_100": round(100 / 12, 2),
        "needed_per_100": round(100 / 12, 2),
    }
    assert "fs-read" not in by_kind  # a hidden read is reported, never a prompt

    text = render_text(compute_stats(ledger_path))
    assert "needed, nobody to ask            2" in text
    assert "prompts needed                   4   (33.3 per 100 commands)" in text
    assert "hook runs (not commands)         2" in text
    assert "prompts per 100 by kind      fs-protected 8.3, fs-write 16.7 (1 nobody to ask), net 16.7" in text
    assert "approval rate                50.0%   (1 of 2 prompts answered)" in text

    data = compute_stats(ledger_path).to_dict()["total"]
    assert isinstance(data, dict)
    assert (data["unasked"], data["needed"], data["hooks"], data["approved"]) == (2, 4, 2, 1)
    assert data["by_kind"]["net"]["unasked"] == 1
    first = next(iter(csv_rows(compute_stats(ledger_path))))
    assert "fs-write=16.67" in str(first)


def test_filters_apply_to_the_per_kind_counts(ledger_path: Path) -> None:
    assert compute_stats(ledger_path, project="/elsewhere").total.prompts_by_kind == {}
    assert compute_stats(ledger_path, since=NOW + 1).total.needed == 0
    assert compute_stats(ledger_path, project="/p").total.unasked_by_kind == {"fs-write": 1, "net": 1}


def test_decisions_added_later_update_the_command(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        s = ledger.start_session("/p", "test")
        command = _record(ledger, s)
        ledger.record_prompts(command, [_decision("net", "deny", "no-frontend")], session_id=s)
        assert ledger.commands()[0].unasked
        ledger.record_prompts(command, [_decision("net", "once", "person")], session_id=s)
        row = ledger.commands()[0]
        assert (row.prompted, row.unasked, row.approved) == (True, False, True)


def test_a_version_2_ledger_is_migrated_and_backfilled(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    for step in _MIGRATIONS[:2]:
        step(raw)
    raw.execute("PRAGMA user_version=2")
    raw.execute("INSERT INTO sessions VALUES (1, '/p', 'test', 0)")
    for cid, prompted in ((1, 0), (2, 1), (3, 0)):
        raw.execute("INSERT INTO commands VALUES (?, 1, '/p', 'c', '/p', 0, 1, 0, 1, ?, 1)", (cid, prompted))
    raw.execute(
        "INSERT INTO prompts VALUES (1, 1, 1, 'fs-write', '/x', 'create', 'deny', NULL, 't', 0, 'no-frontend')"
    )
    raw.execute(
        "INSERT INTO prompts VALUES (2, 2, 1, 'net', 'h:443', 'connect', 'deny', 9, 't', 1, 'person')"
    )
    raw.execute(
        "INSERT INTO prompts VALUES (3, 3, 1, 'fs-write', '/y', 'create', 'project', NULL, 't', 0, 'rule')"
    )
    raw.close()
    with Ledger.open(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION == 4
        rows = ledger.commands()
    assert [(r.unasked, r.approved, r.hook) for r in rows] == [
        (True, None, None),
        (False, False, None),
        (False, None, None),
    ]
    total = compute_stats(path).total
    assert (total.commands, total.prompts, total.unasked, total.approved) == (3, 1, 1, 0)
