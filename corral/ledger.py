"""The ledger: every command corral ran and every decision about its violations, in local SQLite.

Tables (schema version in `PRAGMA user_version`, migrated forward on open):

- `sessions (id, project, frontend, started_at)`
- `commands (id, session_id, project, command, cwd, started_at, duration_ms, exit_code,
  violation_count, prompted, classic_would_prompt, hook, unasked, approved)` — `prompted` is 1 when a
  person was asked; `classic_would_prompt` is what the classic approval model would have done (NULL
  when unknown); `hook` is the event name for a project hook run (`session_start`, `before_command`,
  `after_command`), NULL for a command: hooks are recorded but are not commands in any total;
  `unasked` is 1 when a person would have had to decide but nobody was asked (no terminal,
  `--on-violation deny`, a timeout, the burst limit...): a prompt that was needed, never one saved;
  `approved` is, for a prompted command, 1 when the person allowed everything they were asked in that
  one prompt (NULL when nobody was asked) — the approval rate counts these decisions, not items.
  `prompted`, `unasked` and `approved` are derived from the command's prompt rows by the ledger itself
  (`_DERIVE_COMMAND`), so every writer counts the same way.
- `prompts (id, command_id, session_id, kind, target, operation, scope, latency_ms, frontend, asked,
  decided_by)` — one row per violation decision; `asked` is 1 when a person answered, 0 when a rule,
  session memory, the `--on-violation` flag, the burst limit or a failure decided. `decided_by` says which
  (see `corral.escalation.DecidedBy`).
- `brokered (command_id, host, credential, requests)` — requests a command sent to `host` (`host:port`)
  with the brokered credential named `credential` put in by the proxy (never its value).

Durability: WAL with `synchronous=NORMAL`; each `record_command` is one `BEGIN IMMEDIATE ... COMMIT`
that returns only after the commit, so killing the command or corral afterwards loses nothing (only a
power loss can drop the last transactions). Several processes can write at once: writers wait on the
lock (`busy_timeout`) instead of failing.

Times are Unix seconds (float). Query helpers take the same filters: `project` (canonical path),
`since` (Unix seconds) and `session_id`.
"""

# SQL here is assembled only from fixed column lists and fixed WHERE clauses; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 4
_BUSY_TIMEOUT_MS = 30_000


class LedgerError(RuntimeError):
    """The ledger file cannot be used (newer schema, not a database)."""


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """One violation's decision, ready to record. `latency_ms` is the person's answer time (or None)."""

    kind: str
    target: str
    operation: str
    scope: str
    asked: bool
    decided_by: str
    frontend: str
    latency_ms: float | None = None


DECIDED_WITHOUT_A_PERSON: tuple[str, ...] = ("rule", "session", "sandbox")
"""`decided_by` values for which no person was needed: a stored rule, the session's memory of an earlier
answer, or the sandbox itself (a hidden read already failed inside it). Any other decision that was not
asked (`no-frontend`, `flag`, `timeout`, `burst`, `limit`, `error`, ...) was a prompt needed but not
answered: counting it as saved would flatter the numbers exactly when nobody was watching."""

_NEEDED_UNASKED = (
    "p.asked = 0 AND p.decided_by NOT IN (" + ", ".join(f"'{d}'" for d in DECIDED_WITHOUT_A_PERSON) + ")"
)
"""SQL over prompts aliased `p`: a decision a person would have had to make, and nobody did."""


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A row of `sessions`."""

    id: int
    project: str
    frontend: str
    started_at: float


@dataclass(frozen=True, slots=True)
class CommandRow:
    """A row of `commands`."""

    id: int
    session_id: int | None
    project: str
    command: str
    cwd: str
    started_at: float
    duration_ms: float
    exit_code: int | None
    violation_count: int
    prompted: bool
    classic_would_prompt: bool | None
    hook: str | None = None
    unasked: bool = False
    approved: bool | None = None


@dataclass(frozen=True, slots=True)
class PromptRow:
    """A row of `prompts`."""

    id: int
    command_id: int
    session_id: int | None
    kind: str
    target: str
    operation: str
    scope: str
    latency_ms: float | None
    frontend: str
    asked: bool
    decided_by: str


LedgerRow = SessionRow | CommandRow | PromptRow


@dataclass(frozen=True, slots=True)
class CommandTotals:
    """Aggregates over commands: how many ran, how many prompted, how many classic would have."""

    commands: int
    prompted: int
    violations: int
    classic_prompted: int
    classic_known: int
    """Commands whose classic baseline is known (non-NULL)."""
    unasked: int = 0
    """Commands that needed a person's decision and got nobody (not asked, never a prompt saved)."""
    hooks: int = 0
    """Hook runs (not commands: excluded from every other figure here)."""


@dataclass(frozen=True, slots=True)
class KindTotals:
    """Aggregates over prompt rows of one violation kind."""

    kind: str
    decisions: int
    asked: int
    asked_allowed: int
    allowed: int


# --- schema ----------------------------------------------------------------------------------------


def _use_wal(db: sqlite3.Connection) -> None:
    """Put the ledger in WAL mode, waiting while other corral processes hold it.

    Switching a new database to WAL needs an exclusive lock, and SQLite answers "database is locked"
    at once, without its busy handler, when another connection is between its read and its write (16
    agents' commands starting together in a fresh project do that). Only a ledger not yet in WAL mode
    switches, and a busy answer is retried until the same deadline the busy handler uses.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            busy = "locked" in str(error) or "busy" in str(error)
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _migrate_to_1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE sessions ("
        " id INTEGER PRIMARY KEY, project TEXT NOT NULL, frontend TEXT NOT NULL, started_at REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE commands ("
        " id INTEGER PRIMARY KEY, session_id INTEGER REFERENCES sessions(id), project TEXT NOT NULL,"
        " command TEXT NOT NULL, cwd TEXT NOT NULL, started_at REAL NOT NULL,"
        " duration_ms REAL NOT NULL, exit_code INTEGER, violation_count INTEGER NOT NULL,"
        " prompted INTEGER NOT NULL, classic_would_prompt INTEGER)"
    )
    db.execute(
        "CREATE TABLE prompts ("
        " id INTEGER PRIMARY KEY, command_id INTEGER NOT NULL REFERENCES commands(id),"
        " session_id INTEGER, kind TEXT NOT NULL, target TEXT NOT NULL, operation TEXT NOT NULL,"
        " scope TEXT NOT NULL, latency_ms REAL, frontend TEXT NOT NULL, asked INTEGER NOT NULL,"
        " decided_by TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX commands_by_project ON commands (project, started_at)")
    db.execute("CREATE INDEX commands_by_time ON commands (started_at)")
    db.execute("CREATE INDEX commands_by_session ON commands (session_id)")
    db.execute("CREATE INDEX prompts_by_command ON prompts (command_id)")
    # Covering indexes for the stats aggregates (per session and kind; answer times). `corral stats`
    # asks for exactly these (corral.fatigue.stats.STATS_INDEXES) and creates them on older files itself.
    db.execute("CREATE INDEX prompts_by_session_kind ON prompts (session_id, kind, asked, scope, command_id)")
    db.execute("CREATE INDEX prompts_by_asked_latency ON prompts (asked, session_id, latency_ms, command_id)")


def _migrate_to_2(db: sqlite3.Connection) -> None:
    # Per-session totals for `corral stats` without touching the table rows.
    db.execute(
        "CREATE INDEX IF NOT EXISTS commands_by_session_totals ON commands"
        " (session_id, project, prompted, violation_count, classic_would_prompt, started_at)"
    )


_DERIVE_COMMAND = (
    "UPDATE commands SET"
    " prompted = (prompted OR EXISTS (SELECT 1 FROM prompts p WHERE p.command_id = commands.id"
    " AND p.asked = 1)),"
    " unasked = (NOT (prompted OR EXISTS (SELECT 1 FROM prompts p WHERE p.command_id = commands.id"
    f" AND p.asked = 1)) AND EXISTS (SELECT 1 FROM prompts p WHERE p.command_id = commands.id AND"
    f" {_NEEDED_UNASKED})),"
    " approved = CASE WHEN EXISTS (SELECT 1 FROM prompts p WHERE p.command_id = commands.id"
    " AND p.asked = 1) THEN NOT EXISTS (SELECT 1 FROM prompts p WHERE p.command_id = commands.id"
    " AND p.asked = 1 AND p.scope = 'deny') END"
)
"""Derive `prompted`, `unasked` and `approved` of commands from their prompt rows (append a WHERE)."""


def _migrate_to_3(db: sqlite3.Connection) -> None:
    # Honest numbers: hooks flagged (not commands), needed-but-unasked prompts, one approval per prompt.
    db.execute("ALTER TABLE commands ADD COLUMN hook TEXT")
    db.execute("ALTER TABLE commands ADD COLUMN unasked INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE commands ADD COLUMN approved INTEGER")
    db.execute(_DERIVE_COMMAND + " WHERE violation_count > 0 OR prompted")
    db.execute(
        "CREATE INDEX IF NOT EXISTS commands_by_session_honest ON commands (session_id, project, hook,"
        " prompted, unasked, approved, violation_count, classic_would_prompt, started_at)"
    )


def _migrate_to_4(db: sqlite3.Connection) -> None:
    # Credential brokering: which hosts received a brokered credential, per command (names only).
    db.execute(
        "CREATE TABLE brokered ("
        " command_id INTEGER NOT NULL REFERENCES commands(id),"
        " host TEXT NOT NULL,"
        " credential TEXT NOT NULL,"
        " requests INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX brokered_by_host ON brokered (host, credential)")


_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
    _migrate_to_4,
)
"""`_MIGRATIONS[n]` takes a ledger from version n to n + 1. Append; never edit a shipped step."""

assert len(_MIGRATIONS) == SCHEMA_VERSION

_INSERT_COMMAND = (
    "INSERT INTO commands (session_id, project, command, cwd, started_at, duration_ms, exit_code,"
    " violation_count, prompted, classic_would_prompt, hook) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_PROMPT = (
    "INSERT INTO prompts (command_id, session_id, kind, target, operation, scope, latency_ms, frontend,"
    " asked, decided_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_FILTERED_PROMPTS = "commands c CROSS JOIN prompts p ON p.command_id = c.id"
"""Prompts filtered through their command: CROSS JOIN makes SQLite start from the indexed commands."""
_COMMAND_COLUMNS = (
    "c.id, c.session_id, c.project, c.command, c.cwd, c.started_at, c.duration_ms, c.exit_code,"
    " c.violation_count, c.prompted, c.classic_would_prompt, c.hook, c.unasked, c.approved"
)
_PROMPT_COLUMNS = (
    "p.id, p.command_id, p.session_id, p.kind, p.target, p.operation, p.scope, p.latency_ms, p.frontend,"
    " p.asked, p.decided_by"
)


def command_filters(
    project: str | None, since: float | None, session_id: int | None
) -> tuple[list[str], list[object]]:
    """SQL conditions over commands aliased `c`, and their parameters (the filters every query shares)."""
    clauses: list[str] = []
    params: list[object] = []
    if project is not None:
        clauses.append("c.project = ?")
        params.append(project)
    if since is not None:
        clauses.append("c.started_at >= ?")
        params.append(since)
    if session_id is not None:
        clauses.append("c.session_id = ?")
        params.append(session_id)
    return clauses, params


def where_clause(
    project: str | None, since: float | None, session_id: int | None
) -> tuple[str, list[object]]:
    """A `WHERE` over commands aliased `c` (empty when nothing filters), and its parameters."""
    clauses, params = command_filters(project, since, session_id)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class Ledger:
    """The ledger database. Thread-safe; open one per process with `Ledger.open(path)`."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Ledger:
        """Open (creating and migrating as needed) the ledger at `path`, private to the user."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            _use_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=OFF")
        except sqlite3.DatabaseError as error:
            raise LedgerError(f"{path}: not a usable ledger: {error}") from error
        os.chmod(path, 0o600)
        ledger = cls(db, path)
        ledger._migrate()
        return ledger

    def _migrate(self) -> None:
        db = self._db
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path}: ledger schema version {version} is newer than this corral"
                    f" ({SCHEMA_VERSION})"
                )
            for step in _MIGRATIONS[version:]:
                step(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        """The schema version stored in the file."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the database (everything recorded is already committed)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------------------

    def start_session(self, project: str, frontend: str, started_at: float | None = None) -> int:
        """Record a new session; returns its id."""
        when = time.time() if started_at is None else started_at
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO sessions (project, frontend, started_at) VALUES (?, ?, ?)",
                (project, frontend, when),
            )
            return int(cursor.lastrowid or 0)

    def record_command(
        self,
        *,
        session_id: int | None,
        project: str,
        command: str,
        cwd: str,
        started_at: float,
        duration_ms: float,
        exit_code: int | None,
        violation_count: int,
        prompted: bool,
        classic_would_prompt: bool | None,
        prompts: Sequence[PromptRecord] = (),
        hook: str | None = None,
        brokered: Sequence[tuple[str, str, int]] = (),
    ) -> int:
        """Record one command (or, with `hook`, one hook run) and its decisions in one transaction;
        returns the command id. `unasked` and `approved` are derived from `prompts` here.

        Committed before returning: a kill of anything afterwards cannot lose this row.
        """
        classic = None if classic_would_prompt is None else int(classic_would_prompt)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.execute(
                    _INSERT_COMMAND,
                    (
                        session_id,
                        project,
                        command,
                        cwd,
                        started_at,
                        duration_ms,
                        exit_code,
                        violation_count,
                        int(prompted),
                        classic,
                        hook,
                    ),
                )
                command_id = int(cursor.lastrowid or 0)
                if prompts:
                    db.executemany(_INSERT_PROMPT, _prompt_params(command_id, session_id, prompts))
                    db.execute(_DERIVE_COMMAND + " WHERE id = ?", (command_id,))
                if brokered:
                    db.executemany(
                        "INSERT INTO brokered (command_id, host, credential, requests) VALUES (?, ?, ?, ?)",
                        [(command_id, host, name, count) for host, name, count in brokered],
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return command_id

    def brokered_totals(self, project: str | None = None) -> list[tuple[str, str, int]]:
        """(host, credential name, requests) over every recorded command (of `project`), most first."""
        query = (
            "SELECT b.host, b.credential, SUM(b.requests) FROM brokered b JOIN commands c ON c.id = b.command_id"
            + (" WHERE c.project = ?" if project is not None else "")
            + " GROUP BY b.host, b.credential ORDER BY SUM(b.requests) DESC, b.host"
        )
        with self._lock:
            rows = self._db.execute(query, (project,) if project is not None else ()).fetchall()
        return [(str(host), str(name), int(count)) for host, name, count in rows]

    def record_prompts(
        self, command_id: int, prompts: Sequence[PromptRecord], session_id: int | None = None
    ) -> None:
        """Add decisions to a command already recorded (e.g. a live network decision after the fact)."""
        if not prompts:
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(_INSERT_PROMPT, _prompt_params(command_id, session_id, prompts))
                db.execute(_DERIVE_COMMAND + " WHERE id = ?", (command_id,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # --- reading -----------------------------------------------------------------------------------

    def sessions(self, project: str | None = None, since: float | None = None) -> list[SessionRow]:
        """Sessions, oldest first."""
        clauses: list[str] = []
        params: list[object] = []
        if project is not None:
            clauses.append("project = ?")
            params.append(project)
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, project, frontend, started_at FROM sessions{where} ORDER BY id",
                params,
            ).fetchall()
        return [SessionRow(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def commands(
        self,
        project: str | None = None,
        since: float | None = None,
        session_id: int | None = None,
        limit: int | None = None,
    ) -> list[CommandRow]:
        """Command rows, oldest first (the last `limit` ones when given)."""
        where, params = where_clause(project, since, session_id)
        sql = f"SELECT {_COMMAND_COLUMNS} FROM commands c{where} ORDER BY c.id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY 1"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_command_row(r) for r in rows]

    def prompts(
        self,
        project: str | None = None,
        since: float | None = None,
        session_id: int | None = None,
        command_id: int | None = None,
    ) -> Iterator[PromptRow]:
        """Prompt rows (joined to their command for the filters), in id order."""
        where, params = where_clause(project, since, session_id)
        if command_id is not None:
            where += (" AND" if where else " WHERE") + " p.command_id = ?"
            params.append(command_id)
        sql = f"SELECT {_PROMPT_COLUMNS} FROM {_FILTERED_PROMPTS}{where} ORDER BY p.id"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return iter([_prompt_row(r) for r in rows])

    def command_totals(
        self, project: str | None = None, since: float | None = None, session_id: int | None = None
    ) -> CommandTotals:
        """Counts over commands in one indexed pass (hook runs counted apart, never as commands)."""
        where, params = where_clause(project, since, session_id)
        command = "c.hook IS NULL"
        sql = (
            f"SELECT count(CASE WHEN {command} THEN 1 END),"
            f" coalesce(sum(CASE WHEN {command} THEN c.prompted END), 0),"
            f" coalesce(sum(CASE WHEN {command} THEN c.violation_count END), 0),"
            f" coalesce(sum(CASE WHEN {command} THEN c.classic_would_prompt END), 0),"
            f" count(CASE WHEN {command} THEN c.classic_would_prompt END),"
            f" coalesce(sum(CASE WHEN {command} THEN c.unasked END), 0),"
            " count(c.hook)"
            f" FROM commands c{where}"
        )
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return CommandTotals(*(int(value) for value in row))

    def totals_by_kind(
        self, project: str | None = None, since: float | None = None, session_id: int | None = None
    ) -> list[KindTotals]:
        """Per violation kind: decisions, how many a person answered, and how many were allowed."""
        where, params = where_clause(project, since, session_id)
        source = _FILTERED_PROMPTS if where else "prompts p"
        sql = (
            "SELECT p.kind, count(*), sum(p.asked), sum(p.asked AND p.scope != 'deny'),"
            f" sum(p.scope != 'deny') FROM {source}{where} GROUP BY p.kind ORDER BY p.kind"
        )
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [KindTotals(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]

    def median_latency_ms(
        self, project: str | None = None, since: float | None = None, session_id: int | None = None
    ) -> float | None:
        """Median time a person took to answer, over asked decisions (None when nobody was asked)."""
        where, params = where_clause(project, since, session_id)
        source = _FILTERED_PROMPTS if where else "prompts p"
        # Unary + keeps SQLite from reaching for the latency index inside the per-command loop.
        asked = (
            " +p.asked = 1 AND +p.latency_ms IS NOT NULL"
            if where
            else " p.asked = 1 AND p.latency_ms IS NOT NULL"
        )
        where = (where + " AND" if where else " WHERE") + asked
        base = f"FROM {source}{where}"
        with self._lock:
            count = int(self._db.execute(f"SELECT count(*) {base}", params).fetchone()[0])
            if count == 0:
                return None
            offset = (count - 1) // 2
            take = 1 if count % 2 else 2
            rows = self._db.execute(
                f"SELECT p.latency_ms {base} ORDER BY p.latency_ms LIMIT ? OFFSET ?",
                [*params, take, offset],
            ).fetchall()
        values = [float(r[0]) for r in rows]
        return sum(values) / len(values)


def _prompt_params(
    command_id: int, session_id: int | None, prompts: Sequence[PromptRecord]
) -> Iterator[tuple[object, ...]]:
    for record in prompts:
        yield (
            command_id,
            session_id,
            record.kind,
            record.target,
            record.operation,
            record.scope,
            record.latency_ms,
            record.frontend,
            int(record.asked),
            record.decided_by,
        )


def _command_row(r: Sequence[object]) -> CommandRow:
    return CommandRow(
        id=int(str(r[0])),
        session_id=None if r[1] is None else int(str(r[1])),
        project=str(r[2]),
        command=str(r[3]),
        cwd=str(r[4]),
        started_at=float(str(r[5])),
        duration_ms=float(str(r[6])),
        exit_code=None if r[7] is None else int(str(r[7])),
        violation_count=int(str(r[8])),
        prompted=bool(r[9]),
        classic_would_prompt=None if r[10] is None else bool(r[10]),
        hook=None if r[11] is None else str(r[11]),
        unasked=bool(r[12]),
        approved=None if r[13] is None else bool(r[13]),
    )


def _prompt_row(r: Sequence[object]) -> PromptRow:
    return PromptRow(
        id=int(str(r[0])),
        command_id=int(str(r[1])),
        session_id=None if r[2] is None else int(str(r[2])),
        kind=str(r[3]),
        target=str(r[4]),
        operation=str(r[5]),
        scope=str(r[6]),
        latency_ms=None if r[7] is None else float(str(r[7])),
        frontend=str(r[8]),
        asked=bool(r[9]),
        decided_by=str(r[10]),
    )
