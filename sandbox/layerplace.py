"""Where a command's capture layers live: on disk, on the workspace's filesystem when possible.

A capture layer's upper directory receives every byte a command writes. In a RAM-backed directory
(the usual `XDG_RUNTIME_DIR` is a tmpfs) a 500 MB write costs 500 MB of memory, and applying it is a
copy; on the workspace's own mount, applying a file is a rename of the inode the command wrote.

`capture_place(runtime_dir, workspace, captured)` picks, among the runtime directory,
`/var/tmp/corral-<uid>-<key>` (disk-backed by convention) and `/tmp/corral-<uid>-<key>` (both replaced
by a private tmpfs inside the sandbox, so no command ever sees them), in that order:
1. the first that is disk-backed and on the workspace's mount;
2. else the first that is disk-backed at all (applying is then a copy, but costs no RAM);
3. else the runtime directory as before, when nothing on disk can be had.
`<key>` is derived from the runtime directory, so two homes of one uid never share slots. A candidate
is used only when it is (or can be made) a directory owned by this uid, mode 0700, not a link, and
overlaps neither the workspace nor a captured directory (`captured`: an overlay's upper layer cannot
live inside what it captures; as root /var is one); anything else (another user planted it first) is
skipped, never loosened.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from sandbox.mounts import _unescape_mountinfo

RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
VAR_TMP = Path("/var/tmp")
TMP = Path("/tmp")


MountTable = list[tuple[str, int, str]]
"""(mount point, mount id, filesystem type), in the order of /proc/self/mountinfo."""


def read_mount_table() -> MountTable | None:
    """This process's mount table; None when it cannot be read."""
    table: MountTable = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                fields = line.split(" ")
                try:
                    separator = fields.index("-")
                except ValueError:
                    continue
                table.append((_unescape_mountinfo(fields[4]), int(fields[0]), fields[separator + 1]))
    except (OSError, ValueError, IndexError):
        return None
    return table


def mount_of(path: Path, table: MountTable | None = None) -> tuple[int, str] | None:
    """(mount id, filesystem type) of the mount holding `path` (its nearest existing ancestor), from
    this process's mount table; None when the table cannot be read."""
    table = read_mount_table() if table is None else table
    if table is None:
        return None
    current = Path(os.path.abspath(path))
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    target = os.path.realpath(current)
    best: tuple[int, int, str] | None = None  # (length of the mount point, mount id, type)
    for point, mount_id, kind in table:
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):  # later mounts stack on top
            best = (len(point), mount_id, kind)
    return None if best is None else (best[1], best[2])


def is_ram_backed(path: Path, table: MountTable | None = None) -> bool:
    """Whether `path` lives on a tmpfs or ramfs (unknown counts as RAM-backed: never assumed on disk)."""
    found = mount_of(path, table)
    return found is None or found[1] in RAM_FILESYSTEMS


def var_tmp_place(runtime_dir: Path, base: Path = VAR_TMP) -> Path:
    """The disk-backed alternative to `runtime_dir` in `base`, keyed by uid and runtime directory."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(runtime_dir))).hexdigest()[:12]
    return base / f"corral-{os.getuid()}-{key}"


def capture_place(runtime_dir: Path, workspace: Path, captured: Sequence[Path] = ()) -> Path:
    """The directory for capture slots: see the module docstring for the order."""
    candidates = [
        runtime_dir,
        *(var_tmp_place(runtime_dir, base) for base in (VAR_TMP, TMP) if base.is_dir()),
    ]
    table = read_mount_table()
    if table is None:
        return runtime_dir
    workspace_mount = mount_of(workspace, table)
    avoid = (workspace, *captured)
    on_disk = [
        c
        for c in candidates
        if not any(_overlaps(c, other) for other in avoid) and not is_ram_backed(c, table)
    ]
    same_mount = [
        c for c in on_disk if workspace_mount is not None and _mount_id(c, table) == workspace_mount[0]
    ]
    for candidate in (*same_mount, *on_disk):
        if _private_dir(candidate):
            return candidate
    return runtime_dir


def _mount_id(path: Path, table: MountTable) -> int | None:
    found = mount_of(path, table)
    return None if found is None else found[0]


def _overlaps(one: Path, other: Path) -> bool:
    a, b = os.path.abspath(one), os.path.abspath(other)
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def _private_dir(path: Path) -> bool:
    """Whether `path` is (after creating it if missing) a 0700 directory of this uid, not a link."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )
