"""The trust flows every front end shares (`corral.trusting`): a grant trusts only what was shown."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from boundary.violations import ViolationKind
from corral.locations import Locations
from corral.rules import RuleStore
from corral.trusting import ProjectTrust, deny_project, known_projects, revoke_project
from trust.gate import TrustState
from trust.store import TrustError

REPO = Path(__file__).resolve().parent.parent


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".corral").mkdir(parents=True)
    (root / ".corral" / "config.toml").write_text('[env]\nRUST_LOG = "info"\n')
    return root


def test_content_changed_after_it_was_shown_is_not_trusted(tmp_path: Path) -> None:
    root = _project(tmp_path)
    trust = ProjectTrust(root, Locations.default())
    trust.refresh(with_history=False)
    assert trust.needs_question
    (root / ".corral" / "config.toml").write_text('[env]\nRUST_LOG = "info"\nEVIL = "1"\n')
    with pytest.raises(TrustError):
        trust.grant()
    trust.refresh(with_history=False)
    assert trust.state is TrustState.UNTRUSTED


def test_grant_deny_revoke_and_the_known_projects(tmp_path: Path) -> None:
    locations = Locations.default()
    root = _project(tmp_path)
    trust = ProjectTrust(root, locations)
    trust.refresh(with_history=False)
    trust.grant()
    assert trust.state is TrustState.TRUSTED and not trust.needs_question
    rules_only = tmp_path / "rules-only"
    rules_only.mkdir()
    store = RuleStore.open(locations.rules_path)
    try:
        store.add(rules_only, ViolationKind.NET, "pypi.org:443")
    finally:
        store.close()
    rows = {Path(row.root).name: row for row in known_projects(locations)}
    assert rows["project"].decision == "trusted" and rows["project"].fingerprint_state == "unchanged"
    assert rows["rules-only"].decision == "none" and rows["rules-only"].rules == 1
    (root / ".corral" / "config.toml").write_text("[env]\n")
    assert {r.root: r for r in known_projects(locations)}[rows["project"].root].fingerprint_state == "changed"
    deny_project(root, locations)
    denied = ProjectTrust(root, locations)
    denied.refresh(with_history=False)
    assert denied.state is TrustState.DENIED and not denied.needs_question
    assert revoke_project(root, locations)
    assert not revoke_project(root, locations)


def test_an_unreadable_project_counts_as_untrusted(tmp_path: Path) -> None:
    trust = ProjectTrust(tmp_path / "gone", Locations.default())
    trust.refresh()
    assert trust.state is TrustState.UNTRUSTED
    assert not trust.needs_question


def _calls_to(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "trust.gate":
            found += [alias.name for alias in node.names if alias.name in names]
    return found


@pytest.mark.parametrize(
    "module",
    ["cli/commands/trust_cmd.py", "tui/project.py", "tui/review.py", "tui/app.py", "tui/line/shell.py"],
)
def test_front_ends_decide_trust_only_through_the_core(module: str) -> None:
    path = REPO / module
    if not path.exists():
        pytest.skip(f"{module} moved")
    assert _calls_to(path, {"grant", "deny", "revoke", "evaluate"}) == []
