"""Where a project's persistent tool-chain cache layers live, and how to remove them safely.

Sandboxed commands write `~/.cache`, `~/.npm`, `~/.cargo/registry`, … into overlay upper directories
corral owns (never back into the home): one directory per project under the layers directory, one
layer per cache inside it. A path a tool prints from inside the sandbox (npm's "log written to
~/.npm/_logs/…") is therefore at `cache_layer_dir(...)/upper/_logs/…` on the host.

`remove_project_layers` deletes a project's layers while holding the same lock a run takes (so no
command is using them), fd-relative from the layers directory down, never following a symbolic link:
the layers' contents were written by sandboxed commands and may hold links to anywhere.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from pathlib import Path

LOCK_NAME = "lock"


class CacheLayerBusy(OSError):
    """A command of the project is running and holds its cache layers."""


def project_layers_dir(layers_dir: Path, workspace: Path) -> Path:
    """The directory holding `workspace`'s cache layers (it may not exist yet)."""
    return layers_dir / hashlib.sha256(os.fsencode(workspace)).hexdigest()[:16]


def cache_layer_dir(project_layers: Path, cache: Path) -> Path:
    """The layer of one cache directory (`upper/` holds what commands wrote there, `work/` the kernel's)."""
    return project_layers / hashlib.sha256(os.fsencode(cache)).hexdigest()[:12]


def host_path_of(project_layers: Path, caches: tuple[Path, ...], path: Path) -> Path | None:
    """Where a path under one of `caches`, as a command saw it, is kept on the host; None otherwise."""
    for cache in sorted(caches, key=lambda c: len(c.parts), reverse=True):
        if path == cache or cache in path.parents:
            return cache_layer_dir(project_layers, cache) / "upper" / path.relative_to(cache)
    return None


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, parent_fd: int) -> int:
    try:
        return os.open(name, _DIRECTORY, dir_fd=parent_fd)
    except PermissionError:
        # A command may have left a directory unreadable: it is ours to delete, so make it readable
        # through an O_PATH handle (which names the directory itself, never a link's target).
        handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            os.chmod(f"/proc/self/fd/{handle}", 0o700)
        finally:
            os.close(handle)
        return os.open(name, _DIRECTORY, dir_fd=parent_fd)


def _remove_tree(name: str, parent_fd: int, device: int) -> int:
    """Remove directory `name` under `parent_fd` and everything in it; returns entries removed."""
    fd = _open_dir(name, parent_fd)
    removed = 0
    try:
        if os.fstat(fd).st_dev != device:
            raise OSError(errno.EXDEV, f"{name}: another filesystem is mounted here; not removed")
        os.fchmod(fd, 0o700)
        for entry in list(os.scandir(fd)):
            if entry.is_dir(follow_symlinks=False):
                removed += _remove_tree(entry.name, fd, device)
            else:
                os.unlink(entry.name, dir_fd=fd)
                removed += 1
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)
    return removed + 1


def remove_project_layers(layers_dir: Path, workspace: Path) -> int:
    """Delete `workspace`'s cache layers; returns the number of entries removed (0: there were none).

    Raises CacheLayerBusy while a command of the project runs, OSError for anything else (the part
    not yet removed stays, and a second call continues)."""
    project = project_layers_dir(layers_dir, workspace)
    try:
        layers_fd = os.open(layers_dir, _DIRECTORY)
    except FileNotFoundError:
        return 0
    try:
        try:
            project_fd = os.open(project.name, _DIRECTORY, dir_fd=layers_fd)
        except FileNotFoundError:
            return 0
        try:
            lock = os.open(
                LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=project_fd
            )
        except OSError:
            os.close(project_fd)
            raise
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CacheLayerBusy(
                    errno.EBUSY, "a command of this project is running; try again after it ends"
                ) from None
            device = os.fstat(project_fd).st_dev
            removed = 0
            for entry in list(os.scandir(project_fd)):
                if entry.name == LOCK_NAME:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    removed += _remove_tree(entry.name, project_fd, device)
                else:
                    os.unlink(entry.name, dir_fd=project_fd)
                    removed += 1
            os.unlink(LOCK_NAME, dir_fd=project_fd)
        finally:
            os.close(lock)
            os.close(project_fd)
        try:
            os.rmdir(project.name, dir_fd=layers_fd)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise  # ENOTEMPTY: a command started meanwhile and made its layers afresh
        return removed + 1
    finally:
        os.close(layers_fd)
