"""The demo content for screenshots stays out of the wheel and never uses a tree another user controls."""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from screenshots import demo

REPO = Path(__file__).resolve().parent.parent


def test_demo_and_scenes_are_not_part_of_the_installed_front_end() -> None:
    code = "import importlib.util as u; print(u.find_spec('tui.demo'), u.find_spec('tui.scenes'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["None", "None"]
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    patterns: list[str] = include["include"]
    assert not any(fnmatch.fnmatchcase("screenshots", p) for p in patterns)
    assert any(fnmatch.fnmatchcase("tui", p) for p in patterns)


def test_lock_is_private_to_the_user_and_the_root_is_removed_afterwards(tmp_path: Path) -> None:
    root = tmp_path / "corral-demo"
    with demo.exclusive(root):
        demo.prepare(root)
        assert (root / "project" / ".corral" / "config.toml").is_file()
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    lock = tmp_path / f"corral-demo.{os.getuid()}.lock"
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
    assert not root.exists()


def test_a_planted_lock_symlink_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "corral-demo"
    target = tmp_path / "victim"
    target.write_text("keep me\n")
    (tmp_path / f"corral-demo.{os.getuid()}.lock").symlink_to(target)
    with pytest.raises(OSError), demo.exclusive(root):
        pass
    assert target.read_text() == "keep me\n"


def test_a_planted_demo_root_is_not_used(tmp_path: Path) -> None:
    root = tmp_path / "corral-demo"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("x")
    root.symlink_to(elsewhere)
    with pytest.raises(demo.DemoRootError):
        demo.prepare(root)
    assert (elsewhere / "keep").exists()


def test_another_users_demo_root_is_waited_for_then_refused(tmp_path: Path) -> None:
    root = tmp_path / "corral-demo"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.symlink_to(elsewhere)  # not a directory of ours: treated like another user's
    with pytest.raises(demo.DemoRootError), demo.exclusive(root, wait_s=0.3):
        pass
    assert root.is_symlink() and list(elsewhere.iterdir()) == []


def test_a_stale_demo_root_of_our_own_is_replaced(tmp_path: Path) -> None:
    root = tmp_path / "corral-demo"
    root.mkdir()
    (root / "left-over").write_text("from a crashed run")
    with demo.exclusive(root):
        assert list(root.iterdir()) == []
        demo.prepare(root)
        assert (root / "project").is_dir()
    assert not root.exists()
