"""What a prompt says: why-it-matters lines, sensitivity, grouping and the summary line."""

from __future__ import annotations

import pytest

from boundary.violations import Violation, ViolationKind
from corral.decision import Decision, Scope
from corral.grouping import group_violations, summarize
from corral.sensitivity import is_sensitive, why_it_matters
from corral.words import home_relative

W, P, R, N = ViolationKind.FS_WRITE, ViolationKind.FS_PROTECTED, ViolationKind.FS_READ, ViolationKind.NET


@pytest.mark.parametrize(
    ("kind", "target", "expected"),
    [
        (P, "/w/.git/hooks/pre-commit", ".git/hooks/pre-commit runs outside the sandbox at your next commit"),
        (P, "/w/.git/hooks/pre-push", "at your next push"),
        (P, "/w/.git/hooks/post-checkout", "checkout"),
        (P, "/w/.git/config", "hooksPath"),
        (P, "/w/.gitmodules", "submodule"),
        (P, "/w/.envrc", "direnv"),
        (P, "/w/.env", "credentials"),
        (P, "/w/.env.local", "credentials"),
        (P, "/w/.vscode/tasks.json", "editor"),
        (P, "/w/.idea/workspace.xml", "IDE"),
        (P, "/w/.claude/settings.json", "agent config"),
        (P, "/w/.cursor/mcp.json", "agent config"),
        (P, "/w/.mcp.json", "MCP servers"),
        (P, "/w/.corral/config.toml", "corral's project config"),
        (P, "/w/.husky/pre-commit", "husky"),
        (P, "/w/.github/workflows/ci.yml", "CI"),
        (P, "/w/.pre-commit-config.yaml", "pre-commit"),
        (P, "/w/.yarnrc.yml", "yarnPath"),
        (W, "/home/u/.bashrc", "runs in every new shell"),
        (W, "/home/u/.zshenv", "even scripts"),
        (W, "/home/u/.profile", "login"),
        (W, "/home/u/.config/fish/config.fish", "fish"),
        (W, "/home/u/.ssh/authorized_keys", "SSH logins"),
        (W, "/home/u/.ssh/config", "ProxyCommand"),
        (W, "/home/u/.gitconfig", "every git command"),
        (W, "/home/u/.config/git/config", "every git command"),
        (W, "/home/u/.local/bin/ls", "PATH"),
        (W, "/usr/local/bin/python3", "PATH"),
        (W, "/home/u/.config/autostart/x.desktop", "log in"),
        (W, "/home/u/.config/systemd/user/x.service", "systemd"),
        (W, "/home/u/.local/lib/python3.11/site-packages/evil.pth", ".pth"),
        (W, "/home/u/.config/corral/config.toml", "corral's own settings"),
        (W, "/etc/cron.d/job", "schedule"),
        (R, "/home/u/.ssh/id_ed25519", "private SSH key"),
        (R, "/home/u/.aws/credentials", "AWS"),
        (R, "/home/u/.config/gcloud/credentials.db", "Google Cloud"),
        (R, "/home/u/.kube/config", "Kubernetes"),
        (R, "/home/u/.docker/config.json", "container-registry"),
        (R, "/home/u/.netrc", "passwords"),
        (R, "/home/u/.git-credentials", "git passwords"),
        (R, "/home/u/.npmrc", "tokens"),
        (R, "/home/u/.pypirc", "package-index"),
        (R, "/home/u/.config/gh/hosts.yml", "GitHub token"),
        (R, "/home/u/.gnupg/private-keys-v1.d/x.key", "GPG"),
        (R, "/home/u/.cargo/credentials.toml", "crates.io"),
        (R, "/home/u/.mozilla/firefox/p/cookies.sqlite", "browser"),
        (R, "/home/u/.claude.json", "Claude Code"),
        (R, "/home/u/secret-thing", "whoever reads a credential"),
        (W, "/home/u/notes.txt", "stays captured"),
        (N, "pypi.org:443", "new host: data could leave this machine"),
        (N, "127.0.0.1:8080", "this machine"),
        (N, "169.254.169.254:80", "metadata"),
        (N, "10.0.0.5:22", "local-network"),
        (N, "[::1]:631", "this machine"),
        (N, "8.8.8.8:53", "raw IP"),
    ],
)
def test_why_it_matters(kind: ViolationKind, target: str, expected: str) -> None:
    assert expected in why_it_matters(Violation(kind, target, "create"))


def test_a_refused_write_says_it_was_refused_and_that_allowing_reruns() -> None:
    """A backend that refuses writes instead of capturing them (Landlock, Seatbelt): nothing is said to be
    captured, and the re-run is named before the answer."""
    reason = why_it_matters(Violation(W, "/home/u/notes.txt", "create", reruns_on_allow=True))
    assert "stays captured" not in reason
    assert reason.startswith("a write outside the workspace: it was refused, so nothing reached the host")
    assert reason.endswith(
        "allowing re-runs the whole command with this path writable (the write was refused, not captured)"
    )


@pytest.mark.parametrize(
    ("kind", "target", "sensitive"),
    [
        (W, "/home/u/notes.txt", False),
        (W, "/home/u/.cache/pip/x", False),
        (W, "/tmp/out/file", False),
        (W, "/home/u/.bashrc", True),
        (W, "/home/u/.ssh/authorized_keys", True),
        (W, "/home/u/.local/bin/git", True),
        (P, "/w/anything", True),
        (R, "/home/u/anything", True),
        (N, "evil.test:443", False),
    ],
)
def test_sensitivity(kind: ViolationKind, target: str, sensitive: bool) -> None:
    assert is_sensitive(Violation(kind, target, "create")) is sensitive


def test_decision_allows() -> None:
    assert Decision(Scope.ONCE).allows and Decision(Scope.SESSION).allows and Decision(Scope.PROJECT).allows
    assert not Decision(Scope.DENY).allows


def test_path_groups_collapse_under_common_directories() -> None:
    violations = [Violation(W, f"/home/u/out/d{i}/f{j}", "create") for i in range(20) for j in range(3)]
    groups = group_violations(violations, max_groups=8)
    assert sum(g.count for g in groups) == 60
    assert len(groups) <= 8
    assert [g.pattern for g in groups] == ["/home/u/out/"]


def test_single_violation_group_shows_the_target() -> None:
    groups = group_violations([Violation(W, "/home/u/x", "create"), Violation(N, "a.test:443", "connect")])
    assert [(g.pattern, g.count) for g in groups] == [("/home/u/x", 1), ("a.test:443", 1)]


def test_too_many_domains_collapse_into_one_host_group() -> None:
    hosts = [Violation(N, f"h.d{i}.test:443", "connect") for i in range(40)]
    [group] = group_violations(hosts, max_groups=8)
    assert group.pattern == "40 hosts" and group.count == 40


def test_summary_line() -> None:
    violations = [
        Violation(W, "/home/u/a", "create"),
        Violation(W, "/home/u/b", "create"),
        Violation(R, "/home/u/.aws/credentials", "read"),
        Violation(N, "a.test:443", "connect"),
    ]
    assert summarize(violations) == "2 writes outside the workspace, 1 credential read, 1 new host"


def test_home_relative() -> None:
    assert home_relative("/home/u/x", home="/home/u") == "~/x"
    assert home_relative("/home/user2/x", home="/home/u") == "/home/user2/x"
