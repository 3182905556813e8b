"""Apply captured changes to the host exactly as the command made them, without re-running it.

Safety rules, each enforced here rather than trusted to the caller:
- every target is reached from an open directory fd of its root, one component at a time with
  O_NOFOLLOW: a symlink anywhere on the way (planted by the command or swapped in by anyone since)
  stops the change, so nothing is ever written outside the root that was shown;
- every captured file is reached fd-relative from its layer's root with no symlink followed
  (`sandbox.layerfs`) and must be the inode the scan saw (`Change.source_id`); a captured file is moved
  into place only when the caller holds the layer exclusively (`exclusive`: every sandboxed process is
  proven gone), else its content is copied from the checked fd into a new inode of corral's own, so a
  process kept alive on purpose cannot keep writing (or chmod u+s) a file once it is on the host;
- files are written to a temporary name in the target directory and renamed over the target, so a
  symlink at the target is replaced, never followed;
- a host entry is changed only if it is still the one the scan saw and unchanged since the command
  started (`Change.host_id`, `started_ns`): else the change is a conflict, refused with the host's version
  kept, so two commands (or the person and a command) never silently overwrite each other;
- a mode change is applied with a chmod of the verified inode, never of a file with other hard links;
- device files, FIFOs, sockets, setuid/setgid files and captured files with extra hard links are refused;
- directories are removed fd-relative and iteratively (`layerfs.remove_entry`), never following links.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from boundary.violations import Change, ChangeOp
from sandbox.layerfs import (
    FILE_FLAGS,
    PATH_FLAGS,
    LayerRefused,
    check_identity,
    open_beneath,
    open_root,
    remove_entry,
)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

CONFLICT = "conflict"
"""The first word of the reason of a change refused because the host changed that path meanwhile."""


class ApplyRefused(Exception):
    """A change that cannot be applied safely; the host is left as it was for that path."""


class ApplyConflict(ApplyRefused):
    """The host entry changed since the command started (another command, the person): the host's
    version is kept and the command's is not applied."""


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    applied: tuple[Change, ...]
    refused: tuple[tuple[Change, str], ...]


def apply_changes(
    root: Path, changes: Iterable[Change], *, started_ns: int = 0, exclusive: bool = False
) -> ApplyOutcome:
    """Apply `changes` (all under `root`) in order; refusals are collected, never raised.

    `started_ns`: when the command started; a host entry changed after it is a conflict (0: no check
    of that kind). `exclusive`: the caller proved no sandboxed process is alive, so captured files may
    be moved into place instead of copied."""
    applied: list[Change] = []
    refused: list[tuple[Change, str]] = []
    sources = _Sources()
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        for change in changes:
            try:
                _apply_one(root_fd, root, change, sources, started_ns, exclusive)
                applied.append(change)
            except (ApplyRefused, OSError) as error:
                refused.append((change, _reason(error)))
    finally:
        os.close(root_fd)
        sources.close()
    return ApplyOutcome(tuple(applied), tuple(refused))


def is_conflict(reason: str) -> bool:
    return reason.startswith(CONFLICT + ":")


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and not isinstance(error, LayerRefused):
        return error.strerror or str(error)
    if isinstance(error, LayerRefused):
        return error.strerror or str(error)
    return str(error)


class _Sources:
    """fds of the capture layers' roots, opened once per apply with no symlink on the way."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def root(self, path: Path) -> int:
        if path not in self._fds:
            self._fds[path] = open_root(path)
        return self._fds[path]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


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


def _host_entry(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return None


def _check_host(parent: int, name: str, change: Change, started_ns: int) -> None:
    """Refuse with a conflict unless the host entry is still what the scan saw and unchanged since the
    command started. Directories that are only merged into (mkdir of an existing directory, a mode
    change) are checked by identity, not by ctime, which every new entry in them moves."""
    st = _host_entry(parent, name)
    seen = change.host_id
    if change.op is ChangeOp.DELETE:
        if st is None:
            return  # already gone: both sides want it gone
        if seen is not None and (st.st_dev, st.st_ino) != seen[:2]:
            raise ApplyConflict(
                f"{CONFLICT}: replaced on the host since the command started; kept the host's"
            )
        if started_ns and st.st_ctime_ns > started_ns:
            raise ApplyConflict(f"{CONFLICT}: changed on the host since the command started; kept the host's")
        return
    if change.op is ChangeOp.MKDIR:
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise ApplyConflict(f"{CONFLICT}: created on the host since the command started; kept the host's")
        return
    if seen is None:
        if st is not None:
            raise ApplyConflict(f"{CONFLICT}: created on the host since the command started; kept the host's")
        return
    if st is None:
        raise ApplyConflict(f"{CONFLICT}: deleted on the host since the command started; not applied")
    if (st.st_dev, st.st_ino) != seen[:2]:
        raise ApplyConflict(f"{CONFLICT}: replaced on the host since the command started; kept the host's")
    merged_dir = change.op is ChangeOp.CHMOD and stat.S_ISDIR(st.st_mode)
    if not merged_dir and (st.st_ctime_ns != seen[2] or (started_ns and st.st_ctime_ns > started_ns)):
        raise ApplyConflict(f"{CONFLICT}: changed on the host since the command started; kept the host's")


def _apply_one(
    root_fd: int, root: Path, change: Change, sources: _Sources, started_ns: int, exclusive: bool
) -> None:
    parts = _parts(root, change.path)
    name = parts[-1]
    if change.op is ChangeOp.DELETE:
        try:
            with _parent_fd(root_fd, parts, create=False) as parent:
                _check_host(parent, name, change, started_ns)
                remove_entry(parent, name)
        except FileNotFoundError:
            return
        return
    with _parent_fd(root_fd, parts, create=True) as parent:
        _check_host(parent, name, change, started_ns)
        if change.op is ChangeOp.MKDIR:
            _mkdir(parent, name, change.mode)
        elif change.op is ChangeOp.SYMLINK:
            assert change.link_target is not None
            temp = _temp_name(name)
            os.symlink(change.link_target, temp, dir_fd=parent)
            os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        elif change.op is ChangeOp.CHMOD:
            _chmod(parent, name, change)
        else:
            _write_file(parent, name, change, sources, exclusive)


def _mkdir(parent: int, name: str, mode: int) -> None:
    st = _host_entry(parent, name)
    if st is None:
        os.mkdir(name, _safe_mode(mode) or 0o755, dir_fd=parent)


def _chmod(parent: int, name: str, change: Change) -> None:
    """Change the mode of the host inode the scan saw, through an O_PATH fd of it (no symlink, no
    read permission needed), and never of a file with other hard links: the mode would change
    for every name of that inode, wherever they are."""
    fd = os.open(name, PATH_FLAGS, dir_fd=parent)
    try:
        st = os.fstat(fd)
        if change.host_id is not None and (st.st_dev, st.st_ino) != change.host_id[:2]:
            raise ApplyConflict(
                f"{CONFLICT}: replaced on the host since the command started; kept the host's"
            )
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise ApplyRefused("only files and directories get a new mode")
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise ApplyRefused("the file has other hard links; its mode is not changed through them")
        os.chmod(f"/proc/self/fd/{fd}", _safe_mode(change.mode))
    finally:
        os.close(fd)


def _safe_mode(mode: int) -> int:
    if mode & (stat.S_ISUID | stat.S_ISGID):
        raise ApplyRefused("setuid/setgid bits are never applied")
    return stat.S_IMODE(mode) & 0o777


def _temp_name(name: str) -> str:
    return f".{name[:40]}.corral-{secrets.token_hex(6)}"


@contextlib.contextmanager
def _open_source(change: Change, sources: _Sources) -> Iterator[tuple[int, int, str]]:
    """(fd of the captured file's directory, fd of the file, its name): reached fd-relative from the
    layer's root, never through a symlink, and checked to be the inode the scan saw."""
    if change.source is None or change.source_root is None:
        raise ApplyRefused("no captured content")
    try:
        rel = change.source.relative_to(change.source_root).parts
    except ValueError as error:
        raise ApplyRefused("captured content outside its layer") from error
    if not rel:
        raise ApplyRefused("no captured content")
    src_root = sources.root(change.source_root)
    try:
        src_dir = open_beneath(src_root, rel[:-1], os.O_PATH | os.O_DIRECTORY)
    except OSError as error:
        raise ApplyRefused(f"captured content moved: {error.strerror}") from error
    try:
        # O_NONBLOCK: opening a captured FIFO for reading must not wait for a writer (refused below).
        src_fd = os.open(rel[-1], FILE_FLAGS, dir_fd=src_dir)
        try:
            check_identity(src_fd, change.source_id, "captured file")
            yield src_dir, src_fd, rel[-1]
        finally:
            os.close(src_fd)
    finally:
        os.close(src_dir)


def _write_file(parent: int, name: str, change: Change, sources: _Sources, exclusive: bool) -> None:
    with _open_source(change, sources) as (src_dir, src_fd, src_name):
        st = os.fstat(src_fd)
        if not stat.S_ISREG(st.st_mode):
            raise ApplyRefused("only regular files are applied (no devices, FIFOs or sockets)")
        if st.st_nlink > 1:
            raise ApplyRefused("captured file has other hard links")
        mode = _safe_mode(st.st_mode)
        temp = _temp_name(name)
        if not (exclusive and _move_into_place(src_dir, src_name, st, parent, temp, mode)):
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
                remove_entry(parent, name)
        except FileNotFoundError:
            pass
        os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)


def _move_into_place(
    src_dir: int, src_name: str, st: os.stat_result, parent: int, temp: str, mode: int
) -> bool:
    """Rename the captured file into the target directory when both are on one filesystem (no copy).

    Only called when no sandboxed process is alive (`exclusive`); the rename goes from the verified
    directory fd of the capture layer, and the moved inode is checked to be the one validated. False
    when a copy is needed instead."""
    if os.fstat(parent).st_dev != st.st_dev:
        return False
    try:
        os.rename(src_name, temp, src_dir_fd=src_dir, dst_dir_fd=parent)
    except OSError:
        return False
    moved_fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
    try:
        moved = os.fstat(moved_fd)
        if (moved.st_ino, moved.st_dev) != (st.st_ino, st.st_dev):
            os.unlink(temp, dir_fd=parent)  # an entry of the capture layer, never a host file
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
