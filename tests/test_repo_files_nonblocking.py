"""Repository files corral reads are opened non-blocking and must be regular files (`boundary.repofiles`).

A repository decides what sits at `.git`, `.git/config`, `commondir` or a configured hooks path. A FIFO
there used to block `corral run` forever in a plain `open()` (no writer ever comes). Each case runs the
real CLI (and so the real sandbox) as root and as an unprivileged user under a timeout: it must finish,
run the command, and leave the FIFO a FIFO.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from boundary.repofiles import read_repo_file
from tests.conftest import Actor

TIMEOUT_S = 30


def _fifo_at_dot_git(workspace: Path, home: Path) -> Path:
    subprocess.run(["rm", "-rf", str(workspace / ".git")], check=True)
    os.mkfifo(workspace / ".git")
    return workspace / ".git"


def _fifo_at_config(workspace: Path, home: Path) -> Path:
    (workspace / ".git" / "config").unlink()
    os.mkfifo(workspace / ".git" / "config")
    return workspace / ".git" / "config"


def _fifo_at_gitdir_config(workspace: Path, home: Path) -> Path:
    """`.git` is a file (`gitdir: ...`, as in worktrees and submodules) whose git dir holds a FIFO config."""
    real = workspace / "real-git"
    subprocess.run(["mv", str(workspace / ".git"), str(real)], check=True)
    (workspace / ".git").write_text(f"gitdir: {real}\n")
    (real / "config").unlink()
    os.mkfifo(real / "config")
    (real / "commondir").unlink(missing_ok=True)
    os.mkfifo(real / "commondir")
    return real / "config"


def _fifo_at_global_config(workspace: Path, home: Path) -> Path:
    """The user's own ~/.gitconfig as a FIFO (corral reads it for core.hooksPath); the test removes it
    afterwards (the unprivileged user's home is its real, shared home)."""
    (home / ".gitconfig").unlink(missing_ok=True)
    os.mkfifo(home / ".gitconfig")
    return home / ".gitconfig"


def _fifo_as_hooks_path(workspace: Path, home: Path) -> Path:
    """core.hooksPath names a FIFO inside the workspace."""
    with open(workspace / ".git" / "config", "a", encoding="utf-8") as handle:
        handle.write("[core]\n\thooksPath = .githooks\n")
    os.mkfifo(workspace / ".githooks")
    return workspace / ".githooks"


CASES: dict[str, Callable[[Path, Path], Path]] = {
    "fifo .git": _fifo_at_dot_git,
    "fifo .git/config": _fifo_at_config,
    "fifo config and commondir behind a gitdir file": _fifo_at_gitdir_config,
    "fifo ~/.gitconfig": _fifo_at_global_config,
    "fifo hooksPath": _fifo_as_hooks_path,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fifo_in_the_repository_never_hangs_corral_run(actor: Actor, case: str) -> None:
    fifo = CASES[case](actor.workspace, actor.home)
    actor.chown_tree(actor.base)
    actor.chown_path(fifo)
    try:
        try:
            result = actor.run(
                "run", "--on-violation", "deny", "--", "sh", "-c", "echo ran", timeout=TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"corral run hung on a {case}")
        assert result.returncode == 0, result.stderr
        assert "ran" in result.stdout
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    finally:
        if not fifo.is_relative_to(actor.base):
            fifo.unlink(missing_ok=True)


def test_fifo_never_hangs_trust_show(actor: Actor) -> None:
    """The trust review reads the same files: it finishes too."""
    _fifo_at_config(actor.workspace, actor.home)
    (actor.workspace / ".corral").mkdir()
    os.mkfifo(actor.workspace / ".corral" / "config.toml")
    actor.chown_tree(actor.base)
    try:
        result = actor.run("trust", "show", str(actor.workspace), timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail("corral trust show hung on a FIFO")
    assert "not a regular file" in result.stdout + result.stderr


def test_reader_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    """The one reader: a FIFO, a directory, a final symlink and an oversized file are refused with a
    reason; a regular file is read whole."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_bytes(b"x" * 10)
    (tmp_path / "link").symlink_to(tmp_path / "file")
    assert read_repo_file(tmp_path / "fifo", 100).problem == "not a regular file"
    assert read_repo_file(tmp_path / "dir", 100).problem == "not a regular file"
    assert (read_repo_file(tmp_path / "link", 100).problem or "").startswith("cannot open")
    assert read_repo_file(tmp_path / "file", 5).problem == "larger than 5 bytes"
    assert read_repo_file(tmp_path / "file", 100).content == b"x" * 10
    assert read_repo_file(tmp_path / "missing", 100).problem == "missing"
