"""A size bound for a session's /tmp, which lives on disk (`sandbox.sessiontmp`) where no tmpfs size applies.

A thread samples the disk the directory is on (`statvfs`, cheap); once the disk's used space has grown
by a quarter of the bound since the last look, it walks the directory (fd-relative, never following a
link, a bounded number of entries) and, while the total is over the bound, truncates the largest
regular files to zero, largest first. Truncating frees the space even while a process still writes the
file (deleting would not), so a command or a background job that fills /tmp stays within the bound
plus what it writes between two samples, whatever it does. Each file cut is reported once (`notices`).
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from sandbox.layerfs import DIR_FLAGS

SAMPLE_INTERVAL_S = 0.2
MAX_ENTRIES = 200_000
MIB = 1024 * 1024


class TmpQuota:
    """Keeps `path` (a directory corral owns) under `limit_bytes`."""

    def __init__(self, path: Path, limit_bytes: int) -> None:
        self.path = path
        self.limit = limit_bytes
        self.notices: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._baseline = self._disk_used()
        self._thread = threading.Thread(target=self._loop, name="corral-tmp-quota", daemon=True)
        self._thread.start()

    def take_notices(self) -> list[str]:
        with self._lock:
            taken, self.notices = self.notices, []
        return taken

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _disk_used(self) -> int:
        try:
            info = os.statvfs(self.path)
        except OSError:
            return 0
        return (info.f_blocks - info.f_bfree) * info.f_frsize

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            used = self._disk_used()
            if used - self._baseline < self.limit // 4:
                continue
            try:
                self.enforce()
            except OSError:
                pass
            self._baseline = self._disk_used()

    def enforce(self) -> None:
        """Walk the directory and cut the largest files while it is over the bound."""
        files, total = _usage(self.path)
        if total <= self.limit:
            return
        for size, parts in sorted(files, reverse=True):
            if total <= self.limit:
                break
            if _truncate(self.path, parts):
                total -= size
                with self._lock:
                    self.notices.append(
                        f"corral: resource limit: the session's /tmp went over {self.limit // MIB} MiB; "
                        f"emptied /tmp/{'/'.join(parts)} ({size // MIB} MiB)"
                    )


def _usage(root: Path) -> tuple[list[tuple[int, tuple[str, ...]]], int]:
    """(size on disk, path parts) of every regular file below `root`, and their total."""
    files: list[tuple[int, tuple[str, ...]]] = []
    total = 0
    seen = 0
    try:
        top = os.open(root, DIR_FLAGS)
    except OSError:
        return [], 0
    stack: list[tuple[int, tuple[str, ...]]] = [(top, ())]
    while stack:
        fd, parts = stack.pop()
        try:
            names = os.listdir(fd)
        except OSError:
            names = []
        for name in names:
            seen += 1
            if seen > MAX_ENTRIES:
                break
            try:
                info = os.lstat(name, dir_fd=fd)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                used = info.st_blocks * 512
                files.append((used, (*parts, name)))
                total += used
            elif stat.S_ISDIR(info.st_mode) and len(stack) < 64:
                try:
                    stack.append((os.open(name, DIR_FLAGS, dir_fd=fd), (*parts, name)))
                except OSError:
                    continue
        os.close(fd)
    for fd, _ in stack:
        os.close(fd)
    return files, total


def _truncate(root: Path, parts: tuple[str, ...]) -> bool:
    """Truncate root/parts to zero, reached fd-relative with no link followed; False when it cannot."""
    try:
        fd = os.open(root, DIR_FLAGS)
    except OSError:
        return False
    try:
        for name in parts[:-1]:
            next_fd = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        target = os.open(parts[-1], os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        try:
            if stat.S_ISREG(os.fstat(target).st_mode):
                os.ftruncate(target, 0)
                return True
            return False
        finally:
            os.close(target)
    except OSError:
        return False
    finally:
        os.close(fd)
