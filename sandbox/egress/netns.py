"""A listening socket inside the sandbox's own network namespace, held by corral outside it.

The sandbox runs in an empty network namespace (only loopback, brought up by bubblewrap). Before the
sandboxed command starts (bubblewrap waits on ``--block-fd``), `open_listener_in` forks a short-lived
helper that joins the sandbox's user namespace (the owner of its network namespace) and its network
namespace, creates a TCP socket listening on the sandbox's ``127.0.0.1:<port>``, passes the descriptor
back over a socketpair (SCM_RIGHTS) and exits. corral's proxy accepts on that descriptor from outside.

Why this beats a Unix socket mounted into the sandbox with a forwarder inside it:

- Nothing of corral's runs inside the sandbox: no forwarder process the sandboxed command could kill,
  replace, trace or talk to in unexpected ways, and no executable that must exist in the sandbox.
- The sandbox needs no Unix-socket exception: its seccomp filter can refuse every AF_UNIX socket, so
  it cannot reach a Docker, D-Bus or SSH-agent socket even if one were visible.
- The sandbox reaches exactly one thing, the proxy, on its own loopback; a raw socket to any other
  address finds no route, and host loopback is a different namespace.
- Fail closed: the only descriptor of the listener lives in corral's process. If the proxy dies, the
  kernel closes it and every connection attempt inside the sandbox is refused.

The helper is forked, not spawned, to avoid an interpreter start-up on every command; setns into a
user namespace requires a single-threaded process, which the freshly forked child is. Because corral
may have other threads, the child only makes system calls (open, ioctl, setns, socket, sendmsg,
_exit): no locks, no logging, no printing. It reports failure as an errno over the socketpair.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import socket
import struct
import time

from sandbox.egress.environment import DEFAULT_PROXY_PORT
from sandbox.fdwait import readable

NS_GET_USERNS = 0xB701
"""ioctl on a namespace descriptor returning a descriptor for the owning user namespace."""

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

_STEP_NAMES = {
    1: "open the sandbox network namespace",
    2: "find the user namespace that owns it",
    3: "join the sandbox user namespace",
    4: "join the sandbox network namespace",
    5: "create the listening socket",
    6: "bind the listening socket",
    7: "listen",
}

# The C library this interpreter is linked with (find_library would run `ldconfig -p` at import).
_libc = ctypes.CDLL(None, use_errno=True)
_setns = _libc.setns
_setns.argtypes = (ctypes.c_int, ctypes.c_int)
_setns.restype = ctypes.c_int


class NetnsError(OSError):
    """The listener could not be created inside the sandbox's network namespace."""


def _namespace_inode(path: str) -> int:
    return os.stat(path).st_ino


def open_listener_in(
    child_pid: int,
    port: int = DEFAULT_PROXY_PORT,
    *,
    address: str = "127.0.0.1",
    backlog: int = 512,
    timeout_s: float = 5.0,
) -> socket.socket:
    """Return a TCP socket listening on `address`:`port` inside the network namespace of `child_pid`.

    `child_pid` is the sandbox's first process as bubblewrap reports it on ``--info-fd`` (bubblewrap
    still blocked on ``--block-fd``). The default `port` matches `proxy_environment`'s; 0 lets the
    kernel pick a free port (read it back with ``getsockname()``). Refuses (``NetnsError``) when the
    process shares corral's own network namespace, since a listener there would be on the host's
    loopback. The returned socket is close-on-exec and blocking; it is the only descriptor of the
    listener.
    """
    ns_path = f"/proc/{child_pid}/ns/net"
    try:
        target_inode = _namespace_inode(ns_path)
    except OSError as error:
        raise NetnsError(error.errno, f"cannot see the network namespace of process {child_pid}") from error
    if target_inode == _namespace_inode("/proc/self/ns/net"):
        raise NetnsError(errno.EINVAL, f"process {child_pid} shares corral's network namespace")
    own_userns = _namespace_inode("/proc/self/ns/user")

    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        helper = os.fork()
        if helper == 0:  # pragma: no cover - runs in the forked helper only
            parent_end.close()
            bind_deadline = time.monotonic() + timeout_s / 2
            _helper(child_end, ns_path, target_inode, own_userns, address, port, backlog, bind_deadline)
        child_end.close()
        return _receive_listener(parent_end, helper, child_pid, timeout_s)
    finally:
        parent_end.close()
        if child_end.fileno() != -1:
            child_end.close()


def _receive_listener(channel: socket.socket, helper: int, child_pid: int, timeout_s: float) -> socket.socket:
    deadline = time.monotonic() + timeout_s
    try:
        if not readable([channel], timeout_s):
            raise NetnsError(errno.ETIMEDOUT, f"no listener from the namespace helper within {timeout_s}s")
        message, fds, _, _ = socket.recv_fds(channel, 16, 1)
    finally:
        _reap(helper, deadline)
    if fds and message == b"ok":
        listener = socket.socket(fileno=fds[0])
        listener.set_inheritable(False)
        listener.setblocking(True)
        return listener
    for fd in fds:
        os.close(fd)
    if len(message) == 8:
        step, code = struct.unpack("=ii", message)
        what = _STEP_NAMES.get(step, "set up the listener")
        raise NetnsError(code, f"cannot {what} for sandbox process {child_pid}: {os.strerror(code)}")
    raise NetnsError(errno.EPROTO, "the namespace helper exited without a listener")


def _reap(helper: int, deadline: float) -> None:
    """Wait for the helper; kill it if it outlives the deadline, so no stray process remains."""
    while True:
        pid, _ = os.waitpid(helper, os.WNOHANG)
        if pid:
            return
        if time.monotonic() >= deadline:
            os.kill(helper, signal.SIGKILL)
            os.waitpid(helper, 0)
            return
        time.sleep(0.001)


def _bind_once_loopback_is_up(  # pragma: no cover - runs in the forked helper only
    listener: socket.socket, address: str, port: int, deadline: float
) -> None:
    """Bind, waiting while the sandbox's loopback has no address yet.

    bubblewrap reports the sandbox's pid on ``--info-fd`` right after it clones, while the child is
    still giving loopback its address and bringing it up; a bind in that window fails with
    EADDRNOTAVAIL. Bringing loopback up ourselves would make bubblewrap's own set-up fail (the
    address then exists), so the helper waits for it, bounded by `deadline`, with plain sleeps.
    """
    while True:
        try:
            listener.bind((address, port))
            return
        except OSError as error:
            if error.errno != errno.EADDRNOTAVAIL or time.monotonic() >= deadline:
                raise
        time.sleep(0.0005)


def _helper(  # pragma: no cover - runs in the forked helper only
    channel: socket.socket,
    ns_path: str,
    target_inode: int,
    own_userns: int,
    address: str,
    port: int,
    backlog: int,
    bind_deadline: float,
) -> None:
    step = 0
    try:
        step = 1
        net_fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
        if os.fstat(net_fd).st_ino != target_inode:
            raise OSError(errno.ESRCH, "the sandbox process changed")
        step = 2
        user_fd = fcntl.ioctl(net_fd, NS_GET_USERNS)
        if os.fstat(user_fd).st_ino != own_userns:
            step = 3
            if _setns(user_fd, CLONE_NEWUSER) != 0:
                raise OSError(ctypes.get_errno(), "setns user")
        step = 4
        if _setns(net_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns net")
        step = 5
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        step = 6
        _bind_once_loopback_is_up(listener, address, port, bind_deadline)
        step = 7
        listener.listen(backlog)
        socket.send_fds(channel, [b"ok"], [listener.fileno()])
        os._exit(0)
    except BaseException as error:
        code = error.errno if isinstance(error, OSError) and error.errno else errno.EIO
        try:
            channel.send(struct.pack("=ii", step, code))
        finally:
            os._exit(1)
