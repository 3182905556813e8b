"""The demo content for screenshots stays out of the wheel and never uses a tree another user controls."""

from __future__ import annotations

import fcntl
import fnmatch
import os
import pwd
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
    with demo.exclusive(root):
        root.rmdir()
        root.symlink_to(elsewhere)  # swapped after the claim: prepare still refuses to build through it
        with pytest.raises(demo.DemoRootError):
            demo.prepare(root)
    assert (elsewhere / "keep").exists() and root.is_symlink()


def test_prepare_outside_exclusive_is_refused_so_no_tree_is_left_behind(tmp_path: Path) -> None:
    """A bare `prepare` once left /tmp/corral-demo behind, owned by the user who ran the tests; every
    later run by another user then waited on it until its tests timed out."""
    root = tmp_path / "corral-demo"
    with pytest.raises(demo.DemoRootError, match=r"only inside demo\.exclusive"):
        demo.prepare(root)
    assert not root.exists()


def _abandoned_root(tmp_path: Path) -> tuple[Path, pwd.struct_passwd]:
    """A demo root left by another user's killed run: their directory, with a file in it."""
    other = _other_user()
    root = tmp_path / "corral-demo"
    root.mkdir(mode=0o700)
    (root / "left-over").write_text("from a killed run")
    for path in (root, root / "left-over"):
        os.chown(path, other.pw_uid, other.pw_gid)
    return root, other


def _other_user() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("only root can remove another user's demo root: this run is not root")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this host to own the left-over demo root")


def test_root_reclaims_another_users_abandoned_demo_root(tmp_path: Path) -> None:
    root, other = _abandoned_root(tmp_path)
    with demo.exclusive(root, wait_s=5):
        demo.prepare(root)
        assert os.stat(root).st_uid == 0 and not (root / "left-over").exists()
    lock = tmp_path / f"corral-demo.{other.pw_uid}.lock"
    assert os.stat(lock).st_uid == other.pw_uid  # their lock was made for them and held meanwhile


def test_root_waits_for_another_users_demo_root_while_their_run_holds_it(tmp_path: Path) -> None:
    root, other = _abandoned_root(tmp_path)
    lock = tmp_path / f"corral-demo.{other.pw_uid}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchown(fd, other.pw_uid, other.pw_gid)
    fcntl.flock(fd, fcntl.LOCK_EX)  # their run, still going
    try:
        with pytest.raises(demo.DemoRootError), demo.exclusive(root, wait_s=0.5):
            pass
        assert (root / "left-over").read_text() == "from a killed run"
    finally:
        os.close(fd)


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
