"""Filesystems mounted inside the home or the workspace (FUSE, sshfs, a tmpfs node_modules): the kernel
refuses an overlay over a directory with mounts below it inside a user namespace, so corral captures the
sibling directories one by one and leaves the rest read-only. It still runs, and still fails closed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import Actor

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root"
)


@pytest.fixture
def mounted(actor: Actor) -> Iterator[Actor]:
    points = [actor.home / "mnt-share", actor.workspace / "node_modules"]
    for point in points:
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "tmpfs", str(point)], check=True)
    (actor.workspace / "src").mkdir()
    (actor.home / "notes").mkdir()
    actor.chown_tree(actor.workspace / "src")
    actor.chown_tree(actor.home / "notes")
    try:
        yield actor
    finally:
        for point in points:
            subprocess.run(["umount", "-l", str(point)], check=False)


def test_runs_and_captures_around_mount_points(mounted: Actor) -> None:
    actor = mounted
    result = actor.sandboxed("echo x > src/a.txt && echo y > ~/notes/n.txt; echo done")
    assert result.returncode == 77, result.stderr
    assert "done" in result.stdout
    assert (actor.workspace / "src/a.txt").read_text() == "x\n"
    assert not (actor.home / "notes/n.txt").exists()
    assert "denied fs-write ~/notes/n.txt" in result.stderr


def test_writes_that_cannot_be_captured_fail(mounted: Actor) -> None:
    actor = mounted
    result = actor.sandboxed("touch ~/top-level; echo rc=$?; touch node_modules/x; echo rc=$?; cat ~/.bashrc")
    assert "rc=0" not in result.stdout
    assert "user's bashrc" in result.stdout  # the top level is still readable
    assert not (actor.home / "top-level").exists()
    assert not (actor.workspace / "node_modules/x").exists()
