"""Unix sockets in the sandbox reach one thing only: corral's ssh-agent filter.

The main seccomp filter (`sandbox.seccomp`) refuses `socket(AF_UNIX)`, so no sandboxed process can reach
docker.sock, D-Bus or the person's own ssh-agent. ssh, though, reaches its agent only through a Unix
socket (`SSH_AUTH_SOCK`). When corral offers an agent, a second filter is installed in bwrap's process
before it starts (inherited by everything in the sandbox; nothing inside can remove it) that hands two
system calls to corral (seccomp user notification, `SECCOMP_RET_USER_NOTIF`):

- `socket(AF_UNIX, SOCK_STREAM[|flags], 0)`: corral makes a socket pair, keeps one end for the agent
  filter and installs the other in the calling process as the call's result (`SECCOMP_IOCTL_NOTIF_ADDFD`
  with `SECCOMP_ADDFD_FLAG_SEND`). Every Unix socket the sandbox can create is therefore already
  connected to the agent filter: it can never be connected, bound or sent anywhere else. Any other
  type or protocol is refused (EPERM), as before. The main filter then lets `socket(AF_UNIX)` through
  (it cannot tell the two filters apart otherwise; its EPERM would win).
- `connect()`: corral looks at the socket (`pidfd_getfd`). One of its own agent sockets succeeds (0)
  when the path is the agent's path inside (`SSH_AUTH_SOCK`), else ECONNREFUSED; any other socket
  continues to the kernel unchanged. Continuing is safe even if another thread swaps the descriptor or
  the address after the look: no unconnected Unix socket exists in the sandbox (socket pairs are
  connected at birth too), so a Unix path can never be reached, whatever the race.

Nothing is bound into the sandbox and no socket file exists for it: `SSH_AUTH_SOCK` names a path that
only this supervisor understands. Fail closed: when the filter cannot be installed the sandbox does not
start; when corral's supervisor is gone the kernel fails both calls (ENOSYS).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import platform
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

AF_UNIX = 1
SOCK_STREAM = 1
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = os.O_NONBLOCK
SOCK_CLOEXEC = 0o2000000

_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_USER_NOTIF = 0x7FC00000
_SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
_SECCOMP_ADDFD_FLAG_SEND = 1 << 1
_NOTIF_RECV = 0xC0502100
_NOTIF_SEND = 0xC0182101
_NOTIF_ID_VALID = 0x40082102
_NOTIF_ADDFD = 0x40182103
_NOTIF_SIZE = 80
_SUN_PATH_MAX = 108


@dataclass(frozen=True, slots=True)
class _Arch:
    audit: int
    seccomp: int
    pidfd_getfd: int
    socket: int
    connect: int


_ARCHES = {
    "x86_64": _Arch(0xC000003E, 317, 438, 41, 42),
    "aarch64": _Arch(0xC00000B7, 277, 438, 198, 203),
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int


class UnixGateUnavailable(OSError):
    """This machine cannot hand Unix sockets to corral (architecture or kernel)."""


def _arch() -> _Arch:
    found = _ARCHES.get(platform.machine())
    if found is None:
        raise UnixGateUnavailable(errno.ENOSYS, f"no seccomp numbers for {platform.machine()}")
    return found


def _program(arch: _Arch) -> bytes:
    """The filter: notify socket(AF_UNIX, ...) and connect(); allow everything else (the main filter
    decides the rest, non-native ABIs included)."""

    def ld(offset: int) -> bytes:
        return struct.pack("=HBBI", 0x20, 0, 0, offset)

    def jeq(value: int, jt: int, jf: int) -> bytes:
        return struct.pack("=HBBI", 0x15, jt, jf, value)

    def ret(value: int) -> bytes:
        return struct.pack("=HBBI", 0x06, 0, 0, value)

    return b"".join(
        (
            ld(4),  # 0 arch
            jeq(arch.audit, 0, 5),  # 1 -> 7 allow
            ld(0),  # 2 nr
            jeq(arch.socket, 0, 2),  # 3 -> 6
            ld(16),  # 4 args[0], low 32 bits (little-endian)
            jeq(AF_UNIX, 2, 1),  # 5 -> 8 notify | 7 allow
            jeq(arch.connect, 1, 0),  # 6 -> 8 notify | 7 allow
            ret(_SECCOMP_RET_ALLOW),  # 7
            ret(_SECCOMP_RET_USER_NOTIF),  # 8
        )
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


ServeAgent = Callable[[socket.socket], None]
"""Takes corral's end of one new agent connection (and owns it from then on)."""


class UnixGate:
    """What every sandbox run of a session shares: the agent's path inside and its filter."""

    def __init__(self, agent_path: str, serve: ServeAgent, *, max_connections: int = 64) -> None:
        encoded = agent_path.encode()
        if not agent_path.startswith("/") or len(encoded) >= _SUN_PATH_MAX or "\0" in agent_path:
            raise ValueError(f"not a usable socket path: {agent_path!r}")
        self.agent_path = agent_path
        self._path_bytes = encoded
        self._serve = serve
        self._arch = _arch()
        self._program = ctypes.create_string_buffer(_program(self._arch))
        self._fprog = _SockFprog(len(self._program.raw) // 8, ctypes.addressof(self._program))
        self._slots = threading.BoundedSemaphore(max_connections)

    def new_run(self) -> UnixGateRun:
        return UnixGateRun(self)


class UnixGateRun:
    """One bwrap process: the filter installed in it before exec, then served until it and every
    process it started are gone."""

    def __init__(self, gate: UnixGate) -> None:
        self._gate = gate
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._listener = -1
        self._thread: threading.Thread | None = None
        self._agent_inodes: set[int] = set()

    def install(self) -> None:  # pragma: no cover - runs in the forked child before exec
        """In the child, before exec: install the notifying filter and hand its listener to corral."""
        gate = self._gate
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot set no_new_privs")
        fprog = ctypes.byref(gate._fprog)
        flags = _SECCOMP_FILTER_FLAG_NEW_LISTENER | _SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        fd = _libc.syscall(gate._arch.seccomp, _SECCOMP_SET_MODE_FILTER, flags, fprog)
        if fd < 0 and ctypes.get_errno() == errno.EINVAL:
            fd = _libc.syscall(
                gate._arch.seccomp, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_NEW_LISTENER, fprog
            )
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"cannot install the agent socket filter: {os.strerror(code)}")
        socket.send_fds(self._theirs, [b"l"], [fd])
        os.close(fd)

    def started(self) -> None:
        """After the fork: take the listener and serve it. Raises OSError when none came (nothing may
        run then: the caller kills the sandbox)."""
        self._theirs.close()
        self._ours.settimeout(5.0)
        try:
            message, fds, _, _ = socket.recv_fds(self._ours, 4, 1)
        finally:
            self._ours.close()
        if message != b"l" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise OSError(errno.EPROTO, "the sandbox's agent socket filter was not installed")
        self._listener = fds[0]
        os.set_inheritable(self._listener, False)
        self._thread = threading.Thread(target=self._serve_loop, name="corral-unixgate", daemon=True)
        self._thread.start()

    def abandon(self) -> None:
        """The child never started: close what this run opened."""
        for sock in (self._ours, self._theirs):
            with contextlib.suppress(OSError):
                sock.close()
        if self._listener >= 0 and self._thread is None:
            os.close(self._listener)
            self._listener = -1

    def _serve_loop(self) -> None:
        listener = self._listener
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        try:
            while True:
                events = poller.poll()
                if not any(event & select.POLLIN for _, event in events):
                    return  # POLLHUP: no process under the filter is left
                notification = bytearray(_NOTIF_SIZE)
                try:
                    fcntl.ioctl(listener, _NOTIF_RECV, notification, True)
                except OSError as error:
                    if error.errno in (errno.ENOENT, errno.EINTR):
                        continue  # the caller went away before we read it
                    return
                try:
                    self._handle(listener, bytes(notification))
                except Exception:  # one call's failure never stops the others
                    logger.exception("unixgate: a notification failed")
        finally:
            os.close(listener)

    def _handle(self, listener: int, raw: bytes) -> None:
        notif_id, pid, _flags, nr, _arch, _ip = struct.unpack_from("=QIIiIQ", raw, 0)
        args = struct.unpack_from("=6Q", raw, 32)
        if nr == self._gate._arch.socket:
            self._on_socket(listener, notif_id, args)
        elif nr == self._gate._arch.connect:
            self._on_connect(listener, notif_id, pid, args)
        else:
            _reply(listener, notif_id, error=errno.EPERM)

    def _on_socket(self, listener: int, notif_id: int, args: tuple[int, ...]) -> None:
        kind = args[1] & 0xFFFFFFFF
        base, flags = kind & SOCK_TYPE_MASK, kind & ~SOCK_TYPE_MASK
        if base != SOCK_STREAM or flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC) or args[2] & 0xFFFFFFFF:
            _reply(listener, notif_id, error=errno.EPERM)
            return
        if not self._gate._slots.acquire(blocking=False):
            _reply(listener, notif_id, error=errno.EMFILE)
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            theirs.setblocking(not flags & SOCK_NONBLOCK)
            self._agent_inodes.add(os.fstat(theirs.fileno()).st_ino)
            addfd = struct.pack(
                "=QIIII",
                notif_id,
                _SECCOMP_ADDFD_FLAG_SEND,
                theirs.fileno(),
                0,
                os.O_CLOEXEC if flags & SOCK_CLOEXEC else 0,
            )
            fcntl.ioctl(listener, _NOTIF_ADDFD, addfd)
        except OSError:
            ours.close()
            self._gate._slots.release()
            with contextlib.suppress(OSError):
                _reply(listener, notif_id, error=errno.EPERM)
            return
        finally:
            theirs.close()

        def serve() -> None:
            try:
                self._gate._serve(ours)
            finally:
                self._gate._slots.release()

        threading.Thread(target=serve, name="corral-ssh-agent", daemon=True).start()

    def _on_connect(self, listener: int, notif_id: int, pid: int, args: tuple[int, ...]) -> None:
        target = _peek_socket(pid, args[0] & 0xFFFFFFFF)
        if target is None or not _still_valid(listener, notif_id):
            _reply(listener, notif_id, proceed=True)
            return
        inode, family = target
        if family != AF_UNIX or inode not in self._agent_inodes:
            _reply(listener, notif_id, proceed=True)  # the kernel decides (no Unix path is reachable)
            return
        path = _read_sun_path(pid, args[1], args[2] & 0xFFFFFFFF)
        if not _still_valid(listener, notif_id):
            return
        if path is not None and path != self._gate._path_bytes:
            _reply(listener, notif_id, error=errno.ECONNREFUSED)
            return
        _reply(listener, notif_id, value=0)  # already connected to the agent filter


def _reply(listener: int, notif_id: int, *, value: int = 0, error: int = 0, proceed: bool = False) -> None:
    response = struct.pack(
        "=QqiI", notif_id, value, -error if error else 0, _SECCOMP_USER_NOTIF_FLAG_CONTINUE if proceed else 0
    )
    try:
        fcntl.ioctl(listener, _NOTIF_SEND, response)
    except OSError as failure:
        if failure.errno != errno.ENOENT:  # ENOENT: the caller was interrupted or died meanwhile
            raise


def _still_valid(listener: int, notif_id: int) -> bool:
    try:
        fcntl.ioctl(listener, _NOTIF_ID_VALID, struct.pack("=Q", notif_id))
    except OSError:
        return False
    return True


def _peek_socket(pid: int, fd: int) -> tuple[int, int] | None:
    """(inode, address family) of descriptor `fd` of process `pid`; None when it is not a socket."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        copy = _libc.syscall(_arch().pidfd_getfd, pidfd, fd, 0)
        if copy < 0:
            return None
        try:
            info = os.fstat(copy)
            if (info.st_mode & 0o170000) != 0o140000:
                return None
            probe = socket.socket(fileno=os.dup(copy))
            try:
                family = probe.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
            finally:
                probe.detach()
            return info.st_ino, family
        finally:
            os.close(copy)
    finally:
        os.close(pidfd)


def _read_sun_path(pid: int, address: int, length: int) -> bytes | None:
    """The path of the `sockaddr_un` at `address` in `pid`'s memory; None when it cannot be read."""
    if length < 3 or length > 2 + _SUN_PATH_MAX:
        return None
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
            memory.seek(address)
            raw = memory.read(length)
    except (OSError, OverflowError, ValueError):
        return None
    if len(raw) != length or struct.unpack_from("=H", raw)[0] != AF_UNIX:
        return None
    return raw[2:].split(b"\0", 1)[0]
