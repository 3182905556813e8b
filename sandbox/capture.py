"""Read a command's captured writes out of an overlay upper directory.

Each capture mount is an overlayfs whose lower layer is the host directory and whose upper layer is a
per-command directory. When the command has ended, the upper layer holds exactly what it changed:
new and modified files, new directories, symlinks, whiteouts (deletions: character devices 0:0) and
opaque directories (a directory removed and recreated: `*.overlay.opaque` = `y`). Paths in the upper
layer are real paths, so symlink tricks inside the sandbox cannot disguise where a write landed.

The upper layer was shaped by the command, so it is read as hostile (`sandbox.layerfs`): every directory
is opened fd-relative from the layer's root with no symlink followed and checked against the inode its
parent's listing showed; the walk is iterative and refuses (`LayerRefused`) a tree deeper than
`layerfs.MAX_DEPTH` as a whole. Each `Change` records the inode it was made from (`source_id`) and the
host entry it replaces (`host_id`), so applying it later can check both are still what the scan saw.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from boundary.violations import Change, ChangeOp
from sandbox.layerfs import (
    DIR_FLAGS,
    FILE_FLAGS,
    MAX_DEPTH,
    LayerRefused,
    identity,
    open_beneath,
    open_root,
    open_subdir,
)

_OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque")
_COMPARE_LIMIT = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CaptureLayer:
    """One overlay mount: `target` is where it is mounted (the host path it shadows), `lower` the host
    directory read through, `upper` the per-command directory that received the writes."""

    target: Path
    lower: Path
    upper: Path


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(fd: int) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(fd, name) == b"y":
                return True
        except OSError:
            continue
    return False


def host_identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class _Item:
    changes: tuple[Change, ...]
    child: _Dir | None


@dataclass(frozen=True, slots=True)
class _Dir:
    """A directory of the upper layer still to be read, with the inodes its parent's listing showed."""

    rel: tuple[str, ...]
    upper_id: tuple[int, int]
    lower_id: tuple[int, int] | None


def read_changes(layer: CaptureLayer, ignore_dirs: frozenset[str] = frozenset()) -> list[Change]:
    """Every change in `layer`, parents before children, deletions before re-creations.

    `ignore_dirs` are mount points corral itself created inside this layer (for nested mounts) and their
    ancestors, as strings; a new directory there is not a change the command made. Raises LayerRefused
    for a tree deeper than MAX_DEPTH or an entry that changed while it was read.
    """
    try:
        upper_fd = open_root(layer.upper)
    except FileNotFoundError:
        return []
    try:
        lower_fd: int | None = open_root(layer.lower)
    except OSError as error:
        os.close(upper_fd)
        # Without the host side, deletions and modifications cannot be told apart from creations.
        raise LayerRefused(
            error.errno or errno.EIO, f"{layer.lower}: cannot be read: {error.strerror}"
        ) from error
    try:
        return _Scan(layer, upper_fd, lower_fd, ignore_dirs).run()
    finally:
        os.close(upper_fd)
        if lower_fd is not None:
            os.close(lower_fd)


class _Scan:
    def __init__(
        self, layer: CaptureLayer, upper_fd: int, lower_fd: int | None, ignore_dirs: frozenset[str]
    ) -> None:
        self.layer = layer
        self.upper_fd = upper_fd
        self.lower_fd = lower_fd
        self.ignore_dirs = ignore_dirs

    def run(self) -> list[Change]:
        changes: list[Change] = []
        root_st = os.fstat(self.upper_fd)
        lower_id = identity(os.fstat(self.lower_fd)) if self.lower_fd is not None else None
        stack: list[Iterator[_Item]] = [iter(self._read_dir(_Dir((), identity(root_st), lower_id)))]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            changes.extend(item.changes)
            if item.child is not None:
                if len(stack) >= MAX_DEPTH:
                    raise LayerRefused(
                        errno.ELOOP,
                        f"{self.layer.target.joinpath(*item.child.rel[:8])}/…: directories nested deeper "
                        f"than {MAX_DEPTH} levels; nothing of {self.layer.target} was applied",
                    )
                stack.append(iter(self._read_dir(item.child)))
        return changes

    def _open_upper(self, directory: _Dir) -> int:
        if not directory.rel:
            return os.dup(self.upper_fd)
        parent = open_beneath(self.upper_fd, directory.rel[:-1], os.O_PATH | os.O_DIRECTORY)
        try:
            return open_subdir(parent, directory.rel[-1], expect=directory.upper_id)
        finally:
            os.close(parent)

    def _open_lower(self, rel: tuple[str, ...], expect: tuple[int, int] | None) -> int | None:
        if expect is None or self.lower_fd is None:
            return None
        try:
            fd = open_beneath(self.lower_fd, rel, DIR_FLAGS, same_fs=False) if rel else os.dup(self.lower_fd)
        except OSError:
            return None
        if identity(os.fstat(fd)) != expect:
            os.close(fd)
            return None  # the host changed it since: applying checks the host entry again
        return fd

    def _read_dir(self, directory: _Dir) -> list[_Item]:
        """The items of one directory, computed while its fds are open (closed before descending)."""
        upper = self._open_upper(directory)
        lower = self._open_lower(directory.rel, directory.lower_id)
        places = (self.layer.target.joinpath(*directory.rel), self.layer.upper.joinpath(*directory.rel))
        try:
            return [
                self._entry(upper, lower, directory.rel, places, name) for name in sorted(os.listdir(upper))
            ]
        finally:
            os.close(upper)
            if lower is not None:
                os.close(lower)

    def _entry(
        self, upper: int, lower: int | None, rel: tuple[str, ...], places: tuple[Path, Path], name: str
    ) -> _Item:
        """`places`: the host directory and the upper-layer directory this entry is in."""
        layer = self.layer
        child_rel = (*rel, name)
        target = places[0] / name
        source = places[1] / name
        st = os.lstat(name, dir_fd=upper)
        lower_st = _lstat(lower, name)
        host = host_identity(lower_st) if lower_st is not None else None
        out: list[Change] = []

        def change(op: ChangeOp, *, size: int = 0, mode: int = 0, link_target: str | None = None) -> Change:
            return Change(
                target,
                op,
                source=source,
                size=size,
                mode=mode,
                link_target=link_target,
                source_root=layer.upper,
                source_id=identity(st),
                host_id=host,
            )

        if is_whiteout(st):
            if lower_st is not None:
                out.append(Change(target, ChangeOp.DELETE, host_id=host))
            return _Item(tuple(out), None)
        lower_is_dir = lower_st is not None and stat.S_ISDIR(lower_st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if lower_st is not None and not lower_is_dir:
                out.append(Change(target, ChangeOp.DELETE, host_id=host))
                lower_st, host = None, None
            dir_fd = open_subdir(upper, name, expect=identity(st))
            try:
                opaque = lower_is_dir and _opaque(dir_fd)
                if opaque:
                    out.extend(self._deleted_children(lower, name, dir_fd, target))
            finally:
                os.close(dir_fd)
            mode = stat.S_IMODE(st.st_mode)
            if str(target) in self.ignore_dirs:
                pass  # a mount point corral made (or a directory on the way to one), whatever its mode
            elif lower_st is None:
                out.append(change(ChangeOp.MKDIR, mode=mode))
            elif mode != stat.S_IMODE(lower_st.st_mode):
                out.append(change(ChangeOp.CHMOD, mode=mode))
            lower_id = identity(lower_st) if lower_st is not None and not opaque else None
            return _Item(tuple(out), _Dir(child_rel, identity(st), lower_id))
        if lower_is_dir:
            out.append(Change(target, ChangeOp.DELETE, host_id=host))
            lower_st, host = None, None
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            out.append(change(ChangeOp.SYMLINK, link_target=os.readlink(name, dir_fd=upper)))
        elif stat.S_ISREG(st.st_mode):
            if lower_st is None or not stat.S_ISREG(lower_st.st_mode):
                out.append(change(ChangeOp.CREATE, size=st.st_size, mode=mode))
            elif lower_st.st_size != st.st_size or not _same_content(upper, lower, name, st.st_size):
                out.append(change(ChangeOp.MODIFY, size=st.st_size, mode=mode))
            elif stat.S_IMODE(lower_st.st_mode) != mode:
                out.append(change(ChangeOp.CHMOD, mode=mode))
        else:
            # FIFOs, sockets, device nodes: reported so the decision sees them; never applied.
            out.append(change(ChangeOp.CREATE, mode=st.st_mode))
        return _Item(tuple(out), None)

    def _deleted_children(self, lower: int | None, name: str, upper_dir: int, target: Path) -> list[Change]:
        """Lower entries an opaque directory hides: the command deleted them."""
        if lower is None:
            return []
        try:
            lower_dir = os.open(name, DIR_FLAGS, dir_fd=lower)
        except OSError:
            return []
        try:
            out: list[Change] = []
            for child in sorted(os.listdir(lower_dir)):
                if _lstat(upper_dir, child) is None:
                    child_st = _lstat(lower_dir, child)
                    host = host_identity(child_st) if child_st is not None else None
                    out.append(Change(target / child, ChangeOp.DELETE, host_id=host))
            return out
        finally:
            os.close(lower_dir)


def _lstat(dir_fd: int | None, name: str) -> os.stat_result | None:
    if dir_fd is None:
        return None
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return None


def _same_content(upper: int, lower: int | None, name: str, size: int) -> bool:
    if size > _COMPARE_LIMIT or lower is None:
        return False
    try:
        a = os.open(name, FILE_FLAGS, dir_fd=upper)
    except OSError:
        return False
    try:
        b = os.open(name, FILE_FLAGS, dir_fd=lower)
    except OSError:
        os.close(a)
        return False
    try:
        if not (stat.S_ISREG(os.fstat(a).st_mode) and stat.S_ISREG(os.fstat(b).st_mode)):
            return False
        return _read_all(a, size) == _read_all(b, size)
    finally:
        os.close(a)
        os.close(b)


def _read_all(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size + 1
    while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
