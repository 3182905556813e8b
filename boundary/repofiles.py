"""Read a file that a repository (or a sandboxed command) controls, without letting it stop corral.

Every file corral reads from a workspace — `.git` and `.git/config`, `commondir`, hooks paths, trust
files, captured changes — is chosen by whoever wrote the repository. A FIFO there would block a plain
`open()` forever (no writer ever comes), a device would read without end, a final symlink would lead
anywhere. So: `O_NONBLOCK` (a FIFO opens at once and reads as empty; it is refused anyway), `O_NOFOLLOW`
(a final symlink is refused), `O_NOCTTY`, then `fstat` on the open descriptor: only a regular file is
read, and at most `limit` bytes of it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY


@dataclass(frozen=True, slots=True)
class RepoRead:
    """`content` when the file was read whole; otherwise `problem` says why not (one short phrase)."""

    content: bytes | None
    size: int = 0
    problem: str | None = None


def read_repo_file(path: str | os.PathLike[str], limit: int, *, dir_fd: int | None = None) -> RepoRead:
    """Read the regular file at `path` (relative to `dir_fd` when given) if it holds at most `limit`
    bytes; never blocks, never follows a final symlink."""
    try:
        fd = os.open(path, _FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return RepoRead(None, 0, "missing")
    except OSError as error:
        return RepoRead(None, 0, f"cannot open ({error.strerror})")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return RepoRead(None, 0, "not a regular file")
        if info.st_size > limit:
            return RepoRead(None, info.st_size, f"larger than {limit} bytes")
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            return RepoRead(None, len(data), f"larger than {limit} bytes")
        return RepoRead(data, len(data))
    except OSError as error:
        return RepoRead(None, 0, f"cannot read ({error.strerror})")
    finally:
        os.close(fd)


def read_repo_text(path: str | os.PathLike[str], limit: int) -> str | None:
    """The text of a small regular file (UTF-8, bad bytes replaced), or None."""
    result = read_repo_file(path, limit)
    return None if result.content is None else result.content.decode("utf-8", "replace")


def is_regular(path: str | os.PathLike[str]) -> bool:
    """Whether `path` itself (not a symlink's target) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
