"""The trust gate: may this project's config load, and what is it?

API for callers (`corral run`, `corral trust`, the trust dialog)::

    from trust.gate import evaluate, grant, deny, revoke, TrustState
    from trust.store import TrustStore

    store = TrustStore(locations.trust_dir)
    result = evaluate(project_root, store)          # never raises for an ordinary directory
    if result.state is TrustState.TRUSTED:
        config = result.load_config()               # ProjectConfig; raises ConfigError if invalid
        config.writable_paths(), config.allowed_hosts, config.env_dict(), config.hook("before_command")
        result.trusted_bytes(".corral/hooks/x.sh")  # the exact bytes that were fingerprinted
    else:
        print(result.notice())                      # one line: untrusted / changed / denied
        # `--require-trust` -> exit 3

    # the dialog / `corral trust show`:
    result.discovery.files          # TrustFile: path, category, size, sha256, visible_text()
    result.review()                 # ConfigReview: widening values, hooks, env, error (display only)
    result.diff                     # unified diff against the trusted copy (already escaped)
    result.commits                  # CommitInfo since the decision (state CHANGED only)
    grant(root, store, corral_version, expected_fingerprint=result.fingerprint)
    deny(root, store, corral_version); revoke(root, store)

States: `TRUSTED` (a trusted record whose fingerprint matches now), `UNTRUSTED` (no record, or a
directory that can never be trusted: `/`, `$HOME`), `CHANGED` (trusted once, content differs since: not
trusted until re-approved), `DENIED` (an explicit deny; it wins whatever the content).

Nothing in this module runs repo code or reads config before trust: `evaluate` only discovers (stat,
hash, read bytes); `load_config` parses only in state TRUSTED and only the bytes that were fingerprinted.
No environment variable, flag or repo file can make a project trusted: only `grant` writes trust.
"""

from __future__ import annotations

import difflib
import enum
import time
from dataclasses import dataclass
from pathlib import Path

from boundary.termsafe import visible_bytes, visible_path
from trust.config import ConfigReview, ProjectConfig, parse_project_config, review_config
from trust.discovery import Discovery, TrustFile, candidate_paths, discover
from trust.fingerprint import fingerprint
from trust.history import CommitInfo, commits_since, head_commit
from trust.store import (
    Decision,
    StoredFile,
    TrustError,
    TrustRecord,
    TrustStore,
    bounded_copies,
    canonical_root,
)

MAX_DIFF_LINES = 2000


class TrustState(enum.Enum):
    """Where a project stands (see the module docstring)."""

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"
    CHANGED = "changed"
    DENIED = "denied"


class UntrustedProjectError(Exception):
    """`load_config` was called for a project that is not trusted in its current content."""


@dataclass(frozen=True, slots=True)
class GateResult:
    """The answer of `evaluate`: state, what is on disk, and (after a change) the diff and commits.

    untrustable: why this directory can never be trusted (`/`, `$HOME`), else None.
    diff: unified diff of the trusted copy against the current files, escaped for display ("" unless
    CHANGED). commits: commits that touched trust-relevant paths since the decision (CHANGED only).
    """

    root: Path
    state: TrustState
    discovery: Discovery
    fingerprint: str
    record: TrustRecord | None
    diff: str = ""
    commits: tuple[CommitInfo, ...] = ()
    untrustable: str | None = None

    @property
    def trusted(self) -> bool:
        """True only in state TRUSTED."""
        return self.state is TrustState.TRUSTED

    @property
    def has_project_config(self) -> bool:
        """Whether the project has a `.corral/` directory at all."""
        return any(f.path.startswith(".corral/") for f in self.discovery.files)

    def load_config(self) -> ProjectConfig:
        """The project config, parsed from the exact bytes fingerprinted; only when TRUSTED.

        Raises UntrustedProjectError in any other state, ConfigError when the trusted config is invalid
        (e.g. a path now resolves outside the workspace). No config file gives an empty ProjectConfig.
        """
        if self.state is not TrustState.TRUSTED:
            raise UntrustedProjectError(
                f"{self.root}: project is {self.state.value}; its config is not loaded"
            )
        raw = self.discovery.config_bytes
        if raw is None:
            return ProjectConfig(self.root)
        return parse_project_config(raw, self.root)

    def trusted_bytes(self, relative_path: str) -> bytes:
        """The exact trusted bytes of a file under `.corral/` (e.g. a hook script); only when TRUSTED."""
        if self.state is not TrustState.TRUSTED:
            raise UntrustedProjectError(f"{self.root}: project is {self.state.value}")
        found = self.discovery.get(relative_path)
        if found is None or found.content is None:
            raise KeyError(relative_path)
        return found.content

    def review(self) -> ConfigReview:
        """The config described for the person (widening values, hooks, env, error); display only."""
        return review_config(self.discovery.config_bytes, self.root)

    def notice(self) -> str:
        """One line for `corral run` when the project config is not used."""
        if self.state is TrustState.TRUSTED:
            return f"corral: project {self.root} is trusted"
        reason = {
            TrustState.UNTRUSTED: "is not trusted",
            TrustState.CHANGED: "changed since you trusted it",
            TrustState.DENIED: "is denied",
        }[self.state]
        hint = "" if self.untrustable else " (see `corral trust show`)"
        return f"corral: project {visible_path(str(self.root))} {reason}; using your policy only{hint}"

    def refusal(self) -> str:
        """One line for `corral run --require-trust` when the project is not trusted (nothing ran)."""
        reason = {
            TrustState.TRUSTED: "is trusted",
            TrustState.UNTRUSTED: "is not trusted",
            TrustState.CHANGED: "changed since you trusted it",
            TrustState.DENIED: "is denied",
        }[self.state]
        hint = "" if self.untrustable else "; see `corral trust show`"
        return f"corral: project {visible_path(str(self.root))} {reason}: nothing ran (--require-trust{hint})"


def _stored_file_text(stored: StoredFile | None) -> list[str] | None:
    if stored is None:
        return []
    if stored.content is None:
        return None
    return visible_bytes(stored.content).splitlines(keepends=True)


def _current_file_text(current: TrustFile | None) -> list[str] | None:
    if current is None:
        return []
    if current.content is None:
        return None
    return visible_bytes(current.content).splitlines(keepends=True)


def diff_against(record: TrustRecord, discovery: Discovery) -> str:
    """A unified diff of the stored trusted copy against the current files (escaped, bounded)."""
    old = {f.path: f for f in record.files}
    new = {f.path: f for f in discovery.fingerprinted_files}
    lines: list[str] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if (
            before is not None
            and after is not None
            and before.sha256 == after.sha256
            and after.problem is None
        ):
            continue
        shown = visible_path(path)
        before_text, after_text = _stored_file_text(before), _current_file_text(after)
        if before_text is None or after_text is None:
            what = "added" if before is None else "removed" if after is None else "changed"
            detail = f" ({after.problem})" if after is not None and after.problem else ""
            lines.append(f"{shown}: {what}{detail}; content not stored, no diff shown\n")
            continue
        label_old = f"a/{shown}" if before is not None else "/dev/null"
        label_new = f"b/{shown}" if after is not None else "/dev/null"
        for line in difflib.unified_diff(before_text, after_text, label_old, label_new):
            lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        if after is not None and after.problem:
            lines.append(f"{shown}: {visible_path(after.problem)}\n")
    for problem in discovery.tree_problems:
        lines.append(f"problem: {visible_path(problem)}\n")
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more diff lines not shown\n"]
    return "".join(lines)


def _history_paths() -> list[str]:
    return [path for path, category in candidate_paths() if category.fingerprinted]


def evaluate(project_root: Path | str, store: TrustStore, *, with_history: bool = True) -> GateResult:
    """Discover the project's trust-relevant files and compare them with the stored decision.

    Never parses config and never runs repo code. `with_history=False` skips git (faster; `corral run`
    does not need the commits). Raises only when `project_root` is not a directory.
    """
    untrustable: str | None = None
    try:
        root = canonical_root(project_root)
    except TrustError as error:
        if "not a directory" in str(error):
            raise
        untrustable = str(error)
        root = str(Path(project_root).resolve())
    found = discover(root)
    current = fingerprint(found)
    record = None if untrustable else store.get(root)
    if record is None:
        return GateResult(Path(root), TrustState.UNTRUSTED, found, current, None, untrustable=untrustable)
    if record.decision is Decision.DENIED:
        return GateResult(Path(root), TrustState.DENIED, found, current, record)
    if record.fingerprint == current and not found.problems:
        return GateResult(Path(root), TrustState.TRUSTED, found, current, record)
    commits: tuple[CommitInfo, ...] = ()
    if with_history:
        commits = tuple(commits_since(root, _history_paths(), record.decided_at, record.git_head))
    return GateResult(
        Path(root), TrustState.CHANGED, found, current, record, diff_against(record, found), commits
    )


def _decide(
    project_root: Path | str,
    store: TrustStore,
    corral_version: str,
    decision: Decision,
    expected_fingerprint: str | None,
) -> TrustRecord:
    root = canonical_root(project_root)
    found = discover(root)
    current = fingerprint(found)
    if expected_fingerprint is not None and expected_fingerprint != current:
        raise TrustError(f"{root}: trust-relevant files changed since they were shown; review them again")
    if decision is Decision.TRUSTED:
        if found.problems:
            raise TrustError(f"{root}: cannot be trusted: {visible_path(found.problems[0])}")
        review = review_config(found.config_bytes, Path(root))
        if review.error is not None:
            raise TrustError(f"cannot trust an invalid config: {review.error}")
    copies = bounded_copies([(f.path, f.sha256, f.content) for f in found.fingerprinted_files])
    record = TrustRecord(root, current, decision, time.time(), corral_version, copies, head_commit(root))
    store.put(record)
    return record


def grant(
    project_root: Path | str,
    store: TrustStore,
    corral_version: str,
    *,
    expected_fingerprint: str | None = None,
) -> TrustRecord:
    """Trust the project's current content. The caller must have shown it to the person first.

    `expected_fingerprint`: the fingerprint of what was shown; if the files changed since, nothing is
    granted (TrustError). Also TrustError for `/`, `$HOME`, a project with discovery problems, or an
    invalid config.
    """
    return _decide(project_root, store, corral_version, Decision.TRUSTED, expected_fingerprint)


def deny(project_root: Path | str, store: TrustStore, corral_version: str) -> TrustRecord:
    """Record an explicit deny: the project stays denied whatever its content, until revoked."""
    return _decide(project_root, store, corral_version, Decision.DENIED, None)


def revoke(project_root: Path | str, store: TrustStore) -> bool:
    """Forget any decision about the project (back to untrusted); True when there was one."""
    return store.remove(Path(project_root).resolve())
