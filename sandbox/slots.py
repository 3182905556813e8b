"""Reusable run directories ("slots"), so a command pays no mkdir/rmdir for its capture layers.

A slot is a directory in corral's private runtime directory holding one upper and work directory per
capture layer and the decoys. One command holds a slot (an flock) from start until its captured changes
are applied or discarded; then the upper layers are emptied and the slot is free for the next command,
in this process or another. A slot left dirty by a crash is emptied before it is used again.
Mount points that bwrap creates inside an upper layer for nested mounts are kept: they are empty, and
recreating them every time would be the cost this module exists to avoid.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_SLOTS = 64


class NoFreeSlot(RuntimeError):
    """Every slot is held by a running command."""


@dataclass
class Slot:
    path: Path
    lock_fd: int

    def release(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


def acquire_slot(runtime_dir: Path) -> Slot:
    """Lock the first free slot under `runtime_dir` (created private to the user when missing)."""
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for index in range(MAX_SLOTS):
        path = runtime_dir / f"slot-{index}"
        try:
            path.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if os.path.islink(path) or os.lstat(path).st_uid != os.getuid():
            os.close(fd)
            continue
        return Slot(path, fd)
    raise NoFreeSlot(f"all {MAX_SLOTS} run slots in {runtime_dir} are busy")


def with_ancestors(paths: frozenset[Path]) -> frozenset[str]:
    """Every path in `paths` and every ancestor of one, as strings (for O(1) membership tests)."""
    out: set[str] = set()
    for path in paths:
        out.add(str(path))
        out.update(str(parent) for parent in path.parents)
    return frozenset(out)


def empty_upper(upper: Path, keep: frozenset[str], target: Path) -> None:
    """Remove everything in `upper` except directories that are kept mount points or lead to one
    (`keep`: host paths under `target` with their ancestors, see `with_ancestors`)."""
    try:
        entries = list(os.scandir(upper))
    except FileNotFoundError:
        upper.mkdir(parents=True, exist_ok=True)
        return
    for entry in entries:
        _prune(Path(entry.path), target / entry.name, keep)


def _prune(path: Path, host_path: Path, keep: frozenset[str]) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    is_dir = stat.S_ISDIR(st.st_mode)
    wanted = is_dir and str(host_path) in keep
    if not wanted:
        if is_dir:
            _force_rmtree(path)
        else:
            os.unlink(path)
        return
    for child in os.listdir(path):
        _prune(path / child, host_path / child, keep)
    for name in ("user.overlay.opaque", "trusted.overlay.opaque"):
        try:
            os.removexattr(path, name, follow_symlinks=False)
        except OSError:
            pass


def _force_rmtree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError:
        for dirpath, dirnames, _files in os.walk(path):
            for name in dirnames:
                try:
                    os.chmod(os.path.join(dirpath, name), 0o700, follow_symlinks=False)
                except OSError:
                    pass
        shutil.rmtree(path, ignore_errors=True)
