"""Reusable run directories ("slots"), so a command pays no mkdir/rmdir for its capture layers.

A slot is a directory in corral's private runtime directory holding one upper and work directory per
capture layer and the decoys. One command holds a slot (an flock) from start until its captured changes
are applied or discarded; then the upper layers are emptied and the slot is free for the next command,
in this process or another. A slot left dirty by a crash is emptied before it is used again.
Mount points that bwrap creates inside an upper layer for nested mounts are kept: they are empty, and
recreating them every time would be the cost this module exists to avoid.

A slot's layers were shaped by a sandboxed command, so they are emptied fd-relative and iteratively
(`sandbox.layerfs`), never following a link. A slot that cannot be emptied is discarded: renamed aside
under the runtime directory (`discarded-*`, removed on a best-effort basis later) while its lock is
held, and never handed out again; a new slot takes its index. After taking a slot's lock, the lock file
is checked to still be the one at the slot's path, so a lock taken on a slot just discarded is never used.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from sandbox.layerfs import LayerRefused, open_root, open_subdir, remove_entry

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

    def discard(self) -> None:
        """Rename this slot aside (it could not be emptied) so that no later command gets it, then
        release it. The discarded directory is removed, as far as possible, by `sweep_discarded`."""
        try:
            if self.lock_fd >= 0:
                os.rename(
                    self.path, self.path.with_name(f"discarded-{self.path.name}-{secrets.token_hex(6)}")
                )
        finally:
            self.release()


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
        if not _is_current_lock(path, fd):
            os.close(fd)  # the slot was discarded (renamed aside) between our open and our lock
            continue
        return Slot(path, fd)
    raise NoFreeSlot(f"all {MAX_SLOTS} run slots in {runtime_dir} are busy")


def _is_current_lock(path: Path, fd: int) -> bool:
    try:
        slot_st = os.lstat(path)
        lock_st = os.lstat(path / "lock")
    except OSError:
        return False
    held = os.fstat(fd)
    return (
        stat.S_ISDIR(slot_st.st_mode)
        and slot_st.st_uid == os.getuid()
        and (lock_st.st_dev, lock_st.st_ino) == (held.st_dev, held.st_ino)
    )


def sweep_discarded(runtime_dir: Path) -> None:
    """Best-effort removal of slots discarded earlier (nothing uses them any more)."""
    try:
        names = [n for n in os.listdir(runtime_dir) if n.startswith("discarded-")]
    except OSError:
        return
    if not names:
        return
    try:
        fd = open_root(runtime_dir)
    except OSError:
        return
    try:
        for name in names:
            try:
                remove_entry(fd, name)
            except OSError:
                pass
    finally:
        os.close(fd)


def with_ancestors(paths: frozenset[Path]) -> frozenset[str]:
    """Every path in `paths` and every ancestor of one, as strings (for O(1) membership tests)."""
    out: set[str] = set()
    for path in paths:
        if not path.is_absolute():
            out.add(str(path))
            out.update(str(parent) for parent in path.parents)
            continue
        text = str(path)
        while text not in out:  # an ancestor already in the set brought all of its own
            out.add(text)
            parent = os.path.dirname(text)
            if parent == text:
                break
            text = parent
    return frozenset(out)


def empty_upper(upper: Path, keep: frozenset[str], target: Path) -> None:
    """Remove everything in `upper` except directories that are kept mount points or lead to one
    (`keep`: host paths under `target` with their ancestors, see `with_ancestors`). fd-relative from
    `upper`, never following a link; raises OSError when something could not be removed."""
    try:
        root = open_root(upper)
    except FileNotFoundError:
        upper.mkdir(parents=True, exist_ok=True)
        return
    # (fd, host path) of kept directories still to empty; bounded by how deep corral's own mounts are.
    stack: list[tuple[int, Path]] = [(root, target)]
    try:
        while stack:
            fd, host_path = stack.pop()
            try:
                _clear_opaque(fd)
                for name in os.listdir(fd):
                    st = os.lstat(name, dir_fd=fd)
                    child = host_path / name
                    if stat.S_ISDIR(st.st_mode) and str(child) in keep:
                        if len(stack) > 256:
                            raise LayerRefused(0, f"{upper}: kept directories nested too deep")
                        stack.append((open_subdir(fd, name, expect=(st.st_dev, st.st_ino)), child))
                    else:
                        remove_entry(fd, name)
            finally:
                os.close(fd)
    finally:
        for fd, _path in stack:
            os.close(fd)


def clear_dir(parent: Path, name: str) -> Path:
    """`parent/name` as a new empty directory (whatever was there removed fd-relative first)."""
    fd = open_root(parent)
    try:
        remove_entry(fd, name)
        os.mkdir(name, 0o700, dir_fd=fd)
    finally:
        os.close(fd)
    return parent / name


def _clear_opaque(fd: int) -> None:
    for name in ("user.overlay.opaque", "trusted.overlay.opaque"):
        try:
            os.removexattr(fd, name)
        except OSError:
            pass
