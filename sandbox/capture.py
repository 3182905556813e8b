"""Read a command's captured writes out of an overlay upper directory.

Each capture mount is an overlayfs whose lower layer is the host directory and whose upper layer is a
per-command directory. When the command has ended, the upper layer holds exactly what it changed:
new and modified files, new directories, symlinks, whiteouts (deletions: character devices 0:0) and
opaque directories (a directory removed and recreated: `*.overlay.opaque` = `y`). Paths in the upper
layer are real paths, so symlink tricks inside the sandbox cannot disguise where a write landed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from boundary.violations import Change, ChangeOp

_OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque")


@dataclass(frozen=True, slots=True)
class CaptureLayer:
    """One overlay mount: `target` is where it is mounted (the host path it shadows), `lower` the host
    directory read through, `upper` the per-command directory that received the writes."""

    target: Path
    lower: Path
    upper: Path


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _same_content(a: Path, b: Path, size: int) -> bool:
    if size > 8 * 1024 * 1024:
        return False
    try:
        with open(a, "rb", opener=_nofollow) as fa, open(b, "rb", opener=_nofollow) as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def read_changes(layer: CaptureLayer, ignore_dirs: frozenset[str] = frozenset()) -> list[Change]:
    """Every change in `layer`, parents before children, deletions before re-creations.

    `ignore_dirs` are mount points corral itself created inside this layer (for nested mounts) and their
    ancestors, as strings; a new directory there is not a change the command made.
    """
    changes: list[Change] = []
    if _lstat(layer.upper) is None:
        return changes
    changes.extend(_walk(layer, Path(), lower_present=True, ignore_dirs=ignore_dirs))
    return changes


def _walk(
    layer: CaptureLayer, relative: Path, *, lower_present: bool, ignore_dirs: frozenset[str]
) -> Iterator[Change]:
    upper_dir = layer.upper / relative
    try:
        entries = sorted(os.scandir(upper_dir), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        rel = relative / entry.name
        upper_path = layer.upper / rel
        target = layer.target / rel
        st = entry.stat(follow_symlinks=False)
        lower_st = _lstat(layer.lower / rel) if lower_present else None
        if is_whiteout(st):
            if lower_st is not None:
                yield Change(target, ChangeOp.DELETE)
            continue
        lower_is_dir = lower_st is not None and stat.S_ISDIR(lower_st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if lower_st is not None and not lower_is_dir:
                yield Change(target, ChangeOp.DELETE)
                lower_st = None
            opaque = lower_is_dir and is_opaque(upper_path)
            if opaque:
                yield from _deleted_children(layer, rel, upper_path)
            if str(target) in ignore_dirs:
                pass  # a mount point corral made (or a directory on the way to one), whatever its mode
            elif lower_st is None:
                yield Change(target, ChangeOp.MKDIR, source=upper_path, mode=stat.S_IMODE(st.st_mode))
            elif stat.S_IMODE(st.st_mode) != stat.S_IMODE(lower_st.st_mode):
                yield Change(target, ChangeOp.CHMOD, source=upper_path, mode=stat.S_IMODE(st.st_mode))
            yield from _walk(
                layer, rel, lower_present=lower_st is not None and not opaque, ignore_dirs=ignore_dirs
            )
            continue
        if lower_is_dir:
            yield Change(target, ChangeOp.DELETE)
            lower_st = None
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            yield Change(target, ChangeOp.SYMLINK, source=upper_path, link_target=os.readlink(upper_path))
        elif stat.S_ISREG(st.st_mode):
            if lower_st is None or not stat.S_ISREG(lower_st.st_mode):
                yield Change(target, ChangeOp.CREATE, source=upper_path, size=st.st_size, mode=mode)
            elif lower_st.st_size != st.st_size or not _same_content(
                upper_path, layer.lower / rel, st.st_size
            ):
                yield Change(target, ChangeOp.MODIFY, source=upper_path, size=st.st_size, mode=mode)
            elif stat.S_IMODE(lower_st.st_mode) != mode:
                yield Change(target, ChangeOp.CHMOD, source=upper_path, mode=mode)
        else:
            # FIFOs, sockets, device nodes: reported so the decision sees them; never applied.
            yield Change(target, ChangeOp.CREATE, source=upper_path, mode=st.st_mode)


def _deleted_children(layer: CaptureLayer, rel: Path, upper_path: Path) -> Iterator[Change]:
    try:
        lower_names = sorted(os.listdir(layer.lower / rel))
    except OSError:
        return
    for name in lower_names:
        if _lstat(upper_path / name) is None:
            yield Change(layer.target / rel / name, ChangeOp.DELETE)
