"""The /tmp a session's commands share: a private directory of corral's on disk, never the host's /tmp.

Each live session (`corral shell`, `corral session`, the broker) gets `<cache>/sessions/live-…/tmp`
(the parent 0700 and owned by corral's user, `tmp` itself 1777 as programs expect of a /tmp), bound at
/tmp in every sandbox of the session, so a file one command writes there is there for the next. It is
held by an exclusive lock for as long as the session runs and removed by `close()` when it ends; one
left behind by a session that died is removed by the next `sweep`. Its size is bounded by
`sandbox.tmpquota`.

What is in it was written by sandboxed commands, so it is removed fd-relative, never following a link
(`sandbox.layerfs.remove_entry`).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
from pathlib import Path

from sandbox.layerfs import open_root, remove_entry

_LOCK = "lock"


class SessionTmp:
    """One session's /tmp on the host (`path`), held while it is in use."""

    def __init__(self, root: Path, lock_fd: int) -> None:
        self.root = root
        self.path = root / "tmp"
        self._lock_fd = lock_fd

    @classmethod
    def live(cls, base: Path) -> SessionTmp:
        """A new /tmp for a live session, removed by `close()`."""
        sessions = _sessions_dir(base)
        root = sessions / f"live-{os.getpid()}-{secrets.token_hex(6)}"
        root.mkdir(mode=0o700)
        lock = _open_lock(root)
        fcntl.flock(lock, fcntl.LOCK_EX)
        _make_tmp(root)
        return cls(root, lock)

    def close(self) -> None:
        """Remove it (the session ended)."""
        if self._lock_fd < 0:
            return
        try:
            _remove_root(self.root)
        except OSError:
            pass
        finally:
            os.close(self._lock_fd)
            self._lock_fd = -1


def sweep(base: Path) -> None:
    """Remove the /tmp of sessions that are gone (their lock is free)."""
    sessions = base / "sessions"
    try:
        names = os.listdir(sessions)
    except OSError:
        return
    for name in names:
        root = sessions / name
        if not name.startswith("live-"):
            continue
        try:
            lock = os.open(root / _LOCK, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        try:
            _remove_root(root)
        except OSError:
            pass
        finally:
            os.close(lock)


def _sessions_dir(base: Path) -> Path:
    sessions = base / "sessions"
    sessions.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_own_dir(sessions)
    return sessions


def _check_own_dir(path: Path) -> None:
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise OSError(f"{path} is not a directory owned by you")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def _open_lock(root: Path) -> int:
    return os.open(root / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def _make_tmp(root: Path) -> None:
    tmp = root / "tmp"
    try:
        tmp.mkdir()
    except FileExistsError:
        pass
    info = os.lstat(tmp)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{tmp} is not a directory")
    if stat.S_IMODE(info.st_mode) != 0o1777:
        os.chmod(tmp, 0o1777)  # noqa: S103 - a /tmp, inside a 0700 directory of corral's


def _remove_root(root: Path) -> None:
    parent = open_root(root.parent)
    try:
        remove_entry(parent, root.name)
    finally:
        os.close(parent)
