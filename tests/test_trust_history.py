"""Git history of trust-relevant files without running anything the repo configures.

A hostile `.git/config` sets core.fsmonitor, core.pager, core.sshCommand, core.hooksPath, a diff driver
with textconv and an external command, a clean/smudge filter, gpg.program with log.showSignature, and
include.path to a FIFO outside the repo. Plain git demonstrably runs them (sanity checks); corral's
history calls leave no marker and never open the include.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from trust.history import commits_since, head_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True, timeout=30
    ).stdout


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / ".corral").mkdir(parents=True)
    _git(tmp_path, "init", "-q", str(repo))
    (repo / ".corral" / "config.toml").write_text("[paths]\n")
    (repo / "README").write_text("readme\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "initial")
    return repo


def _commit_file(repo: Path, path: str, text: str, message: str) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    _git(repo, "add", path)
    _git(repo, "commit", "-qm", message)


def test_commits_since_time_and_since_commit(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    head = head_commit(repo)
    assert head is not None and len(head) == 40
    _commit_file(repo, "README", "other\n", "not trust relevant")
    _commit_file(repo, ".corral/config.toml", "[network]\n", "widen \x1b[31m")
    _commit_file(repo, ".claude/settings.json", "{}", "add claude hooks")
    by_commit = commits_since(repo, [".corral", ".claude"], 0, head)
    assert [c.summary for c in by_commit] == ["add claude hooks", "widen \x1b[31m"]
    by_time = commits_since(repo, [".corral", ".claude"], 1)
    assert [c.summary for c in by_time] == ["add claude hooks", "widen \x1b[31m", "initial"]
    # an unknown base commit (rewritten history) falls back to the time
    assert len(commits_since(repo, [".corral"], 1, "0" * 40)) == 2


def test_not_a_repo_or_no_git_gives_empty_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert commits_since(plain, [".corral"], 0) == []
    assert head_commit(plain) is None
    repo = _repo(tmp_path)
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    assert commits_since(repo, [".corral"], 1) == []
    assert head_commit(repo) is None


def test_subdirectory_and_worktree(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _commit_file(repo, "sub/.corral/config.toml", "x", "sub config")
    assert [c.summary for c in commits_since(repo / "sub", [".corral"], 1)] == ["sub config"]
    worktree = tmp_path / "wt"
    _git(repo, "worktree", "add", "-q", str(worktree))
    assert (worktree / ".git").is_file()
    assert head_commit(worktree) == head_commit(repo)
    assert [c.summary for c in commits_since(worktree, [".corral"], 1)] == ["initial"]


def _script(path: Path, marker: Path) -> str:
    path.write_text(f"#!/bin/sh\ntouch '{marker}'\ncat\n")
    path.chmod(0o755)
    return str(path)


def _fake_signed_head(repo: Path) -> None:
    """Rewrite HEAD as a commit carrying a gpgsig header, so log.showSignature would call gpg.program."""
    body = _git(repo, "cat-file", "commit", "HEAD")
    header, _, message = body.partition("\n\n")
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQ==\n -----END PGP SIGNATURE-----"
    signed = f"{header}\n{signature}\n\n{message}"
    env = {**os.environ, **GIT_ENV}
    sha = subprocess.run(
        ["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"],
        input=signed,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    _git(repo, "update-ref", "HEAD", sha)


def test_hostile_git_config_runs_nothing(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _commit_file(repo, ".corral/config.toml", "[network]\n", "second")
    _fake_signed_head(repo)
    markers = tmp_path / "markers"
    markers.mkdir()
    tools = tmp_path / "tools"
    tools.mkdir()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("post-checkout", "pre-commit", "post-index-change", "reference-transaction", "pre-auto-gc"):
        _script(hooks / hook, markers / f"hook-{hook}")
    config = repo / ".git" / "config"
    with config.open("a") as handle:
        handle.write(
            f"""
[core]
    fsmonitor = {_script(tools / "fsmonitor", markers / "fsmonitor")}
    pager = {_script(tools / "pager", markers / "pager")}
    sshCommand = {_script(tools / "ssh", markers / "ssh")}
    hooksPath = {hooks}
    editor = {_script(tools / "editor", markers / "editor")}
[diff "evil"]
    textconv = {_script(tools / "textconv", markers / "textconv")}
    command = {_script(tools / "extdiff", markers / "extdiff")}
[diff]
    external = {_script(tools / "external", markers / "external")}
[filter "evil"]
    clean = {_script(tools / "clean", markers / "clean")}
    smudge = {_script(tools / "smudge", markers / "smudge")}
[log]
    showSignature = true
[gpg]
    program = {_script(tools / "gpg", markers / "gpg")}
[credential]
    helper = !{_script(tools / "cred", markers / "credential")}
[alias]
    log = !touch {markers / "alias"}
"""
        )
    (repo / ".gitattributes").write_text("* diff=evil filter=evil\n")
    # Sanity: plain git obeys this config (so the absence of markers below means something).
    _git(repo, "log", "-1", "--format=%H")
    assert (markers / "gpg").exists(), "plain git log should have run gpg.program"
    _git(repo, "log", "-p", "-1", "--", ".corral")
    assert (markers / "textconv").exists() or (markers / "external").exists()
    _git(repo, "status", "--short")
    assert (markers / "fsmonitor").exists(), "plain git status should have run core.fsmonitor"
    for marker in markers.iterdir():
        marker.unlink()

    # include.path to a FIFO outside the repo: if git ever read the repo config it would open it.
    fifo = tmp_path / "outside-include"
    os.mkfifo(fifo)
    with config.open("a") as handle:
        handle.write(f'[include]\n    path = {fifo}\n[includeIf "gitdir:/"]\n    path = {fifo}\n')
    opened = threading.Event()

    def wait_for_reader() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until someone opens the FIFO for reading
        opened.set()
        os.close(fd)

    watcher = threading.Thread(target=wait_for_reader, daemon=True)
    watcher.start()

    started = time.monotonic()
    head = head_commit(repo)
    commits = commits_since(repo, [".corral", ".claude"], 1)
    since = commits_since(repo, [".corral"], 1, head)
    assert time.monotonic() - started < 20
    assert head is not None and [c.summary for c in commits] == ["second", "initial"] and since == []

    assert not opened.is_set(), "the include outside the repo was opened"
    assert sorted(p.name for p in markers.iterdir()) == []
    # release the watcher thread
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    watcher.join(timeout=5)
    os.close(fd)


def test_git_shim_in_the_repo_is_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """T06: a repo-provided `git` is never picked up, even with an empty PATH entry and cwd in the repo."""
    repo = _repo(tmp_path)
    marker = tmp_path / "shim-ran"
    (repo / "bin").mkdir()
    for shim in (repo / "git", repo / "bin" / "git"):
        shim.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
        shim.chmod(0o755)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("PATH", f":.:{repo / 'bin'}:" + os.environ.get("PATH", "/usr/bin:/bin"))
    commits_since(repo, [".corral"], 1)
    head_commit(repo)
    assert not marker.exists()
