"""`.git/config` is decided key by key (`sandbox.gitconfig`), with the real bubblewrap and host git.

git's own branch-tracking writes (`remote add`, `checkout -b --track`, `branch --set-upstream-to`)
apply with no prompt; a key that runs a program (`core.fsmonitor`, `alias.*`, `include.path`, ...) is
still a protected change. A project rule made from such a change is bound to the key/value changes it
allowed: it lets exactly those land again and never `core.fsmonitor`, and a rule for the whole path
(`corral rules add --path`) does not allow key changes either.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from boundary.violations import Violation, ViolationKind
from corral.rules import RuleStore
from sandbox.gitconfig import diff_config, is_git_config, is_housekeeping
from tests.conftest import Actor


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _remote(actor: Actor) -> Path:
    """A bare repository with one commit on `main`, inside the workspace (the home outside it is hidden
    by the read allow-list, and /tmp is private in the sandbox)."""
    source = actor.base / "source"
    source.mkdir()
    _git("init", "-q", "-b", "main", str(source), cwd=actor.base)
    (source / "f").write_text("x\n")
    _git("add", "f", cwd=source)
    _git("commit", "-q", "-m", "one", cwd=source)
    bare = actor.workspace / "remote.git"
    _git("clone", "-q", "--bare", str(source), str(bare), cwd=actor.base)
    actor.chown_tree(actor.base)
    return bare


def _config(actor: Actor) -> str:
    return (actor.workspace / ".git" / "config").read_text()


def test_branch_tracking_applies_with_no_prompt(actor: Actor) -> None:
    remote = _remote(actor)
    result = actor.sandboxed(
        f"git remote add origin {remote} && git fetch -q origin && git checkout -q -b feat --track origin/main"
        " && git branch -q --set-upstream-to=origin/main feat && git config branch.feat.rebase true"
    )
    assert result.returncode == 0, result.stderr
    assert "corral: denied" not in result.stderr
    listed = _git("config", "--file", str(actor.workspace / ".git" / "config"), "--list", cwd=actor.workspace)
    assert f"remote.origin.url={remote}" in listed
    assert "branch.feat.remote=origin" in listed
    assert "branch.feat.merge=refs/heads/main" in listed
    assert "branch.feat.rebase=true" in listed


@pytest.mark.parametrize(
    "command",
    [
        "git config core.fsmonitor 'touch MARK'",
        "git config alias.st '!touch MARK'",
        "git config include.path ../evil",
        "git config url.https://evil.example/.insteadOf https://github.com/",
        "git config filter.x.clean 'touch MARK'",
        "git config core.hooksPath hooks",
        "git config includeIf.gitdir:/.path ../evil",
        "git config branch.feat.remote origin && git config core.pager 'touch MARK'",
        "git remote add evil 'ext::sh -c touch% MARK'",
    ],
)
def test_program_running_keys_still_ask(actor: Actor, command: str) -> None:
    before = _config(actor)
    result = actor.sandboxed(command)
    assert result.returncode == 77, result.stderr
    assert "denied fs-protected" in result.stderr and "git config keys:" in result.stderr
    assert _config(actor) == before


def test_a_rule_is_bound_to_the_keys_it_allowed(actor: Actor) -> None:
    """A project rule granted for `alias.st=status` applies that change again with no prompt, but the
    same rule never lets `core.fsmonitor` (or another alias value) land."""
    config = actor.workspace / ".git" / "config"
    data_dir = actor.state_home / ".local" / "share" / "corral"
    data_dir.mkdir(parents=True, exist_ok=True)
    with RuleStore.open(data_dir / "rules.sqlite3") as rules:
        granted = Violation(
            ViolationKind.FS_PROTECTED,
            os.path.realpath(config),
            "modify",
            config_changes=("+alias.st=status",),
        )
        rules.add_for(actor.workspace, granted, confirmed=True)
    actor.chown_tree(actor.state_home)
    allowed = actor.sandboxed("git config alias.st status")
    assert allowed.returncode == 0, allowed.stderr
    assert "alias.st=status" in _git("config", "--file", str(config), "--list", cwd=actor.workspace)
    before = _config(actor)
    for command in ("git config core.fsmonitor 'touch MARK'", "git config alias.st '!touch MARK'"):
        result = actor.sandboxed(command)
        assert result.returncode == 77, result.stderr
        assert _config(actor) == before


def test_a_whole_path_rule_never_allows_key_changes(actor: Actor) -> None:
    """`corral rules add --path .git/config` is not a licence for every key."""
    config = actor.workspace / ".git" / "config"
    added = actor.run(
        "rules",
        "add",
        "--project",
        str(actor.workspace),
        "--kind",
        "fs-protected",
        "--path",
        os.path.realpath(config),
        "--confirm-sensitive",
    )
    assert added.returncode == 0, added.stderr
    before = _config(actor)
    result = actor.sandboxed("git config core.fsmonitor 'touch MARK'")
    assert result.returncode == 77, result.stderr
    assert _config(actor) == before


def test_housekeeping_table() -> None:
    assert is_housekeeping("branch.main.remote", "origin")
    assert is_housekeeping("branch.feature/x.y.merge", "refs/heads/x")
    assert is_housekeeping("remote.origin.url", "https://example.com/x.git")
    assert is_housekeeping("remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")
    assert not is_housekeeping("remote.origin.url", "ext::sh -c evil")
    assert not is_housekeeping("branch.remote", "origin")  # no subsection: not git's tracking key
    for key in (
        "core.fsmonitor",
        "core.hookspath",
        "alias.st",
        "include.path",
        "includeif.gitdir:/x.path",
        "url.https://evil/.insteadof",
        "filter.lfs.process",
        "diff.x.textconv",
        "credential.helper",
        "remote.origin.uploadpack",
        "remote.origin.vcs",
    ):
        assert not is_housekeeping(key, "x"), key
    assert is_git_config(PurePosixPath(".git/config"))
    assert is_git_config(PurePosixPath(".git/worktrees/w/config.worktree"))
    assert not is_git_config(PurePosixPath("src/config"))


def test_diff_is_git_s_own_reading() -> None:
    """Parsed by git: case of section names, quoting and continuation lines cannot hide a key."""
    old = b'[core]\n\tbare = false\n[branch "main"]\n\tremote = origin\n'
    hidden = old + b'[CoRe]\n\tfsMonitor = "touch \\\n MARK"\n'
    diff = diff_config(old, hidden)
    assert diff is not None and not diff.housekeeping_only
    assert diff.keys == {"core.fsmonitor"}
    tracking = diff_config(old, old + b'[branch "feat"]\n\tremote = origin\n\tmerge = refs/heads/feat\n')
    assert tracking is not None and tracking.housekeeping_only
    assert tracking.lines == ("+branch.feat.merge=refs/heads/feat", "+branch.feat.remote=origin")
    assert diff_config(old, b"[core\n") is None  # git cannot parse it: not judged, stays protected
    comments = diff_config(old, b"# a comment\n" + old)
    assert comments is not None and comments.lines == () and comments.housekeeping_only


def test_rule_matching_is_bound_both_ways(tmp_path: Path) -> None:
    """A key-bound rule never matches a change that carries no key/value changes (a deletion, an
    unparseable file), and a plain path rule never matches one that does."""
    config = str(tmp_path / ".git" / "config")
    with RuleStore.open(tmp_path / "rules.sqlite3") as rules:
        bound = rules.add_for(
            tmp_path,
            Violation(ViolationKind.FS_PROTECTED, config, "modify", config_changes=("+alias.st=status",)),
            confirmed=True,
        )
        assert bound.config_changes == ("+alias.st=status",)
        again = rules.add_for(
            tmp_path,
            Violation(ViolationKind.FS_PROTECTED, config, "modify", config_changes=("+alias.co=checkout",)),
            confirmed=True,
        )
        assert again.id == bound.id and again.config_changes == ("+alias.co=checkout", "+alias.st=status")
        stored = rules.list(tmp_path)[0]
    assert stored.matches(
        Violation(ViolationKind.FS_PROTECTED, config, "modify", config_changes=("+alias.co=checkout",))
    )
    assert not stored.matches(
        Violation(ViolationKind.FS_PROTECTED, config, "modify", config_changes=("+core.fsmonitor=x",))
    )
    assert not stored.matches(Violation(ViolationKind.FS_PROTECTED, config, "delete"))
