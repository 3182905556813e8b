"""One network (and parent pid) namespace for every command of a session, held by a keeper process.

Each command still gets a bubblewrap sandbox of its own (mounts, capture layers, pid namespace), but
the commands of one session share one place to run in: `SessionNamespace` starts a small keeper that
creates a user namespace (mapping only the caller's own uid and gid), a network namespace with its
loopback up and nothing else, and a pid namespace whose pid 1 it is. bubblewrap is then started
*inside* them (`enter`, run between fork and exec): it joins the keeper's user and network namespace
instead of `--unshare-net`, and the pid namespace it makes for the command is a child of the keeper's.
So
- a server a command leaves in the background listens on the same loopback that later commands of
  the session connect to (`curl localhost:8000` reaches it), while the host's loopback stays out of
  reach (another namespace), and corral's proxy listener is opened in it once
  (`sandbox.egress.netns.open_listener_in(keeper.pid)`);
- every sandboxed process of the session, background and double-forked ones included, is a member of
  the keeper's pid namespace, so it dies with the keeper: when the session closes (`close`), and when
  corral itself dies, however it dies (the keeper's only other end is a pipe held by corral; at its
  EOF pid 1 exits and the kernel kills the whole namespace, nested ones included).

The sandboxed commands run in user namespaces nested below the keeper's, with every capability
dropped: they cannot reconfigure the shared network namespace (it belongs to the keeper's user
namespace), and they cannot see the keeper (a child pid namespace never sees its parent's processes).

The keeper is a fresh interpreter (`-I -S`, standard library only, no corral code) so it starts
single-threaded, which `unshare(CLONE_NEWUSER)` requires. API for other parts of corral (the network
path, the runner): `pid`, `namespace_path(kind)`, `enter()`, `alive()`, `close()`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox.fdwait import readable

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000

START_TIMEOUT_S = 5.0

# The C library this interpreter is linked with (find_library would run `ldconfig -p` at import).
_libc = ctypes.CDLL(None, use_errno=True)
_setns = _libc.setns
_setns.argtypes = (ctypes.c_int, ctypes.c_int)
_setns.restype = ctypes.c_int
_unshare = _libc.unshare
_unshare.argtypes = (ctypes.c_int,)
_unshare.restype = ctypes.c_int
_mount = _libc.mount
_mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)
_mount.restype = ctypes.c_int

_KEEPER = r"""
import ctypes, errno, fcntl, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
out = os.fdopen(1, "w", buffering=1)
def fail(step):
    out.write("err %s %d\n" % (step, ctypes.get_errno() or errno.EIO)); os._exit(1)
uid, gid = os.geteuid(), os.getegid()
if libc.unshare(0x10000000 | 0x40000000 | 0x20000000) != 0:
    fail("unshare")
try:
    with open("/proc/self/setgroups", "w") as f: f.write("deny")
    with open("/proc/self/uid_map", "w") as f: f.write("%d %d 1" % (uid, uid))
    with open("/proc/self/gid_map", "w") as f: f.write("%d %d 1" % (gid, gid))
except OSError as e:
    ctypes.set_errno(e.errno or errno.EIO); fail("map")
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", 0x1 | 0x8 | 0x40))  # SIOCSIFFLAGS: up, loopback, running
    s.close()
except OSError as e:
    ctypes.set_errno(e.errno or errno.EIO); fail("loopback")
pid = os.fork()
if pid == 0:
    # pid 1 of the session's pid namespace: reap what is orphaned into it (bubblewrap's monitors), and
    # exit once corral's end of the pipe closes (the kernel then kills every process of the namespace).
    import select, signal
    out.close()
    os.closerange(3, 1 << 16)
    os.setsid()
    signal.signal(signal.SIGCHLD, lambda *_: None)
    while True:
        try:
            ready = select.select([0], [], [], 1.0)[0]
        except InterruptedError:
            ready = []
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if ready:
            try:
                if not os.read(0, 4096):
                    break
            except OSError:
                break
    os._exit(0)
out.write("ok %d\n" % pid)
out.close()
os._exit(0)
"""


@dataclass(frozen=True, slots=True)
class SharedPlace:
    """What the commands of one session share: the keeper's namespaces (None: each command gets its
    own network namespace) and the session's /tmp (None: a fresh tmpfs per command)."""

    namespace: SessionNamespace | None = None
    tmp: Path | None = None


class SessionNamespaceError(OSError):
    """The session's namespaces could not be made (user namespaces refused, no loopback, ...)."""


class SessionNamespace:
    """The keeper of one session's user, network and pid namespaces (see the module docstring)."""

    def __init__(self, *, timeout_s: float = START_TIMEOUT_S) -> None:
        keep_r, keep_w = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _KEEPER],
                # The running interpreter itself: its path may lie in a directory only another user can
                # search (a venv on root's pyenv, run by an unprivileged user).
                executable="/proc/self/exe",
                stdin=keep_r,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                env={},
            )
        except OSError as error:
            os.close(keep_r)
            os.close(keep_w)
            raise SessionNamespaceError(
                error.errno or 0, f"cannot start the session keeper: {error}"
            ) from error
        os.close(keep_r)
        self._keep_w = keep_w
        self._pidfd = -1
        self.pid = 0
        try:
            line = _read_line(process, timeout_s)
            process.wait(timeout=timeout_s)
            words = line.split()
            if len(words) == 2 and words[0] == "ok" and words[1].isdigit():
                self.pid = int(words[1])
            elif len(words) == 3 and words[0] == "err":
                code = int(words[2]) if words[2].isdigit() else 0
                raise SessionNamespaceError(
                    code, f"cannot make the session's namespaces ({words[1]}): {os.strerror(code)}"
                )
            else:
                raise SessionNamespaceError(0, "the session keeper did not start")
            self._pidfd = os.pidfd_open(self.pid)
            self._inodes = {
                kind: os.stat(f"/proc/{self.pid}/ns/{kind}").st_ino for kind in ("user", "net", "pid")
            }
            if self._inodes["net"] == os.stat("/proc/self/ns/net").st_ino:
                raise SessionNamespaceError(0, "the session keeper shares corral's network namespace")
        except BaseException:
            if process.poll() is None:
                process.kill()
                process.wait()
            self.close()
            raise
        finally:
            if process.stdout is not None:
                process.stdout.close()

    def namespace_path(self, kind: str) -> str:
        """`/proc/PID/ns/KIND` of the keeper (`user`, `net`, `pid`), e.g. for a network helper."""
        return f"/proc/{self.pid}/ns/{kind}"

    def alive(self) -> bool:
        if self._pidfd < 0:
            return False
        try:
            signal.pidfd_send_signal(self._pidfd, 0)
        except OSError:
            return False
        return True

    def open_fds(self) -> tuple[int, int, int]:
        """Descriptors of the keeper's user, network and pid namespaces, checked to be the ones it
        made (the keeper is still alive after they were opened, so its pid was not reused)."""
        if not self.alive():
            raise SessionNamespaceError(0, "the session's namespaces are gone")
        fds: list[int] = []
        try:
            for kind in ("user", "net", "pid"):
                fd = os.open(self.namespace_path(kind), os.O_RDONLY | os.O_CLOEXEC)
                fds.append(fd)
                if os.fstat(fd).st_ino != self._inodes[kind]:
                    raise SessionNamespaceError(0, "the session keeper changed")
            if not self.alive():
                raise SessionNamespaceError(0, "the session's namespaces are gone")
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return fds[0], fds[1], fds[2]

    def enter(self) -> tuple[Callable[[], None], tuple[int, int, int]]:
        """(a function to run in a forked child before exec, the descriptors it uses, for the caller to
        close after the fork).

        The function moves the child into the session's user and network namespaces and its pid
        namespace for children, then forks once more: the kernel lets a process create a user namespace
        (bubblewrap's) only while its own pid namespace is the one its children get, which is true of
        the grandchild only, so the grandchild returns and execs, and the child stays behind as a
        monitor that closes every descriptor, waits for it and exits with its status (the caller's
        `wait` sees bubblewrap's exit). The child only makes system calls and never returns."""
        user_fd, net_fd, pid_fd = self.open_fds()

        def join() -> None:
            for fd, kind in ((user_fd, CLONE_NEWUSER), (net_fd, CLONE_NEWNET), (pid_fd, CLONE_NEWPID)):
                if _setns(fd, kind) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"cannot join the session's namespaces: {os.strerror(code)}")
            child = os.fork()
            if child == 0:
                _own_proc()
                return
            os.closerange(0, 1 << 16)
            while True:
                try:
                    _, status = os.waitpid(child, 0)
                    break
                except InterruptedError:
                    continue
                except OSError:
                    os._exit(125)
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)

        return join, (user_fd, net_fd, pid_fd)

    def close(self, timeout_s: float = 30.0) -> None:
        """End the session: every process in its namespaces is killed; returns once the keeper's pid 1
        is gone (the kernel has emptied the namespace then)."""
        if self._keep_w >= 0:
            os.close(self._keep_w)
            self._keep_w = -1
        if self._pidfd >= 0:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:
                pass
            deadline = time.monotonic() + timeout_s
            while _alive_state(self.pid, self._pidfd) and time.monotonic() < deadline:
                readable([self._pidfd], 0.05)
            os.close(self._pidfd)
            self._pidfd = -1


def _alive_state(pid: int, pidfd: int) -> bool:
    """Whether the keeper is still running (not yet a zombie or reaped)."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("State:"):
                    return not line.split()[1].startswith(("Z", "X"))
    except OSError:
        return False
    return True


def _read_line(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout_s
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not readable([fd], remaining):
            raise SessionNamespaceError(0, "the session keeper did not answer in time")
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _own_proc() -> None:
    """Give this process (now in the session's pid namespace) a /proc of that namespace, in a mount
    namespace of its own: bubblewrap reads /proc/PID of the child it made by the pid it sees."""
    if _unshare(CLONE_NEWNS) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"cannot make a mount namespace: {os.strerror(code)}")
    if _mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"cannot make the mounts private: {os.strerror(code)}")
    if _mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"cannot mount the session's /proc: {os.strerror(code)}")


def monitored_pid(monitor: int, timeout_s: float = 5.0) -> int | None:
    """The process a monitor left by `SessionNamespace.enter` forked (bubblewrap), or None."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with open(f"/proc/{monitor}/task/{monitor}/children") as children:
                pids = children.read().split()
        except OSError:
            return None
        if pids:
            return int(pids[0])
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.0005)
