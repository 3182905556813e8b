"""Approval fatigue, measured from the ledger: how often corral asked, against the classic baseline.

`compute_stats(ledger_path, project=..., since=...)` reads the ledger (see `corral.ledger` for the
schema) with a few aggregate queries and returns a `StatsReport`: one `FatigueStats` for everything
selected, one per project and one per session. Each holds:

- commands run (hook runs are counted apart: a hook is not a command), and prompts shown: commands on
  which a person was asked (one prompt per command);
- prompts needed but nobody to ask: commands whose crossings a person would have had to decide, denied
  because nobody could be asked (no terminal, `--on-violation deny`, a timeout, the burst limit). They
  are prompts needed, never prompts saved: the reduction against classic counts them as prompts;
- prompts per 100 commands, in total and by violation kind (a command counts once per kind it asked or
  needed to ask about);
- decisions made by a rule or the session's memory (nobody needed);
- approval rate: the share of prompts a person answered that allowed what they asked (one decision per
  prompt, however many violations it listed);
- median decision latency: how long a person took to answer (asked decisions only);
- asked decisions by violation kind (`fs-write`, `fs-protected`, `fs-read`, `net`);
- the classic baseline: commands the classic approval model would have asked about
  (`commands.classic_would_prompt`, see `corral.fatigue.classic`), and corral's reduction against it in %.

Speed: the ledger's own indexes cover the filters; `ensure_indexes` adds two covering indexes on
`prompts` (`IF NOT EXISTS`) so the per-kind and latency passes never touch the table itself. The
ledger is otherwise opened read-only, and a missing ledger is an empty report, not an error.
"""

# SQL here is assembled only from fixed fragments; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.ledger import DECIDED_WITHOUT_A_PERSON, Ledger
from corral.ledger import command_filters as shared_filters

STATS_INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS prompts_by_session_kind"
    " ON prompts (session_id, kind, asked, scope, command_id)",
    "CREATE INDEX IF NOT EXISTS commands_by_session_totals ON commands"
    " (session_id, project, prompted, violation_count, classic_would_prompt, started_at)",
    "CREATE INDEX IF NOT EXISTS prompts_by_asked_latency"
    " ON prompts (asked, session_id, latency_ms, command_id)",
    "CREATE INDEX IF NOT EXISTS prompts_by_session_kind_decided"
    " ON prompts (session_id, kind, asked, scope, decided_by, command_id)",
    "CREATE INDEX IF NOT EXISTS commands_by_session_honest ON commands (session_id, project, hook,"
    " prompted, unasked, approved, violation_count, classic_would_prompt, started_at)",
)
"""Covering indexes `corral stats` wants (the ledger schema creates the `prompts` ones itself)."""

_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class StatsError(ValueError):
    """A bad filter value (e.g. an unreadable `--since`)."""


def parse_since(text: str, now: float | None = None) -> float:
    """`--since` as Unix seconds: `7d`, `24h`, `30m`, `2w`, or an ISO date / date-time (local time
    unless it carries an offset)."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        current = time.time() if now is None else now
        return current - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise StatsError(
            f"--since {text!r}: expected an ISO date (2026-01-31, 2026-01-31T09:00) or 7d / 24h / 30m / 2w"
        ) from None
    return moment.timestamp()


@dataclass(slots=True)
class FatigueStats:
    """Prompt counts for one slice of the ledger (everything, a project, or a session)."""

    project: str | None = None
    session_id: int | None = None
    started_at: float | None = None
    commands: int = 0
    prompts: int = 0
    """Commands on which a person was asked."""
    violations: int = 0
    decisions: int = 0
    """Violation decisions (by a person, a rule, the session, a flag...)."""
    asked: int = 0
    """Decisions a person made."""
    asked_allowed: int = 0
    classic_prompts: int = 0
    classic_known: int = 0
    median_latency_ms: float | None = None
    asked_by_kind: dict[str, int] = field(default_factory=dict)
    """Violations a person decided, by kind (items, not prompts)."""
    unasked: int = 0
    """Commands that needed a person's decision and had nobody to ask (denied): needed, not saved."""
    approved: int = 0
    """Prompts (of `prompts`) in which the person allowed everything they were asked."""
    by_rule_or_session: int = 0
    """Violation decisions made by a stored rule or the session's memory (no person needed)."""
    hooks: int = 0
    """Hook runs (`session_start`, `before_command`, `after_command`): recorded, not commands."""
    hook_prompts: int = 0
    """Hook runs on which a person was asked."""
    prompts_by_kind: dict[str, int] = field(default_factory=dict)
    """Commands on which a person was asked about a violation of this kind."""
    unasked_by_kind: dict[str, int] = field(default_factory=dict)
    """Commands that needed a person's decision on this kind and had nobody to ask."""

    @property
    def needed(self) -> int:
        """Prompts a person had to (or would have had to) answer: asked plus needed-but-unasked."""
        return self.prompts + self.unasked

    @property
    def prompts_per_100(self) -> float:
        """Prompts per 100 commands (0 with no commands)."""
        return 100.0 * self.prompts / self.commands if self.commands else 0.0

    @property
    def needed_per_100(self) -> float:
        """Prompts needed (asked or not) per 100 commands."""
        return 100.0 * self.needed / self.commands if self.commands else 0.0

    def per_100_by_kind(self) -> dict[str, dict[str, float]]:
        """Per kind: asked, needed-but-unasked and both, per 100 commands."""
        kinds = sorted({*self.prompts_by_kind, *self.unasked_by_kind})
        scale = 100.0 / self.commands if self.commands else 0.0
        table: dict[str, dict[str, float]] = {}
        for kind in kinds:
            asked, unasked = self.prompts_by_kind.get(kind, 0), self.unasked_by_kind.get(kind, 0)
            table[kind] = {
                "asked": asked,
                "unasked": unasked,
                "asked_per_100": round(asked * scale, 2),
                "needed_per_100": round((asked + unasked) * scale, 2),
            }
        return table

    @property
    def classic_per_100(self) -> float:
        """The classic baseline's prompts per 100 commands whose baseline is known."""
        return 100.0 * self.classic_prompts / self.classic_known if self.classic_known else 0.0

    @property
    def approval_rate(self) -> float | None:
        """Share of the prompts a person answered that allowed what they asked (one decision per
        prompt, not per violation in it; None when nobody was asked)."""
        return self.approved / self.prompts if self.prompts else None

    @property
    def reduction_pct(self) -> float | None:
        """How many fewer prompts than the classic baseline, in % (None when classic asked nothing).
        Prompts needed but not asked count as prompts: a denial for lack of a terminal saved nothing."""
        if not self.classic_prompts:
            return None
        return 100.0 * (self.classic_prompts - self.needed) / self.classic_prompts

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view, derived figures included."""
        return {
            "project": self.project,
            "session_id": self.session_id,
            "started_at": self.started_at,
            "commands": self.commands,
            "prompts": self.prompts,
            "prompts_per_100": round(self.prompts_per_100, 2),
            "unasked": self.unasked,
            "needed": self.needed,
            "needed_per_100": round(self.needed_per_100, 2),
            "by_kind": self.per_100_by_kind(),
            "hooks": self.hooks,
            "hook_prompts": self.hook_prompts,
            "by_rule_or_session": self.by_rule_or_session,
            "approved": self.approved,
            "violations": self.violations,
            "decisions": self.decisions,
            "asked": self.asked,
            "approval_rate": None if self.approval_rate is None else round(self.approval_rate, 4),
            "median_latency_ms": None if self.median_latency_ms is None else round(self.median_latency_ms, 1),
            "asked_by_kind": dict(sorted(self.asked_by_kind.items())),
            "classic_prompts": self.classic_prompts,
            "classic_known": self.classic_known,
            "classic_per_100": round(self.classic_per_100, 2),
            "reduction_pct": None if self.reduction_pct is None else round(self.reduction_pct, 2),
        }


@dataclass(slots=True)
class StatsReport:
    """Everything selected, then per project (by prompts, most first) and per session (newest first)."""

    total: FatigueStats
    projects: list[FatigueStats]
    sessions: list[FatigueStats]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "total": self.total.to_dict(),
            "projects": [p.to_dict() for p in self.projects],
            "sessions": [s.to_dict() for s in self.sessions],
        }


def ensure_indexes(ledger_path: Path) -> bool:
    """Create the covering indexes stats wants; False when the ledger cannot be written (then the
    queries still work, only slower)."""
    try:
        db = sqlite3.connect(f"file:{ledger_path}?mode=rw", uri=True, timeout=5)
    except sqlite3.Error:
        return False
    try:
        for statement in STATS_INDEXES:
            db.execute(statement)
        db.commit()
        return True
    except sqlite3.Error:
        return False
    finally:
        db.close()


_Key = tuple[str, int | None]


def compute_stats(
    ledger_path: Path,
    *,
    project: str | None = None,
    since: float | None = None,
    session_id: int | None = None,
) -> StatsReport:
    """Aggregate the ledger at `ledger_path`. `project` must be canonical (see
    `corral.rules.canonical_project`); `since` is Unix seconds on the command's start time."""
    if not ledger_path.exists():
        return StatsReport(FatigueStats(project=project, session_id=session_id), [], [])
    Ledger.open(ledger_path).close()  # migrate an older ledger forward (the figures need schema 3)
    ensure_indexes(ledger_path)
    db = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True, timeout=30)
    try:
        return _aggregate(db, project, since, session_id)
    finally:
        db.close()


def _aggregate(
    db: sqlite3.Connection, project: str | None, since: float | None, session_id: int | None
) -> StatsReport:
    clauses, params = shared_filters(project, since, session_id)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""

    sessions = {
        int(row[0]): (str(row[1]), float(row[2]))
        for row in db.execute("SELECT id, project, started_at FROM sessions")
    }
    slices: dict[_Key, FatigueStats] = {}

    def slice_for(key: _Key) -> FatigueStats:
        found = slices.get(key)
        if found is None:
            started = sessions[key[1]][1] if key[1] is not None and key[1] in sessions else None
            found = slices[key] = FatigueStats(project=key[0], session_id=key[1], started_at=started)
        return found

    command = "c.hook IS NULL"  # a hook run is recorded, but it is not a command
    for row in db.execute(
        f"SELECT c.project, c.session_id, count(CASE WHEN {command} THEN 1 END),"
        f" coalesce(sum(CASE WHEN {command} THEN c.prompted END), 0),"
        f" coalesce(sum(CASE WHEN {command} THEN c.violation_count END), 0),"
        f" coalesce(sum(CASE WHEN {command} THEN c.classic_would_prompt END), 0),"
        f" count(CASE WHEN {command} THEN c.classic_would_prompt END),"
        f" coalesce(sum(CASE WHEN {command} THEN c.unasked END), 0),"
        f" coalesce(sum(CASE WHEN {command} THEN c.approved END), 0),"
        " count(c.hook), coalesce(sum(CASE WHEN c.hook IS NOT NULL THEN c.prompted END), 0)"
        f" FROM commands c{where} GROUP BY c.session_id, c.project",
        params,
    ):
        stats = slice_for((str(row[0]), row[1]))
        stats.commands, stats.prompts, stats.violations = int(row[2]), int(row[3]), int(row[4])
        stats.classic_prompts, stats.classic_known = int(row[5]), int(row[6])
        stats.unasked, stats.approved = int(row[7]), int(row[8])
        stats.hooks, stats.hook_prompts = int(row[9]), int(row[10])

    # Prompts by kind: a command counts once per kind it asked (or needed to ask) about. Starts from
    # the few commands that prompted or needed to, never from every prompt row.
    needed_sql = (
        "NOT p.asked AND p.decided_by NOT IN (" + ", ".join("?" for _ in DECIDED_WITHOUT_A_PERSON) + ")"
    )
    kind_where = " AND ".join([*clauses, command, "(c.prompted OR c.unasked)"])
    for row in db.execute(
        "SELECT c.project, c.session_id, p.kind,"
        " count(DISTINCT CASE WHEN c.prompted AND p.asked THEN c.id END),"
        f" count(DISTINCT CASE WHEN c.unasked AND {needed_sql} THEN c.id END)"
        " FROM commands c CROSS JOIN prompts p INDEXED BY prompts_by_command ON p.command_id = c.id"
        f" WHERE {kind_where} GROUP BY c.session_id, c.project, p.kind",
        [*DECIDED_WITHOUT_A_PERSON, *params],
    ):
        stats = slice_for((str(row[0]), row[1]))
        kind, asked_commands, unasked_commands = str(row[2]), int(row[3]), int(row[4])
        if asked_commands:
            stats.prompts_by_kind[kind] = asked_commands
        if unasked_commands:
            stats.unasked_by_kind[kind] = unasked_commands

    # The project of a session's prompt rows is the project its commands were recorded under.
    session_projects = {key[1]: (key[0], 0.0) for key in slices if key[1] is not None}
    owners: Mapping[int, tuple[str, float]] = {**sessions, **session_projects}

    kind_sql, kind_params = _prompt_query(
        "p.kind, count(*), coalesce(sum(p.asked), 0), coalesce(sum(p.asked AND p.scope != 'deny'), 0),"
        " coalesce(sum(NOT p.asked AND p.decided_by IN ('rule', 'session')), 0)",
        "p.kind",
        clauses,
        params,
    )
    for row in _rows_with_project(db, kind_sql, kind_params, owners):
        stats = slice_for((row[0], row[1]))
        kind, decisions, asked, allowed = str(row[2]), int(row[3]), int(row[4]), int(row[5])
        stats.by_rule_or_session += int(row[6])
        stats.decisions += decisions
        stats.asked += asked
        stats.asked_allowed += allowed
        if asked:
            stats.asked_by_kind[kind] = stats.asked_by_kind.get(kind, 0) + asked

    latency_sql, latency_params = _prompt_query(
        "p.latency_ms", None, [*clauses, "p.asked = 1", "p.latency_ms IS NOT NULL"], params
    )
    # The largest result (one row per asked decision): a tight loop, no per-row tuple building.
    latencies: dict[_Key, list[float]] = {}
    owner_of = {session: owner[0] for session, owner in owners.items()}
    for row_session, row_project, value in db.execute(latency_sql, latency_params):
        key = (row_project if row_project is not None else owner_of.get(row_session, ""), row_session)
        bucket = latencies.get(key)
        if bucket is None:
            bucket = latencies[key] = []
        bucket.append(value)
    for key, values in latencies.items():
        slice_for(key).median_latency_ms = statistics.median(values)

    by_project: dict[str, list[FatigueStats]] = defaultdict(list)
    for stats in slices.values():
        by_project[stats.project or ""].append(stats)
    project_stats = [_merge(parts, latencies, project=name) for name, parts in by_project.items()]
    project_stats.sort(key=lambda s: (-s.prompts, -s.commands, s.project or ""))
    total = _merge(list(slices.values()), latencies, project=project)
    total.session_id = session_id
    session_stats = [s for s in slices.values() if s.session_id is not None]
    session_stats.sort(key=lambda s: (s.started_at or 0.0, s.session_id or 0), reverse=True)
    return StatsReport(total, project_stats, session_stats)


def _prompt_query(
    columns: str, group: str | None, clauses: list[str], params: list[object]
) -> tuple[str, list[object]]:
    """A query over prompts keyed by (session_id, project-or-NULL).

    With no filter on commands the prompt rows carry their session, and the session its project: no
    join. Prompt rows without a session (or any filter on commands) take the join.
    """
    command_filters = [c for c in clauses if c.startswith("c.")]
    prompt_filters = [c for c in clauses if c.startswith("p.")]
    group_by = f" GROUP BY {{key}}, {group}" if group else ""
    if not command_filters:
        where_fast = " AND ".join(["p.session_id IS NOT NULL", *prompt_filters])
        where_slow = " AND ".join(["p.session_id IS NULL", *prompt_filters])
        fast = f"SELECT p.session_id, NULL, {columns} FROM prompts p WHERE {where_fast}" + group_by.format(
            key="p.session_id"
        )
        slow = (
            f"SELECT NULL, c.project, {columns} FROM prompts p JOIN commands c ON c.id = p.command_id"
            f" WHERE {where_slow}" + group_by.format(key="c.project")
        )
        return f"{fast} UNION ALL {slow}", list(params)
    where = " AND ".join([*command_filters, *prompt_filters])
    sql = (
        # CROSS JOIN makes SQLite loop over the filtered commands (indexed on project / time) and look
        # up their prompts, instead of scanning every prompt row and looking up its command.
        f"SELECT c.session_id, c.project, {columns} FROM commands c"
        " CROSS JOIN prompts p INDEXED BY prompts_by_command ON p.command_id = c.id"
        f" WHERE {where}" + group_by.format(key="c.session_id, c.project")
    )
    return sql, list(params)


def _rows_with_project(
    db: sqlite3.Connection, sql: str, params: list[object], sessions: Mapping[int, tuple[str, float]]
) -> Iterable[tuple[str, int | None, Any, Any, Any, Any, Any]]:
    """Rows as (project, session_id, *columns), the project filled in from the session when absent."""
    for row in db.execute(sql, params):
        session_id = None if row[0] is None else int(row[0])
        project = row[1] if row[1] is not None else sessions.get(session_id or -1, ("", 0.0))[0]
        rest = (*row[2:], None, None, None, None, None)
        yield (str(project), session_id, rest[0], rest[1], rest[2], rest[3], rest[4])


def _merge(
    parts: list[FatigueStats], latencies: Mapping[_Key, list[float]], project: str | None
) -> FatigueStats:
    merged = FatigueStats(project=project)
    values: list[float] = []
    for part in parts:
        merged.commands += part.commands
        merged.prompts += part.prompts
        merged.violations += part.violations
        merged.decisions += part.decisions
        merged.asked += part.asked
        merged.asked_allowed += part.asked_allowed
        merged.classic_prompts += part.classic_prompts
        merged.classic_known += part.classic_known
        merged.unasked += part.unasked
        merged.approved += part.approved
        merged.by_rule_or_session += part.by_rule_or_session
        merged.hooks += part.hooks
        merged.hook_prompts += part.hook_prompts
        for kind, count in part.prompts_by_kind.items():
            merged.prompts_by_kind[kind] = merged.prompts_by_kind.get(kind, 0) + count
        for kind, count in part.unasked_by_kind.items():
            merged.unasked_by_kind[kind] = merged.unasked_by_kind.get(kind, 0) + count
        for kind, count in part.asked_by_kind.items():
            merged.asked_by_kind[kind] = merged.asked_by_kind.get(kind, 0) + count
        values.extend(latencies.get((part.project or "", part.session_id), ()))
    merged.median_latency_ms = statistics.median(values) if values else None
    return merged


# --- rendering -----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def fatigue_lines(stats: FatigueStats) -> list[str]:
    """The fatigue report: the classic baseline and corral side by side (shared with `corral replay`)."""
    width = max(len(str(stats.commands)), 5)
    lines = [
        f"commands run                 {stats.commands:>{width}}",
        f"classic approval would ask   {stats.classic_prompts:>{width}}"
        f"   ({stats.classic_per_100:.1f} per 100 commands)",
        f"corral asked                 {stats.prompts:>{width}}"
        f"   ({stats.prompts_per_100:.1f} per 100 commands)",
        f"needed, nobody to ask        {stats.unasked:>{width}}"
        "   (denied: no terminal / --on-violation deny / timeout / burst limit)",
        f"prompts needed               {stats.needed:>{width}}"
        f"   ({stats.needed_per_100:.1f} per 100 commands)",
        f"reduction against classic    {_pct(stats.reduction_pct):>{width}}",
    ]
    if stats.hooks:
        lines.append(
            f"hook runs (not commands)     {stats.hooks:>{width}}   ({stats.hook_prompts} asked a person)"
        )
    if stats.classic_known < stats.commands:
        lines.append(f"(classic baseline known for {stats.classic_known} of {stats.commands} commands)")
    return lines


def render_text(report: StatsReport, max_sessions: int = 10) -> str:
    """A person-readable report."""
    total = report.total
    out = fatigue_lines(total)
    latency = "-" if total.median_latency_ms is None else f"{total.median_latency_ms / 1000:.1f} s"
    approval = None if total.approval_rate is None else total.approval_rate * 100
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(total.asked_by_kind.items())) or "-"
    by_kind = total.per_100_by_kind()
    per_kind = (
        ", ".join(
            f"{kind} {row['needed_per_100']:.1f}"
            + (f" ({int(row['unasked'])} nobody to ask)" if row["unasked"] else "")
            for kind, row in by_kind.items()
        )
        or "-"
    )
    out += [
        f"violations decided           {total.decisions} ({total.asked} by a person,"
        f" {total.by_rule_or_session} by a rule or session memory)",
        f"approval rate                {_pct(approval)}   ({total.approved} of {total.prompts} prompts answered)",
        f"median decision latency      {latency}",
        f"prompts per 100 by kind      {per_kind}",
        f"asked by kind (violations)   {kinds}",
    ]
    if report.projects:
        out += ["", "per project:", _row_header("project")]
        out += [_row(p.project or "?", p) for p in report.projects]
    if report.sessions:
        shown = report.sessions if max_sessions <= 0 else report.sessions[:max_sessions]
        out += [
            "",
            f"per session (newest first, {len(shown)} of {len(report.sessions)}):",
            _row_header("session"),
        ]
        for s in shown:
            when = dt.datetime.fromtimestamp(s.started_at).strftime("%Y-%m-%d %H:%M") if s.started_at else "?"
            out.append(_row(f"#{s.session_id} {when} {Path(s.project or '').name}", s))
    return "\n".join(out) + "\n"


def _row_header(label: str) -> str:
    return f"  {label:<40} {'cmds':>7} {'asked':>6} {'/100':>6} {'classic':>7} {'reduction':>9}"


def _row(label: str, s: FatigueStats) -> str:
    shown = label if len(label) <= 40 else "…" + label[-39:]
    return (
        f"  {shown:<40} {s.commands:>7} {s.prompts:>6} {s.prompts_per_100:>6.1f}"
        f" {s.classic_prompts:>7} {_pct(s.reduction_pct):>9}"
    )


CSV_COLUMNS = (
    "scope", "project", "session_id", "commands", "prompts", "prompts_per_100", "violations", "decisions",
    "asked", "approval_rate", "median_latency_ms", "classic_prompts", "classic_known", "reduction_pct",
    "asked_by_kind", "unasked", "needed", "needed_per_100", "approved", "by_rule_or_session", "hooks",
    "hook_prompts", "prompts_per_100_by_kind", "unasked_by_kind",
)  # fmt: skip


def csv_rows(report: StatsReport) -> Iterable[list[object]]:
    """Rows for `--csv`: the total, then each project, then each session."""
    slices = [("total", report.total)]
    slices += [("project", p) for p in report.projects]
    slices += [("session", s) for s in report.sessions]
    for scope, stats in slices:
        data = stats.to_dict()
        derived: dict[str, object] = {
            "asked_by_kind": ";".join(f"{k}={v}" for k, v in sorted(stats.asked_by_kind.items())),
            "prompts_per_100_by_kind": ";".join(
                f"{k}={row['needed_per_100']}" for k, row in stats.per_100_by_kind().items()
            ),
            "unasked_by_kind": ";".join(f"{k}={v}" for k, v in sorted(stats.unasked_by_kind.items())),
        }
        yield [scope, *(derived[c] if c in derived else data[c] for c in CSV_COLUMNS[1:])]
