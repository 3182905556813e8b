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
from collections import OrderedDict
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
    rename_noreplace,
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
    targets = _HostDirs(root_fd)
    try:
        for change in changes:
            try:
                _apply_one(targets, str(root), change, sources, started_ns, exclusive)
                applied.append(change)
            except (ApplyRefused, OSError) as error:
                targets.forget()  # whatever failed may have left the tree other than the fds show
                refused.append((change, _reason(error)))
    finally:
        targets.close()
        sources.close()
        os.close(root_fd)
    return ApplyOutcome(tuple(applied), tuple(refused))


def is_conflict(reason: str) -> bool:
    return reason.startswith(CONFLICT + ":")


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and not isinstance(error, LayerRefused):
        return error.strerror or str(error)
    if isinstance(error, LayerRefused):
        return error.strerror or str(error)
    return str(error)


_OPEN_DIRS = 64
"""Directory fds one apply keeps open (per kind), least recently used closed first."""


class _FdCache:
    """A bounded map of open fds, least recently used closed first."""

    def __init__(self) -> None:
        self._fds: OrderedDict[object, int] = OrderedDict()

    def get(self, key: object) -> int | None:
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
        return fd

    def put(self, key: object, fd: int) -> None:
        self._fds[key] = fd
        while len(self._fds) > _OPEN_DIRS:
            os.close(self._fds.popitem(last=False)[1])

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class _Sources:
    """fds of the capture layers' roots, opened once per apply with no symlink on the way, and of the
    directories of captured files below them (`openat2` beneath the root, no symlink followed)."""

    def __init__(self) -> None:
        self._roots: dict[Path, int] = {}
        self._dirs = _FdCache()

    def root(self, path: Path) -> int:
        if path not in self._roots:
            self._roots[path] = open_root(path)
        return self._roots[path]

    def directory(self, root: Path, parts: tuple[str, ...]) -> int:
        """An O_PATH fd of `parts` below the layer root `root` (owned by this cache)."""
        key = (root, parts)
        fd = self._dirs.get(key)
        if fd is None:
            fd = open_beneath(self.root(root), parts, os.O_PATH | os.O_DIRECTORY)
            self._dirs.put(key, fd)
        return fd

    def close(self) -> None:
        self._dirs.close()
        for fd in self._roots.values():
            os.close(fd)
        self._roots.clear()


class _HostDirs:
    """Directories of the target tree, each reached from the root's fd one component at a time with
    O_NOFOLLOW (a symlink on the way stops the change), kept open for the changes that follow in the
    same directory. Anything that may remove or replace a directory (`forget`) closes them all, so a
    later change walks the tree again from the root."""

    def __init__(self, root_fd: int) -> None:
        self._root = (root_fd, os.fstat(root_fd).st_dev)
        self._dirs = _FdCache()
        self._devices: dict[tuple[str, ...], int] = {}

    def parent(self, parts: list[str], *, create: bool) -> tuple[int, int]:
        """(fd owned by this cache, st_dev) of the directory holding the last component of `parts`."""
        key = tuple(parts[:-1])
        if not key:
            return self._root
        fd = self._dirs.get(key)
        if fd is not None:
            return fd, self._devices[key]
        above, _device = self.parent(list(key), create=create)
        name = key[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=above)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=above)
            fd = os.open(name, _DIR_FLAGS, dir_fd=above)
        except OSError as error:
            raise ApplyRefused(
                f"{name}: not a plain directory (symlink or other): {error.strerror}"
            ) from error
        try:
            self._devices[key] = os.fstat(fd).st_dev
        except BaseException:
            os.close(fd)
            raise
        self._dirs.put(key, fd)
        return fd, self._devices[key]

    def forget(self) -> None:
        self._dirs.close()
        self._devices.clear()

    def close(self) -> None:
        self.forget()


def _parts(root: str, path: Path) -> list[str]:
    text = str(path)
    if not text.startswith(root.rstrip("/") + "/"):
        raise ApplyRefused(f"{path} is outside {root}")
    parts = text[len(root.rstrip("/")) + 1 :].split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ApplyRefused(f"refusing to change {path}")
    return parts


def _host_entry(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return None


def _check_host(parent: int, name: str, change: Change, started_ns: int) -> os.stat_result | None:
    """Refuse with a conflict unless the host entry is still what the scan saw and unchanged since the
    command started. Directories that are only merged into (mkdir of an existing directory, a mode
    change) are checked by identity, not by ctime, which every new entry in them moves."""
    st = _host_entry(parent, name)
    seen = change.host_id
    if change.op is ChangeOp.DELETE:
        if st is None:
            return None  # already gone: both sides want it gone
        if seen is not None and (st.st_dev, st.st_ino) != seen[:2]:
            raise ApplyConflict(
                f"{CONFLICT}: replaced on the host since the command started; kept the host's"
            )
        if started_ns and st.st_ctime_ns > started_ns:
            raise ApplyConflict(f"{CONFLICT}: changed on the host since the command started; kept the host's")
        return st
    if change.op is ChangeOp.MKDIR:
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise ApplyConflict(f"{CONFLICT}: created on the host since the command started; kept the host's")
        return st
    if seen is None:
        if st is not None:
            raise ApplyConflict(f"{CONFLICT}: created on the host since the command started; kept the host's")
        return None
    if st is None:
        raise ApplyConflict(f"{CONFLICT}: deleted on the host since the command started; not applied")
    if (st.st_dev, st.st_ino) != seen[:2]:
        raise ApplyConflict(f"{CONFLICT}: replaced on the host since the command started; kept the host's")
    merged_dir = change.op is ChangeOp.CHMOD and stat.S_ISDIR(st.st_mode)
    if not merged_dir and (st.st_ctime_ns != seen[2] or (started_ns and st.st_ctime_ns > started_ns)):
        raise ApplyConflict(f"{CONFLICT}: changed on the host since the command started; kept the host's")
    return st


def _apply_one(
    targets: _HostDirs, root: str, change: Change, sources: _Sources, started_ns: int, exclusive: bool
) -> None:
    parts = _parts(root, change.path)
    name = parts[-1]
    if change.op is ChangeOp.DELETE:
        try:
            parent, _device = targets.parent(parts, create=False)
            _check_host(parent, name, change, started_ns)
            remove_entry(parent, name)
        except FileNotFoundError:
            return
        finally:
            targets.forget()
        return
    parent, device = targets.parent(parts, create=True)
    host = _check_host(parent, name, change, started_ns)
    if change.op is ChangeOp.MKDIR:
        if host is None:
            os.mkdir(name, _safe_mode(change.mode) or 0o755, dir_fd=parent)
    elif change.op is ChangeOp.SYMLINK:
        assert change.link_target is not None
        targets.forget()  # the link may replace a directory some fd is kept for
        temp = _temp_name(name)
        os.symlink(change.link_target, temp, dir_fd=parent)
        os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
    elif change.op is ChangeOp.CHMOD:
        _chmod(parent, name, change)
    else:
        if host is not None and stat.S_ISDIR(host.st_mode):
            targets.forget()
        _write_file(parent, device, name, host, change, sources, exclusive)


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
def _open_source(change: Change, sources: _Sources) -> Iterator[tuple[int, int, str, os.stat_result]]:
    """(fd of the captured file's directory, fd of the file, its name, its fstat): reached fd-relative
    from the layer's root, never through a symlink, and checked to be the inode the scan saw."""
    if change.source is None or change.source_root is None:
        raise ApplyRefused("no captured content")
    source, layer_root = str(change.source), str(change.source_root).rstrip("/")
    if not source.startswith(layer_root + "/"):
        raise ApplyRefused("captured content outside its layer")
    rel = tuple(source[len(layer_root) + 1 :].split("/"))
    try:
        src_dir = sources.directory(change.source_root, rel[:-1])
    except OSError as error:
        raise ApplyRefused(f"captured content moved: {error.strerror}") from error
    # O_NONBLOCK: opening a captured FIFO for reading must not wait for a writer (refused below).
    src_fd = os.open(rel[-1], FILE_FLAGS, dir_fd=src_dir)
    try:
        st = check_identity(src_fd, change.source_id, "captured file")
        yield src_dir, src_fd, rel[-1], st
    finally:
        os.close(src_fd)


def _write_file(
    parent: int,
    parent_device: int,
    name: str,
    host: os.stat_result | None,
    change: Change,
    sources: _Sources,
    exclusive: bool,
) -> None:
    """Put the captured file at `name` in `parent`. `host`: the entry there now (checked by the caller)."""
    with _open_source(change, sources) as (src_dir, src_fd, src_name, st):
        if not stat.S_ISREG(st.st_mode):
            raise ApplyRefused("only regular files are applied (no devices, FIFOs or sockets)")
        if st.st_nlink > 1:
            raise ApplyRefused("captured file has other hard links")
        mode = _safe_mode(st.st_mode)
        if exclusive and parent_device == st.st_dev:
            _clean_captured(src_fd, st, mode)
            if host is None and _move_new(src_dir, src_name, st, parent, name):
                return
        temp = _temp_name(name)
        if not (exclusive and _move_into_place(src_dir, src_name, st, parent, temp)):
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
        if host is not None and stat.S_ISDIR(host.st_mode):
            remove_entry(parent, name)
        os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)


def _clean_captured(src_fd: int, st: os.stat_result, mode: int) -> None:
    """Before a captured inode is moved to the host: its mode made safe and overlayfs's bookkeeping
    removed, through the fd checked to be the inode the scan saw (still inside corral's layer)."""
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(src_fd, mode)
    for attribute in os.listxattr(src_fd):
        if attribute.startswith(("user.overlay.", "trusted.overlay.")):
            os.removexattr(src_fd, attribute)  # overlayfs bookkeeping, not the command's


def _move_new(src_dir: int, src_name: str, st: os.stat_result, parent: int, name: str) -> bool:
    """Rename the cleaned captured file straight to `name`, where nothing is (`RENAME_NOREPLACE`: one
    that appeared since the check is a conflict, never replaced). The entry moved is then checked to be
    the inode validated; anything else is removed again (it came from corral's layer, never the host).
    False when the kernel cannot rename without replacing (the caller goes through a temporary name)."""
    try:
        if not rename_noreplace(src_dir, src_name, parent, name):
            return False
    except FileExistsError as error:
        raise ApplyConflict(
            f"{CONFLICT}: created on the host since the command started; kept the host's"
        ) from error
    except OSError:
        return False
    moved = os.lstat(name, dir_fd=parent)
    if (moved.st_ino, moved.st_dev) != (st.st_ino, st.st_dev):
        os.unlink(name, dir_fd=parent)
        raise ApplyRefused("captured file changed while it was applied")
    return True


def _move_into_place(src_dir: int, src_name: str, st: os.stat_result, parent: int, temp: str) -> bool:
    """Rename the cleaned captured file to `temp` in the target directory (same filesystem, no copy).

    Only called when no sandboxed process is alive (`exclusive`); the rename goes from the verified
    directory fd of the capture layer, and the moved inode is checked to be the one validated. False
    when a copy is needed instead."""
    try:
        os.rename(src_name, temp, src_dir_fd=src_dir, dst_dir_fd=parent)
    except OSError:
        return False
    moved = os.lstat(temp, dir_fd=parent)
    if (moved.st_ino, moved.st_dev) != (st.st_ino, st.st_dev):
        os.unlink(temp, dir_fd=parent)  # an entry of the capture layer, never a host file
        raise ApplyRefused("captured file changed while it was applied")
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
