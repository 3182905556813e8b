"""Capture layers on disk, never in a RAM-backed runtime directory (issue 14 item 3): a command's big
write costs no memory, and applying it is a rename of the very inode the command wrote. Real
bubblewrap, as root and as a normal user, with `XDG_RUNTIME_DIR` on a tmpfs (/dev/shm)."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.layerplace import capture_place, is_ram_backed, mount_of, var_tmp_place
from tests.conftest import Actor

SHM = Path("/dev/shm")
BIG = 64 * 1000 * 1000


@pytest.fixture
def ram_runtime() -> Iterator[Path]:
    if not SHM.is_dir() or not is_ram_backed(SHM):
        pytest.skip("no tmpfs at /dev/shm to stand for a RAM-backed XDG_RUNTIME_DIR")
    runtime = SHM / f"corral-test-{secrets.token_hex(4)}"
    runtime.mkdir(mode=0o700)
    try:
        yield runtime
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def _places_for(uid: int, runtime_dir: Path) -> list[Path]:
    """`var_tmp_place` in /var/tmp and /tmp as computed by a corral process running as `uid`."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(runtime_dir))).hexdigest()[:12]
    return [Path(base) / f"corral-{uid}-{key}" for base in ("/var/tmp", "/tmp")]


def test_mount_table_tells_tmpfs_from_disk(tmp_path: Path) -> None:
    shm = mount_of(SHM)
    assert shm is not None and shm[1] == "tmpfs"
    assert not is_ram_backed(tmp_path) or mount_of(tmp_path) == mount_of(Path("/tmp"))
    assert mount_of(tmp_path / "not" / "there") == mount_of(tmp_path)


def test_a_ram_backed_runtime_dir_gives_way_to_disk(ram_runtime: Path, tmp_path: Path) -> None:
    if is_ram_backed(Path("/var/tmp")):
        pytest.skip("/var/tmp is RAM-backed here")
    runtime = ram_runtime / "corral"
    chosen = capture_place(runtime, tmp_path / "ws")
    try:
        assert chosen == var_tmp_place(runtime)
        assert not is_ram_backed(chosen)
        info = os.lstat(chosen)
        assert info.st_uid == os.getuid() and info.st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(chosen, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a directory owned by someone else needs root")
def test_a_place_planted_by_another_user_is_never_used(ram_runtime: Path, tmp_path: Path) -> None:
    runtime = ram_runtime / "corral"
    planted = [var_tmp_place(runtime, Path(base)) for base in ("/var/tmp", "/tmp")]
    for place in planted:
        place.mkdir(mode=0o777)
        os.chown(place, 65534, 65534)
    try:
        assert capture_place(runtime, tmp_path / "ws") == runtime  # as before: RAM, but ours
    finally:
        for place in planted:
            place.rmdir()


def test_a_big_write_is_applied_by_rename_and_never_held_in_ram(actor: Actor, ram_runtime: Path) -> None:
    if is_ram_backed(Path("/var/tmp")) or is_ram_backed(Path("/tmp")):
        pytest.skip("/var/tmp or /tmp is RAM-backed here")
    os.chown(ram_runtime, actor.uid, actor.gid)
    actor.env["XDG_RUNTIME_DIR"] = str(ram_runtime)
    places = _places_for(actor.uid, ram_runtime / "corral")
    try:
        result = actor.sandboxed(f"head -c {BIG} /dev/zero > big.bin && stat -c %i big.bin")
        assert result.returncode == 0, result.stderr
        written_inode = int(result.stdout.split()[-1])
        host = os.stat(actor.workspace / "big.bin")
        assert host.st_size == BIG
        assert host.st_ino == written_inode  # the inode the command wrote: renamed into place, not copied
        # as a user /var/tmp; as root /var is itself captured, so /tmp (on disk here)
        assert any((place / "slot-0").is_dir() for place in places)
        in_ram = [str(p) for p in ram_runtime.rglob("*") if p.name.startswith(("slot-", "run-"))]
        assert in_ram == []
    finally:
        for place in places:
            shutil.rmtree(place, ignore_errors=True)
