"""Project rules: "allow for this project", scoped to the boundary crossed, never to a command.

A `Rule` allows one kind of violation (`fs-write`, `fs-protected`, `fs-read`, `net`) on one target in
one project (its canonical real path):

- a path rule names one exact path (`/home/u/.local/share/x`), or a directory prefix written with a
  trailing slash (`/home/u/out/`) meaning that directory and everything under it. Paths are compared
  canonically and component by component: `/a/b/` never matches `/a/bc`.
- a host rule names one exact host (`pypi.org`, any port), `host:port`, or an address range in CIDR form
  (`10.0.0.0/24`, any port; it matches connections to an address in it, and lets an allowed name reach
  such an address). Hosts go through the same
  `boundary.hosts.canonical_host` as the proxy's requests (case, trailing dot, IP literal forms; Unicode
  names refused with the A-label to write); wildcards are refused and never made up (`*.example.com` is
  not a rule).

Rules live in SQLite at `Locations.rules_path` (the user's data directory, never the repository).
Every write is one short transaction with a busy timeout, so several corral processes can add, list
and revoke at once. A rule whose target is sensitive (protected path, start-up file, credential store,
or a directory holding one) is stored with `sensitive=1`, can only be added with an explicit
confirmation, and is the only kind of rule that can match a sensitive violation.

A rule made from a git config violation (`Violation.config_changes`, see `sandbox.gitconfig`) is bound
to the key/value changes it allowed (`Rule.config_changes`; a later grant for the same file adds its
changes): it matches a later change to that file only when every key/value change is among them, so a
rule granted for one alias never lets `core.fsmonitor` land. A path rule without them (`corral rules
add --path`) never matches a change that carries key/value changes: the file is not allowed whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from boundary.hostpatterns import parse_network, parse_pattern
from boundary.hosts import HostError, IPAddress, authority_text, canonical_address, split_authority
from boundary.violations import Violation, ViolationKind
from corral.sensitivity import is_sensitive, is_sensitive_path

SCHEMA_VERSION = 2
_BUSY_TIMEOUT_MS = 10_000
_SYSTEM_ROOTS = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/var", "/opt", "/root")


class RuleError(ValueError):
    """A rule that cannot be stored: bad target, too broad, or sensitive without confirmation."""


class SensitiveRuleNeedsConfirmation(RuleError):
    """The rule covers a sensitive target and the caller did not confirm it."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One stored allowance. `target` ends with `/` for a directory rule (path kinds only)."""

    id: int
    project: str
    kind: ViolationKind
    target: str
    sensitive: bool
    created_at: float
    note: str = ""
    config_changes: tuple[str, ...] = ()
    """For a git config file: the key/value changes this rule allows (empty: not bound to any)."""

    @property
    def is_directory(self) -> bool:
        """True for a directory-prefix rule."""
        return self.kind is not ViolationKind.NET and self.target.endswith("/")

    def matches(self, violation: Violation) -> bool:
        """Whether this rule allows `violation` (same kind, same target, sensitivity respected)."""
        if violation.kind is not self.kind:
            return False
        if is_sensitive(violation) and not self.sensitive:
            return False
        if self.kind is ViolationKind.NET:
            try:
                wanted_host, wanted_port = split_authority(violation.target)
                if "/" in self.target:
                    return parse_pattern(self.target).matches(wanted_host)
                host, port = split_authority(self.target)
            except HostError:
                return False
            return wanted_host == host and port in (None, wanted_port)
        if violation.config_changes or self.config_changes:
            # Bound both ways: a key-bound rule never allows a change that is not judged key by key
            # (a deletion, a file git cannot parse), and a plain path rule never allows key changes.
            if self.is_directory or not self.config_changes or not violation.config_changes:
                return False
            if not set(violation.config_changes) <= set(self.config_changes):
                return False
        path = canonical_path(violation.target)
        if self.is_directory:
            return path == self.target.rstrip("/") or path.startswith(self.target)
        return path == self.target

    def to_json(self) -> dict[str, object]:
        """A plain dict for `corral rules list --json`."""
        return {
            "id": self.id,
            "project": self.project,
            "kind": self.kind.value,
            "target": self.target,
            "directory": self.is_directory,
            "sensitive": self.sensitive,
            "created_at": self.created_at,
            "note": self.note,
            "config_changes": list(self.config_changes),
        }


def canonical_project(project: str | os.PathLike[str]) -> str:
    """The project's canonical real path (symlinks resolved), the key rules are stored under."""
    return os.path.realpath(os.path.expanduser(os.fspath(project)))


def canonical_path(path: str | os.PathLike[str]) -> str:
    """Absolute path with `~` expanded and every parent's symlinks resolved; the last name is kept.

    The last component is not followed: a change to a symlink is a change to that directory entry.
    """
    text = os.path.expanduser(os.fspath(path))
    if not os.path.isabs(text):
        text = os.path.join(os.getcwd(), text)
    head, name = os.path.split(text.rstrip("/") or "/")
    if name in ("", ".", ".."):
        return os.path.realpath(text)
    return os.path.join(os.path.realpath(head), name)


def normalize_host(target: str) -> str:
    """`host` or `host:port` in the one canonical form the proxy uses (`boundary.hosts`).

    ``0x7f000001`` becomes ``127.0.0.1`` (so the rule matches what the proxy reports), a Unicode name is
    refused with the A-label to write instead (the proxy refuses Unicode names on the wire, so a rule
    mapped from one could only ever match a different host), and wildcards are refused.
    """
    try:
        if "/" in target:
            return str(parse_network(target))
        return authority_text(*split_authority(target))
    except HostError as error:
        hint = f" (write '{error.suggestion}')" if error.suggestion else ""
        raise RuleError(f"not an exact host: {error}{hint}") from None


def host_rule_target(target: str) -> str:
    """The host of a `host:port` target (a target that does not split is returned unchanged)."""
    try:
        host, _ = split_authority(target)
    except HostError:
        return target
    return authority_text(host, None)


def _directory_is_sensitive(directory: str, project: str) -> bool:
    """A directory rule is sensitive when it could cover a sensitive path.

    That is: the directory is itself a sensitive place (`~/.ssh/`, `.git/hooks/`, `~/.local/bin/`), it
    holds the home directory, the project (and so `.git/`) or a system directory, or it lies under a
    system directory.
    """
    inside = directory.rstrip("/")
    if is_sensitive_path(inside) or is_sensitive_path(directory + "any"):
        return True
    home = os.path.realpath(os.path.expanduser("~"))
    for root in (home, project, *_SYSTEM_ROOTS):
        if (root + "/").startswith(directory):
            return True
    return any(inside.startswith(root + "/") for root in _SYSTEM_ROOTS)


def make_target(kind: ViolationKind, target: str, *, directory: bool, project: str) -> tuple[str, bool]:
    """Validate and canonicalise a rule target; returns (stored target, sensitive)."""
    if kind is ViolationKind.NET_CREDENTIAL:
        raise RuleError("a request carrying a credential that is not the session's own is never allowed")
    if kind is ViolationKind.NET:
        if directory:
            raise RuleError("--dir applies to paths, not hosts")
        return normalize_host(target), False
    if not target:
        raise RuleError("empty path")
    path = canonical_path(target)
    if directory:
        if path == "/":
            raise RuleError("a rule for the whole filesystem is too broad")
        stored = path.rstrip("/") + "/"
        return stored, kind is not ViolationKind.FS_WRITE or _directory_is_sensitive(stored, project)
    sensitive = kind is not ViolationKind.FS_WRITE or is_sensitive_path(path)
    return path, sensitive


class RuleStore:
    """The rules database. Thread-safe (the egress proxy decides from its own thread); every method is
    its own short transaction, so several processes can share the file."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._lock = threading.RLock()
        self.path = path

    @classmethod
    def open(cls, path: Path) -> RuleStore:
        """Open (creating if needed) the rules database at `path`, private to the user."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = sqlite3.connect(
            path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        os.chmod(path, 0o600)
        db.execute("BEGIN IMMEDIATE")
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RuleError(f"{path}: rules schema version {version} is newer than this corral")
            if version < 1:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS rules ("
                    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                    " project TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,"
                    " sensitive INTEGER NOT NULL, created_at REAL NOT NULL, note TEXT NOT NULL DEFAULT '',"
                    " UNIQUE (project, kind, target))"
                )
                db.execute("PRAGMA user_version=1")
                version = 1
            if version < 2:
                db.execute("ALTER TABLE rules ADD COLUMN config_changes TEXT NOT NULL DEFAULT ''")
                db.execute("PRAGMA user_version=2")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            db.close()
            raise
        return cls(db, path)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> RuleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self,
        project: str | os.PathLike[str],
        kind: ViolationKind,
        target: str,
        *,
        directory: bool = False,
        note: str = "",
        confirmed_sensitive: bool = False,
    ) -> Rule:
        """Store a rule (or return the identical one already stored).

        Raises `SensitiveRuleNeedsConfirmation` for a sensitive target without `confirmed_sensitive`,
        and `RuleError` for a target that is not exact or too broad.
        """
        project_key = canonical_project(project)
        stored, sensitive = make_target(kind, target, directory=directory, project=project_key)
        if sensitive and not confirmed_sensitive:
            raise SensitiveRuleNeedsConfirmation(
                f"{stored} is or holds a sensitive path (protected path, start-up file or credential store)"
            )
        with self._lock:
            return self._insert(project_key, kind, stored, sensitive, note)

    def _insert(self, project_key: str, kind: ViolationKind, stored: str, sensitive: bool, note: str) -> Rule:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR IGNORE INTO rules (project, kind, target, sensitive, created_at, note)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (project_key, kind.value, stored, int(sensitive), time.time(), note),
            )
            row = self._db.execute(
                "SELECT id, project, kind, target, sensitive, created_at, note, config_changes FROM rules"
                " WHERE project = ? AND kind = ? AND target = ?",
                (project_key, kind.value, stored),
            ).fetchone()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return _rule(row)

    def add_for(
        self,
        project: str | os.PathLike[str],
        violation: Violation,
        *,
        confirmed: bool,
        one_port: bool = False,
    ) -> Rule:
        """Store the exact rule for one violation (its path or host, never a wider pattern); for a git
        config change, bound to its key/value changes (added to those the rule already allows).

        A host rule names the host on any port unless `one_port` (the person picked that port)."""
        target = violation.target
        if violation.kind is ViolationKind.NET and not one_port:
            target = host_rule_target(target)
        rule = self.add(project, violation.kind, target, confirmed_sensitive=confirmed)
        if not violation.config_changes:
            return rule
        merged = tuple(sorted({*rule.config_changes, *violation.config_changes}))
        with self._lock:
            self._db.execute(
                "UPDATE rules SET config_changes = ? WHERE id = ?", (json.dumps(merged), rule.id)
            )
        return dataclasses.replace(rule, config_changes=merged)

    def list(self, project: str | os.PathLike[str] | None = None) -> list[Rule]:
        """Every rule, or the rules of one project, oldest first."""
        columns = "SELECT id, project, kind, target, sensitive, created_at, note, config_changes FROM rules"
        with self._lock:
            if project is None:
                rows = self._db.execute(f"{columns} ORDER BY id").fetchall()
            else:
                rows = self._db.execute(
                    f"{columns} WHERE project = ? ORDER BY id", (canonical_project(project),)
                ).fetchall()
        return [_rule(row) for row in rows]

    def revoke(self, rule_id: int) -> bool:
        """Delete a rule; False when no rule has that id."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM rules WHERE id = ?", (rule_id,))
            return cursor.rowcount > 0

    def allows_address(self, project: str | os.PathLike[str], address: IPAddress) -> bool:
        """Whether a host rule of this project names `address` (any port) or a range holding it: the
        explicit opt-in that lets an allowed name reach a loopback, private or other special address."""
        text = str(canonical_address(address))
        for rule in self.list(project):
            if rule.kind is not ViolationKind.NET:
                continue
            if "/" in rule.target:
                if parse_pattern(rule.target).matches(text):
                    return True
            elif rule.target in (text, f"[{text}]"):
                return True
        return False

    def matching(
        self, project: str | os.PathLike[str], violations: Iterable[Violation]
    ) -> dict[Violation, Rule]:
        """The rule allowing each violation that some rule of this project allows."""
        rules = self.list(project)
        found: dict[Violation, Rule] = {}
        if not rules:
            return found
        for violation in violations:
            for rule in rules:
                if rule.matches(violation):
                    found[violation] = rule
                    break
        return found


def _rule(row: Sequence[object]) -> Rule:
    rule_id, project, kind, target, sensitive, created_at, note, config_changes = row
    return Rule(
        id=int(str(rule_id)),
        project=str(project),
        kind=ViolationKind(str(kind)),
        target=str(target),
        sensitive=bool(sensitive),
        created_at=float(str(created_at)),
        note=str(note),
        config_changes=_config_changes(str(config_changes)),
    )


__all__ = [
    "Rule",
    "RuleError",
    "RuleStore",
    "SensitiveRuleNeedsConfirmation",
    "canonical_path",
    "canonical_project",
    "normalize_host",
]


def _config_changes(stored: str) -> tuple[str, ...]:
    """The stored key/value changes (a JSON list); nothing when unreadable (the rule then matches no
    git config change: fail closed)."""
    if not stored:
        return ()
    try:
        value = json.loads(stored)
    except ValueError:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return ()
    return tuple(value)
