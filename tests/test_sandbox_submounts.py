"""Filesystems mounted inside the home or the workspace (FUSE, sshfs, a tmpfs node_modules): the kernel
refuses an overlay over a directory with mounts below it inside a user namespace, so corral captures the
sibling directories one by one and leaves the rest read-only. The home is shown through a skeleton of
its own (no mounts below it), so a mount in the home is simply a hidden entry and writes there are
captured like any other. It still runs, and still fails closed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import Actor
from tests.test_escape_support import assert_denied_under

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root"
)


@pytest.fixture
def mounted(actor: Actor) -> Iterator[Actor]:
    points = [actor.own_dir / "mnt-share", actor.workspace / "node_modules"]
    for point in points:
        point.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "tmpfs", str(point)], check=True)
    (actor.workspace / "src").mkdir()
    (actor.own_dir / "notes").mkdir(parents=True)
    actor.chown_tree(actor.workspace / "src")
    actor.chown_tree(actor.own_dir / "notes")
    actor.chown_path(actor.own_dir)
    try:
        yield actor
    finally:
        for point in points:
            subprocess.run(["umount", "-l", str(point)], check=False)


def test_runs_and_captures_around_mount_points(mounted: Actor) -> None:
    actor = mounted
    notes = actor.own_dir / "notes"
    result = actor.sandboxed(f"echo x > src/a.txt && echo y > {notes}/n.txt; echo done")
    assert result.returncode == 77, result.stderr
    assert "done" in result.stdout
    assert (actor.workspace / "src/a.txt").read_text() == "x\n"
    assert not (notes / "n.txt").exists()
    assert_denied_under(result.stderr, "fs-write", notes / "n.txt", actor.home)


def test_writes_that_cannot_be_captured_fail(mounted: Actor) -> None:
    actor = mounted
    share = actor.own_dir / "mnt-share"
    result = actor.sandboxed(f"touch node_modules/x; echo rc=$?; touch {share}/y; cat ~/.bashrc; echo end")
    assert "rc=0" not in result.stdout  # the workspace's mount point stays read-only
    assert "user's bashrc" not in result.stdout  # the home shows its read allow-list only
    assert "end" in result.stdout
    assert not (actor.workspace / "node_modules/x").exists()
    assert not (share / "y").exists()  # captured in the home's layer, denied
