"""The /tmp a session's commands share: a private directory of corral's on disk, never the host's /tmp.

Each session gets `<cache>/sessions/<name>/tmp` (the parent 0700 and owned by corral's user, `tmp`
itself 1777 as programs expect of a /tmp), bound at /tmp in every sandbox of the session, so a file one
command writes there is there for the next. Its size is bounded by `sandbox.tmpquota`. Two kinds:

- a live session (`corral shell`, `corral session`, the broker): `live(...)`, held by an exclusive lock
  for as long as the session runs and removed by `close()` when it ends; one left behind by a session
  that died is removed by the next `sweep`;
- one project's consecutive standalone `corral run`s (no live session): `standalone(...)`, one per
  workspace, shared by those runs (each holds a shared lock while it runs) and emptied before a run
  when the previous one ended more than `STANDALONE_IDLE_S` ago; `sweep` removes idle ones of other
  projects.

What is in it was written by sandboxed commands, so it is removed fd-relative, never following a link
(`sandbox.layerfs.remove_entry`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import stat
import time
from pathlib import Path

from sandbox.layerfs import open_root, remove_entry

STANDALONE_IDLE_S = 30 * 60
"""A standalone /tmp is emptied when no `corral run` of its project used it for this long."""

_LOCK = "lock"
_STAMP = "last-used"
_ATTEMPTS = 3


class SessionTmp:
    """One session's /tmp on the host (`path`), held while it is in use."""

    def __init__(self, root: Path, lock_fd: int, *, live: bool = True) -> None:
        self.root = root
        self.path = root / "tmp"
        self._lock_fd = lock_fd
        self._live = live

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

    @classmethod
    def standalone(cls, base: Path, workspace: Path, idle_s: float = STANDALONE_IDLE_S) -> SessionTmp:
        """The /tmp of `workspace`'s standalone runs, emptied first when it has been idle `idle_s`.
        Raises OSError when it cannot be made (never falls back to anything shared)."""
        sessions = _sessions_dir(base)
        root = sessions / f"project-{hashlib.sha256(os.fsencode(workspace)).hexdigest()[:16]}"
        for _ in range(_ATTEMPTS):
            try:
                root.mkdir(mode=0o700)
            except FileExistsError:
                _check_own_dir(root)
            lock = _open_lock(root)
            try:
                if _idle_for(root) > idle_s:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        _empty(root, "tmp")  # nobody is using it: this run starts with an empty /tmp
                    except BlockingIOError:
                        pass  # another run of the project is using it: the session goes on
                fcntl.flock(lock, fcntl.LOCK_SH)
                if not _is_lock_of(lock, root):
                    os.close(lock)  # a sweep removed the directory meanwhile: make it again
                    continue
                _make_tmp(root)
                (root / _STAMP).touch()
            except BaseException:
                os.close(lock)
                raise
            return cls(root, lock, live=False)
        raise OSError(f"{root} was removed while it was being made")

    def close(self) -> None:
        """Release it: a live session's /tmp is removed; a standalone one is kept for the project's
        next run (its idle clock starts now)."""
        if self._lock_fd < 0:
            return
        try:
            if self._live:
                _remove_root(self.root)
            else:
                (self.root / _STAMP).touch()
        except OSError:
            pass
        finally:
            os.close(self._lock_fd)
            self._lock_fd = -1


def sweep(base: Path, idle_s: float = STANDALONE_IDLE_S) -> None:
    """Remove the /tmp of live sessions that are gone (their lock is free) and of projects whose
    standalone runs have not used theirs for `idle_s` (and none is running)."""
    sessions = base / "sessions"
    try:
        names = os.listdir(sessions)
    except OSError:
        return
    for name in names:
        root = sessions / name
        if not name.startswith(("live-", "project-")):
            continue
        if name.startswith("project-") and _idle_for(root) <= idle_s:
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


def _idle_for(root: Path) -> float:
    """Seconds since a standalone run last used `root` (0 when it never finished making it)."""
    try:
        return time.time() - os.lstat(root / _STAMP).st_mtime
    except OSError:
        return 0.0


def _is_lock_of(lock: int, root: Path) -> bool:
    """Whether `lock` is still the lock file inside `root` (no sweep removed the directory)."""
    try:
        here = os.lstat(root / _LOCK)
    except OSError:
        return False
    held = os.fstat(lock)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def _empty(root: Path, name: str) -> None:
    fd = open_root(root)
    try:
        remove_entry(fd, name)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _remove_root(root: Path) -> None:
    parent = open_root(root.parent)
    try:
        remove_entry(parent, root.name)
    finally:
        os.close(parent)
