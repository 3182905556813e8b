"""The trust flows, once for every front end: evaluate a project, trust what was shown, deny, revoke,
and list every project corral knows.

`corral trust`, the Textual app (trust dialog, review screen) and the line mode all decide through
these functions; none of them calls the trust gate's `grant` on its own. A grant always names the
fingerprint of the content the person was shown (`expected_fingerprint`), so content that changed
between showing and deciding is refused (`TrustError`) instead of trusted unseen. Nothing here parses
a project's config: that happens only in `corral.project.open_project`, after trust.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from corral import __version__
from corral.locations import Locations
from corral.rules import RuleStore
from trust.gate import GateResult, TrustState, deny, evaluate, grant, revoke
from trust.store import TrustRecord, TrustStore


def trust_store(locations: Locations) -> TrustStore:
    """The user's trust store."""
    return TrustStore(locations.trust_dir)


def evaluate_project(root: Path | str, locations: Locations, *, with_history: bool = True) -> GateResult:
    """Where `root` stands: state, the files that would load, the diff and commits after a change."""
    return evaluate(root, trust_store(locations), with_history=with_history)


def grant_shown(shown: GateResult, locations: Locations) -> TrustRecord:
    """Trust exactly the content that was shown (`TrustError` when it changed since, or is untrustable)."""
    return grant(shown.root, trust_store(locations), __version__, expected_fingerprint=shown.fingerprint)


def deny_project(root: Path | str, locations: Locations) -> TrustRecord:
    """Deny `root`: its config never loads, whatever it says."""
    return deny(root, trust_store(locations), __version__)


def revoke_project(root: Path | str, locations: Locations) -> bool:
    """Forget the decision about `root` (back to untrusted). False when there was none."""
    return revoke(root, trust_store(locations))


@dataclass
class ProjectTrust:
    """The trust of the project a shell runs in (`gate` is None when it could not be evaluated)."""

    workspace: Path
    locations: Locations
    gate: GateResult | None = None
    gate_error: str | None = None

    def refresh(self, *, with_history: bool = True) -> None:
        """Evaluate trust again (after a decision, or on demand)."""
        try:
            self.gate = evaluate_project(self.workspace, self.locations, with_history=with_history)
            self.gate_error = None
        except Exception as error:  # fail closed: an unreadable project is shown, and treated, as untrusted
            self.gate = None
            self.gate_error = str(error)

    @property
    def state(self) -> TrustState:
        """Where the project stands; anything unknown counts as untrusted."""
        return self.gate.state if self.gate is not None else TrustState.UNTRUSTED

    @property
    def needs_question(self) -> bool:
        """Untrusted or changed, trustable at all, and with something to decide: ask on opening. A project
        with no trust-relevant file at all (no `.corral/`, no other agent's config) has nothing that
        trust would load, so opening it asks nothing (as `corral run` says nothing)."""
        gate = self.gate
        if gate is None or gate.untrustable is not None:
            return False
        if gate.state is TrustState.CHANGED:
            return True
        return gate.state is TrustState.UNTRUSTED and bool(gate.discovery.files)

    def grant(self) -> None:
        """Trust the content that was shown (`TrustError` when it changed since), then evaluate again."""
        if self.gate is None:
            raise ValueError("nothing was shown")
        grant_shown(self.gate, self.locations)
        self.refresh()


def open_workspace(directory: str | None, locations: Locations) -> ProjectTrust:
    """The workspace for `directory` (the git root of the current directory by default), its trust
    evaluated: how both shells open their project. `UsageError` when it cannot be a workspace."""
    from corral.workspace import find_workspace

    start = Path(directory) if directory else Path.cwd()
    trust = ProjectTrust(find_workspace(start, explicit=bool(directory)), locations)
    trust.refresh()
    return trust


@dataclass(frozen=True, slots=True)
class KnownProject:
    """One project corral knows, for the trust review (front ends) and listings.

    `fingerprint_state`: `unchanged` (the files match the decision), `changed` (they differ: trust is
    withdrawn until re-approved), `missing` (the directory is gone or unreadable), `-` (no decision).
    """

    root: str
    decision: str
    decided_at: float
    fingerprint_state: str
    rules: int


def _fingerprint_state(record: TrustRecord, store: TrustStore) -> str:
    if not os.path.isdir(record.root):
        return "missing"
    try:
        result = evaluate(record.root, store, with_history=False)
    except Exception:
        return "missing"
    if result.fingerprint == record.fingerprint and not result.discovery.problems:
        return "unchanged"
    return "changed"


def known_projects(locations: Locations) -> list[KnownProject]:
    """Every project in the trust store, plus projects that only have rules."""
    store = trust_store(locations)
    counts: dict[str, int] = {}
    try:
        rules = RuleStore.open(locations.rules_path)
    except Exception:
        rules = None  # an unreadable rules store shows no counts; it never hides a trust decision
    if rules is not None:
        try:
            for rule in rules.list():
                counts[rule.project] = counts.get(rule.project, 0) + 1
        finally:
            rules.close()
    rows: list[KnownProject] = []
    seen: set[str] = set()
    for record in store.records():
        seen.add(record.root)
        rows.append(
            KnownProject(
                record.root,
                record.decision.value,
                record.decided_at,
                _fingerprint_state(record, store),
                counts.get(record.root, 0),
            )
        )
    for root, count in sorted(counts.items()):
        if root not in seen:
            state = "missing" if not os.path.isdir(root) else "-"
            rows.append(KnownProject(root, "none", 0.0, state, count))
    return rows
