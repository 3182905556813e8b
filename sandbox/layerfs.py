"""fd-relative access to directory trees a sandboxed command could have shaped (capture layers, slots).

Every name a sandboxed command created is hostile: a directory may be swapped for a symlink, a tree may be
thousands of levels deep, a directory may be mode 000. The rules here, for every reader of a layer:
- a path below a layer's root is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
  RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` from an fd of that root (component by component with
  `O_NOFOLLOW` where the kernel lacks openat2), so no symlink is ever followed and nothing outside the root
  is ever reached, whatever was renamed in the meantime;
- what was opened is checked against the inode (`st_dev`, `st_ino`) the scan saw (`expect`);
- walks are iterative and hold a bounded number of descriptors; a tree deeper than `MAX_DEPTH` is one
  `LayerRefused`, never a RecursionError;
- removal (`remove_entry`) never follows a link and never opens more than `_MAX_OPEN` directories: deeper
  subtrees are first renamed up (through directory fds) to the directory the removal started from.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import stat
from collections.abc import Sequence

MAX_DEPTH = 256
"""The deepest directory level corral reads in a layer; deeper trees are refused as a whole."""

_MAX_OPEN = 64
_CHUNK = 2048  # bytes of path handed to one openat2 call (PATH_MAX is 4096)

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
_SAFE_RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
_SYS_OPENAT2 = 437  # the same number on every architecture (added after the syscall table unification)

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class LayerRefused(OSError):
    """A layer (or part of one) that corral will not read or apply: too deep, swapped, not ours."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_openat2_works: list[bool] = [True]


def _openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int:
    how = _OpenHow(flags, 0, resolve)
    fd = int(_libc.syscall(_SYS_OPENAT2, dir_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how)))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return fd


def open_beneath(root_fd: int, parts: Sequence[str], flags: int, *, same_fs: bool = True) -> int:
    """Open `parts` (names, no `.`/`..`/slashes) below the directory `root_fd` without following any
    symlink, the last component included. Raises OSError (ELOOP for a symlink on the way)."""
    for name in parts:
        if name in ("", ".", "..") or "/" in name:
            raise LayerRefused(errno.EINVAL, f"refusing the path component {name!r}")
    if not parts:
        return os.open(".", flags | os.O_NOFOLLOW, dir_fd=root_fd)
    resolve = _SAFE_RESOLVE | (RESOLVE_NO_XDEV if same_fs else 0)
    fd = os.dup(root_fd)
    try:
        start = 0
        while start < len(parts):
            end, size = start, 0
            while end < len(parts) and (end == start or size + len(parts[end]) + 1 < _CHUNK):
                size += len(parts[end]) + 1
                end += 1
            last = end == len(parts)
            step_flags = flags if last else (os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            next_fd = _open_steps(fd, parts[start:end], step_flags | os.O_NOFOLLOW, resolve)
            os.close(fd)
            fd = next_fd
            start = end
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_steps(dir_fd: int, parts: Sequence[str], flags: int, resolve: int) -> int:
    if _openat2_works[0]:
        try:
            return _openat2(dir_fd, "/".join(parts), flags, resolve)
        except OSError as error:
            if error.errno not in (errno.ENOSYS, errno.EPERM):
                raise
            _openat2_works[0] = False  # an old kernel or a seccomp filter without openat2
    fd = os.dup(dir_fd)
    try:
        for index, name in enumerate(parts):
            last = index == len(parts) - 1
            next_fd = os.open(name, flags if last else (PATH_FLAGS | os.O_DIRECTORY), dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


_RENAME_NOREPLACE = 1
_renameat2_works: list[bool] = [True]


def rename_noreplace(src_dir: int, src: str, dst_dir: int, dst: str) -> bool:
    """`renameat2(..., RENAME_NOREPLACE)`: move `src` to `dst` only if nothing is at `dst` (FileExistsError
    otherwise), atomically. False when the kernel or filesystem cannot do it (the caller falls back)."""
    if not _renameat2_works[0]:
        return False
    done = int(_libc.renameat2(src_dir, os.fsencode(src), dst_dir, os.fsencode(dst), _RENAME_NOREPLACE))
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.ENOSYS:
        _renameat2_works[0] = False  # a kernel without renameat2
        return False
    if code == errno.EINVAL:
        return False  # this filesystem has no RENAME_NOREPLACE
    raise OSError(code, os.strerror(code), dst)


def identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def check_identity(fd: int, expect: tuple[int, int] | None, what: str) -> os.stat_result:
    """fstat `fd` and refuse it unless it is the inode the scan saw."""
    st = os.fstat(fd)
    if expect is not None and identity(st) != expect:
        raise LayerRefused(errno.ESTALE, f"{what} changed after it was scanned")
    return st


def open_root(path: os.PathLike[str] | str) -> int:
    """An fd of a directory corral owns (a layer's upper root, a slot), reached with no symlink; one the
    command left mode 000 (an overlay root's mode is the upper root's) is given back to its owner."""
    try:
        return _open_root(path)
    except PermissionError:
        parent, name = os.path.split(os.path.abspath(path))
        parent_fd = _open_root(parent)
        try:
            make_accessible(parent_fd, name)
        finally:
            os.close(parent_fd)
        return _open_root(path)


def _open_root(path: os.PathLike[str] | str) -> int:
    try:
        return _openat2(-100, os.fspath(path), DIR_FLAGS, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    except OSError as error:
        if error.errno not in (errno.ENOSYS, errno.EPERM) or not os.path.isabs(path):
            raise
    parts = [p for p in os.fspath(path).split("/") if p]
    root = os.open("/", DIR_FLAGS)
    try:
        return open_beneath(root, parts, DIR_FLAGS, same_fs=False)
    finally:
        os.close(root)


def open_subdir(dir_fd: int, name: str, *, expect: tuple[int, int] | None = None) -> int:
    """Open the directory `name` in `dir_fd` (never a symlink), making it readable and writable by its
    owner first when the command left it mode 000; checked against `expect` when given."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        make_accessible(dir_fd, name)
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        st = check_identity(fd, expect, name)
        if stat.S_IMODE(st.st_mode) & 0o700 != 0o700 and st.st_uid == os.geteuid():
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)
        return fd
    except BaseException:
        os.close(fd)
        raise


def make_accessible(dir_fd: int, name: str) -> None:
    """Give the owner rwx on the directory `name` (an entry of `dir_fd`), through an O_PATH fd, so the
    change lands on that very inode and never on a symlink's target."""
    path_fd = os.open(name, PATH_FLAGS | os.O_DIRECTORY, dir_fd=dir_fd)
    try:
        st = os.fstat(path_fd)
        if st.st_uid != os.geteuid() and os.geteuid() != 0:
            raise LayerRefused(errno.EPERM, f"{name} is not owned by this user")
        os.chmod(f"/proc/self/fd/{path_fd}", stat.S_IMODE(st.st_mode) | 0o700)
    finally:
        os.close(path_fd)


def remove_entry(parent_fd: int, name: str) -> None:
    """Remove `name` from `parent_fd`, a whole directory tree included, without following any link and
    with a bounded number of open descriptors. Missing: nothing to do. Raises OSError when something
    could not be removed (the caller discards what it cannot clean)."""
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=parent_fd)
        return
    pending = [name]
    while pending:
        _remove_dir(parent_fd, pending.pop(), pending)


def _remove_dir(top_fd: int, top_name: str, pending: list[str]) -> None:
    """Remove one directory tree; subtrees deeper than `_MAX_OPEN` are renamed into `top_fd` under a
    fresh name and appended to `pending` instead of being descended into."""
    stack: list[tuple[int, str, int, list[str]]] = []  # (parent fd, name, own fd, sub-directories left)

    def push(parent: int, name: str) -> None:
        fd = open_subdir(parent, name)
        subdirs: list[str] = []
        try:
            for child in os.listdir(fd):
                child_st = os.lstat(child, dir_fd=fd)
                if stat.S_ISDIR(child_st.st_mode):
                    subdirs.append(child)
                else:
                    os.unlink(child, dir_fd=fd)
        except BaseException:
            os.close(fd)
            raise
        stack.append((parent, name, fd, subdirs))

    try:
        push(top_fd, top_name)
        while stack:
            parent, name, fd, subdirs = stack[-1]
            if subdirs:
                child = subdirs.pop()
                if len(stack) >= _MAX_OPEN:
                    moved = f".corral-deep-{secrets.token_hex(8)}"
                    os.rename(child, moved, src_dir_fd=fd, dst_dir_fd=top_fd)
                    pending.append(moved)
                else:
                    push(fd, child)
                continue
            stack.pop()
            os.close(fd)
            os.rmdir(name, dir_fd=parent)
    finally:
        for _parent, _name, fd, _subdirs in stack:
            os.close(fd)
