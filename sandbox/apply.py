"""Apply captured changes to the host exactly as the command made them, without re-running it.

Safety rules, each enforced here rather than trusted to the caller:
- every target is reached from an open directory fd of its root, one component at a time with
  O_NOFOLLOW: a symlink anywhere on the way (planted by the command or swapped in by anyone since)
  stops the change, so nothing is ever written outside the root that was shown;
- files are written to a temporary name in the target directory and renamed over the target, so a
  symlink at the target is replaced, never followed;
- device files, FIFOs, sockets, setuid/setgid files and captured files with extra hard links are refused;
- directories are removed with fd-based traversal (`shutil.rmtree(dir_fd=...)`), which never follows links.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from boundary.violations import Change, ChangeOp

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ApplyRefused(Exception):
    """A change that cannot be applied safely; the host is left as it was for that path."""


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    applied: tuple[Change, ...]
    refused: tuple[tuple[Change, str], ...]


def apply_changes(root: Path, changes: Iterable[Change]) -> ApplyOutcome:
    """Apply `changes` (all under `root`) in order; refusals are collected, never raised."""
    applied: list[Change] = []
    refused: list[tuple[Change, str]] = []
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        for change in changes:
            try:
                _apply_one(root_fd, root, change)
                applied.append(change)
            except (ApplyRefused, OSError) as error:
                refused.append((change, _reason(error)))
    finally:
        os.close(root_fd)
    return ApplyOutcome(tuple(applied), tuple(refused))


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


def _parts(root: Path, path: Path) -> list[str]:
    try:
        relative = path.relative_to(root)
    except ValueError as error:
        raise ApplyRefused(f"{path} is outside {root}") from error
    parts = list(relative.parts)
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise ApplyRefused(f"refusing to change {path}")
    return parts


@contextlib.contextmanager
def _parent_fd(root_fd: int, parts: list[str], *, create: bool) -> Iterator[int]:
    """An fd of the directory holding the last component, reached without following any symlink."""
    fd = os.dup(root_fd)
    try:
        for name in parts[:-1]:
            try:
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o755, dir_fd=fd)
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                raise ApplyRefused(
                    f"{name}: not a plain directory (symlink or other): {error.strerror}"
                ) from error
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)


def _apply_one(root_fd: int, root: Path, change: Change) -> None:
    parts = _parts(root, change.path)
    name = parts[-1]
    if change.op is ChangeOp.DELETE:
        with _parent_fd(root_fd, parts, create=False) as parent:
            _remove(parent, name)
        return
    with _parent_fd(root_fd, parts, create=True) as parent:
        if change.op is ChangeOp.MKDIR:
            _mkdir(parent, name, change.mode)
        elif change.op is ChangeOp.SYMLINK:
            assert change.link_target is not None
            temp = _temp_name(name)
            os.symlink(change.link_target, temp, dir_fd=parent)
            os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        elif change.op is ChangeOp.CHMOD:
            _chmod(parent, name, change.mode)
        else:
            _write_file(parent, name, change)


def _remove(parent: int, name: str) -> None:
    try:
        st = os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def _mkdir(parent: int, name: str, mode: int) -> None:
    try:
        st = os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        os.mkdir(name, _safe_mode(mode) or 0o755, dir_fd=parent)
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=parent)
        os.mkdir(name, _safe_mode(mode) or 0o755, dir_fd=parent)


def _chmod(parent: int, name: str, mode: int) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        os.fchmod(fd, _safe_mode(mode))
    finally:
        os.close(fd)


def _safe_mode(mode: int) -> int:
    if mode & (stat.S_ISUID | stat.S_ISGID):
        raise ApplyRefused("setuid/setgid bits are never applied")
    return stat.S_IMODE(mode) & 0o777


def _temp_name(name: str) -> str:
    return f".{name[:40]}.corral-{secrets.token_hex(6)}"


def _write_file(parent: int, name: str, change: Change) -> None:
    source = change.source
    if source is None:
        raise ApplyRefused("no captured content")
    # O_NONBLOCK: opening a captured FIFO for reading must not wait for a writer (it is refused below).
    src_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(src_fd)
        if not stat.S_ISREG(st.st_mode):
            raise ApplyRefused("only regular files are applied (no devices, FIFOs or sockets)")
        if st.st_nlink > 1:
            raise ApplyRefused("captured file has other hard links")
        mode = _safe_mode(st.st_mode)
        temp = _temp_name(name)
        if not _move_into_place(source, st, parent, temp, mode):
            out_fd = os.open(
                temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=parent,
            )
            try:
                _copy(src_fd, out_fd, st.st_size)
                os.fchmod(out_fd, mode)
            except BaseException:
                os.close(out_fd)
                os.unlink(temp, dir_fd=parent)
                raise
            os.close(out_fd)
        try:
            existing = os.lstat(name, dir_fd=parent)
            if stat.S_ISDIR(existing.st_mode):
                shutil.rmtree(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
    finally:
        os.close(src_fd)


def _move_into_place(source: Path, st: os.stat_result, parent: int, temp: str, mode: int) -> bool:
    """Rename the captured file into the target directory when both are on one filesystem (no copy).

    Safe because the capture layer belongs to corral and every sandboxed process is gone by now; the
    inode is checked to be the one that was validated. False when a copy is needed instead."""
    if os.fstat(parent).st_dev != st.st_dev:
        return False
    try:
        os.rename(source, temp, dst_dir_fd=parent)
    except OSError:
        return False
    moved_fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        moved = os.fstat(moved_fd)
        if (moved.st_ino, moved.st_dev) != (st.st_ino, st.st_dev):
            os.unlink(temp, dir_fd=parent)
            raise ApplyRefused("captured file changed while it was applied")
        os.fchmod(moved_fd, mode)
        for attribute in os.listxattr(moved_fd):
            if attribute.startswith(("user.overlay.", "trusted.overlay.")):
                os.removexattr(moved_fd, attribute)  # overlayfs bookkeeping, not the command's
    finally:
        os.close(moved_fd)
    return True


def _copy(src_fd: int, dst_fd: int, size: int) -> None:
    remaining = size
    while remaining > 0:
        try:
            copied = os.copy_file_range(src_fd, dst_fd, remaining)
        except OSError:
            copied = 0
        if copied == 0:
            break
        remaining -= copied
    if remaining > 0:
        os.lseek(src_fd, size - remaining, os.SEEK_SET)
        while chunk := os.read(src_fd, 1 << 20):
            os.write(dst_fd, chunk)
