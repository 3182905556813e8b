"""Where a project's live session listens, and who is on the other end of a connection.

One socket per project, named after a hash of the project's real path, in `<runtime>/sessions/`
(the user's runtime directory: `$XDG_RUNTIME_DIR/corral`, else `/tmp/corral-<uid>`). The owner holds
an exclusive `flock` on the matching `.lock` file for as long as it serves; a socket whose lock is
free is stale and is replaced.

Security reasoning: the directory must be a real directory owned by this user with no group/other
access (checked with `lstat` before every bind and connect, so a directory another user created in
`/tmp` first is refused, never used); the socket is created 0600. The peer's uid is read with
SO_PEERCRED on every connection, by both sides: the server serves only its own user, and a client
talks only to a server of its own user. Sandboxed commands cannot reach the socket at all: the
runtime directory is hidden inside the sandbox and seccomp refuses `socket(AF_UNIX)` there.

Imports only the standard library: `corral run` uses this on its lean path.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

_UCRED = struct.Struct("3i")
MAX_SOCKET_PATH = 107


class AddressError(RuntimeError):
    """The session directory or socket cannot be used safely; one line for the user."""


def sessions_dir(runtime_dir: Path) -> Path:
    return runtime_dir / "sessions"


def project_key(workspace: Path) -> str:
    """A short stable name for the project, from its real path."""
    real = os.path.realpath(workspace)
    return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def socket_path(runtime_dir: Path, workspace: Path) -> Path:
    return sessions_dir(runtime_dir) / f"{project_key(workspace)}.sock"


def lock_path(runtime_dir: Path, workspace: Path) -> Path:
    return sessions_dir(runtime_dir) / f"{project_key(workspace)}.lock"


def check_private_dir(path: Path, *, forbidden_bits: int = 0o077) -> None:
    """Raise AddressError unless `path` is a directory (not a link) of ours with none of
    `forbidden_bits` (default: no group/other access at all)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise AddressError(f"{path}: {error.strerror}") from error
    if not stat.S_ISDIR(info.st_mode):
        raise AddressError(f"{path}: not a directory (refusing to use it for session sockets)")
    if info.st_uid != os.getuid():
        raise AddressError(f"{path}: owned by uid {info.st_uid}, not you (refusing to use it)")
    if info.st_mode & forbidden_bits:
        raise AddressError(f"{path}: open to other users (mode {info.st_mode & 0o777:o}); refusing it")


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) 0700, then check it; its parent must be ours and writable
    by nobody else (so nobody can swap the directory for another)."""
    for directory in (path.parent, path):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(directory, 0o700, exist_ok=True)
    check_private_dir(path.parent, forbidden_bits=0o022)
    check_private_dir(path)


@dataclass(frozen=True, slots=True)
class Peer:
    """The process on the other end of a connection (from SO_PEERCRED, then /proc)."""

    pid: int
    uid: int
    gid: int
    exe: str = ""
    cmdline: str = ""
    parent_pid: int = 0
    parent_exe: str = ""
    parent_cmdline: str = ""

    def label(self) -> str:
        """A short description: the parent (the agent that ran `corral run`) when there is one."""
        name = os.path.basename(self.parent_exe) if self.parent_exe else ""
        own = os.path.basename(self.exe) if self.exe else "?"
        return f"pid {self.pid} ({own}" + (f", from {name} pid {self.parent_pid})" if name else ")")


def peer_credentials(connection: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the peer, from the kernel."""
    raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def describe_peer(connection: socket.socket) -> Peer:
    """The peer with its executable and command line (best effort: a process can exit meanwhile)."""
    pid, uid, gid = peer_credentials(connection)
    exe, cmdline, parent = _proc(pid)
    parent_exe, parent_cmdline, _ = _proc(parent) if parent > 0 else ("", "", 0)
    return Peer(pid, uid, gid, exe, cmdline, parent, parent_exe, parent_cmdline)


def _proc(pid: int) -> tuple[str, str, int]:
    base = f"/proc/{pid}"
    try:
        exe = os.readlink(f"{base}/exe")
    except OSError:
        exe = ""
    try:
        with open(f"{base}/cmdline", "rb") as handle:
            raw = handle.read(8192)
        cmdline = " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)
    except OSError:
        cmdline = ""
    parent = 0
    try:
        with open(f"{base}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[-1].split()
        parent = int(fields[1])
    except (OSError, IndexError, ValueError):
        parent = 0
    return exe, cmdline, parent
