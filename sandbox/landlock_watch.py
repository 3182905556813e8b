"""Which writes Landlock refused, by path: the launcher's side of the Landlock backend's write reports.
Standard library only (it runs inside the launcher, defined in front of `landlock_exec.py`).

Landlock refuses a write with EACCES and tells nobody which path it was (its audit records, ABI 7, reach
only root's audit daemon). So the command runs under one more seccomp filter
(`sandbox.landlock_watch_filter`) whose action for the write-shaped system calls (`open`/`openat` with a
write mode, O_CREAT or O_TRUNC; `openat2`, `creat`, `mkdir*`, `mknod*`, `unlink*`, `rmdir`, `rename*`,
`link*`, `symlink*`, `truncate`) is a user notification. The launcher, which is the command's parent and
subreaper, receives each one on the filter's listener, reads the path from the caller's memory
(`/proc/PID/mem`), resolves it as the kernel will (the caller's working directory or directory fd, the
parent's links; the last component's for an existing file being written), and when Landlock is going to
refuse it (not beneath a writable grant) writes one JSON line `{"op": ..., "path": ...}` to the report fd.
Then it lets the call continue (SECCOMP_USER_NOTIF_FLAG_CONTINUE) and Landlock decides, as before.

This only observes: enforcement is Landlock's alone, so a report that is wrong (a path that changed
between the read and the call) can make a prompt, never a write. Paths below /proc are not reported
(their writes go to the files behind magic links, which cannot be resolved from here); a path whose
memory cannot be read is reported once as `{"op": "unknown"}`.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import select
import struct
import threading

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
_NOTIF = struct.Struct("=QIIiIQ6Q")  # struct seccomp_notif (id, pid, flags, seccomp_data)
_RESP = struct.Struct("=QqiI")  # struct seccomp_notif_resp (id, val, error, flags)
_IOC_RECV = 0xC0000000 | (_NOTIF.size << 16) | (ord("!") << 8) | 0
_IOC_SEND = 0xC0000000 | (_RESP.size << 16) | (ord("!") << 8) | 1
_IOC_ID_VALID = 0x40000000 | (8 << 16) | (ord("!") << 8) | 2
AT_FDCWD = -100
AT_REMOVEDIR = 0x200
O_ACCMODE = 3
PATH_MAX = 4096
MAX_REPORTS = 1000
"""Distinct refusals reported per command; then one `{"op": "more"}` line."""

# Where each watched call keeps its paths: (op, dirfd argument or None, path argument), per path.
_SHAPES: dict[str, tuple[tuple[str, int | None, int], ...]] = {
    "open": (("open", None, 0),),
    "creat": (("creat", None, 0),),
    "openat": (("open", 0, 1),),
    "openat2": (("open", 0, 1),),
    "truncate": (("modify", None, 0),),
    "mkdir": (("mkdir", None, 0),),
    "mkdirat": (("mkdir", 0, 1),),
    "mknod": (("mknod", None, 0),),
    "mknodat": (("mknod", 0, 1),),
    "unlink": (("delete", None, 0),),
    "rmdir": (("delete", None, 0),),
    "unlinkat": (("delete", 0, 1),),
    "rename": (("delete", None, 0), ("rename", None, 1)),
    "renameat": (("delete", 0, 1), ("rename", 2, 3)),
    "renameat2": (("delete", 0, 1), ("rename", 2, 3)),
    "link": (("link", None, 1),),
    "linkat": (("link", 2, 3),),
    "symlink": (("symlink", None, 1),),
    "symlinkat": (("symlink", 1, 2),),
}
WATCHED = tuple(_SHAPES)


def install_filter(program: bytes, seccomp_nr: int) -> int:
    """Load the watch filter on this process (the command, before its exec) and return its listener."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HxxxxxxP", len(program) // 8, ctypes.addressof(buffer))
    raw = ctypes.create_string_buffer(fprog, len(fprog))
    fd = int(libc.syscall(seccomp_nr, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, raw))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"the write watch filter: {os.strerror(ctypes.get_errno())}")
    return fd


class Watch:
    """Serves one listener until every process under the filter is gone, reporting refused writes."""

    def __init__(self, listener: int, report_fd: int, names: dict[int, str], writable: list[str]) -> None:
        self.listener = listener
        self.report_fd = report_fd
        self.names = names
        self.roots = [os.path.realpath(p) for p in writable]
        self.dirs = [root for root in self.roots if os.path.isdir(root)]
        self.reported: set[tuple[str, str]] = set()
        self.thread = threading.Thread(target=self._serve, daemon=True, name="corral-landlock-watch")

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    # --- the listener ---------------------------------------------------------------------------

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        while True:
            events = poller.poll()
            if any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _fd, mask in events):
                return  # every process under the filter has ended
            buffer = bytearray(_NOTIF.size)
            try:
                fcntl.ioctl(self.listener, _IOC_RECV, buffer, True)
            except OSError as error:
                if error.errno in (errno.ENOENT, errno.EINTR):
                    continue  # the caller died (or was interrupted) before it was received
                return
            notif_id, pid, _flags, nr, _arch, _ip, *args = _NOTIF.unpack(buffer)
            try:
                self._observe(notif_id, pid, nr, args)
            except Exception:  # noqa: S110 - only a report is lost; Landlock still decides
                pass
            finally:
                response = bytearray(_RESP.pack(notif_id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE))
                try:
                    fcntl.ioctl(self.listener, _IOC_SEND, response, True)
                except OSError:
                    pass  # the caller died meanwhile

    def _observe(self, notif_id: int, pid: int, nr: int, args: list[int]) -> None:
        name = self.names.get(nr)
        if name is None:
            return
        found: list[tuple[str, str]] = []
        try:
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
                for op, dirfd_arg, path_arg in _SHAPES[name]:
                    path = _string(memory, args[path_arg])
                    base = _base(pid, None if dirfd_arg is None else _signed(args[dirfd_arg]))
                    found.append((op, os.path.join(base, _own_proc(path, pid))))
                how_flags = _open_how_flags(memory, args[2]) if name == "openat2" else 0
        except OSError:
            self._report("unknown", "")
            return
        if not self._still_valid(notif_id):
            return
        flags = {"open": args[1], "openat": args[2], "openat2": how_flags, "creat": 0o1101}.get(name, 0)
        if name == "unlinkat" and args[2] & AT_REMOVEDIR:
            found = [("delete", found[0][1])]
        for op, path in found:
            verdict = self._refused(op, path, flags)
            if verdict is not None:
                self._report(*verdict)

    def _still_valid(self, notif_id: int) -> bool:
        try:
            fcntl.ioctl(self.listener, _IOC_ID_VALID, struct.pack("=Q", notif_id))
        except OSError:
            return False
        return True

    # --- what Landlock will do ------------------------------------------------------------------

    def _refused(self, op: str, path: str, flags: int) -> tuple[str, str] | None:
        """(op, resolved path) when Landlock is going to refuse this, else None."""
        parent, name = os.path.split(os.path.normpath(path))
        if name in ("", ".", "..") or path.startswith("/proc/") or parent.startswith("/proc"):
            return None
        real_parent = os.path.realpath(parent)
        if not os.path.isdir(real_parent):
            return None  # ENOENT / ENOTDIR, whatever Landlock would say
        target = os.path.join(real_parent, name)
        exists = os.path.lexists(target)
        if op in ("open", "creat"):
            if flags & os.O_TMPFILE == os.O_TMPFILE:
                return None  # an unnamed file: nothing a person could allow by name
            writes = flags & O_ACCMODE in (os.O_WRONLY, os.O_RDWR) or flags & os.O_TRUNC
            if exists and os.path.islink(target):
                if flags & (os.O_NOFOLLOW | os.O_EXCL):
                    return None  # ELOOP / EEXIST
                target = os.path.realpath(target)
                exists = os.path.lexists(target)
            if exists:
                if not writes or flags & os.O_EXCL:
                    return None  # no write to check (or EEXIST)
                return None if self._beneath(target, self.roots) else ("modify", target)
            if not flags & os.O_CREAT:
                return None  # ENOENT
            return None if self._beneath(real_parent, self.dirs) else ("create", target)
        if op == "modify":
            real = os.path.realpath(target)
            return None if self._beneath(real, self.roots) else ("modify", real)
        if (op == "delete") != exists and op != "rename":
            return None  # ENOENT for a delete, EEXIST for a create: no Landlock check
        return None if self._beneath(real_parent, self.dirs) else (op, target)

    @staticmethod
    def _beneath(path: str, roots: list[str]) -> bool:
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)

    def _report(self, op: str, path: str) -> None:
        key = (op, path)
        if key in self.reported:
            return
        self.reported.add(key)
        if len(self.reported) > MAX_REPORTS:
            if len(self.reported) == MAX_REPORTS + 1:
                line = {"op": "more"}
            else:
                return
        else:
            line = {"op": op, "path": path}
        data = (json.dumps(line) + "\n").encode()
        try:
            os.write(self.report_fd, data)
        except OSError:
            pass


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _base(pid: int, dirfd: int | None) -> str:
    if dirfd is None or dirfd == AT_FDCWD:
        return os.readlink(f"/proc/{pid}/cwd")
    return os.readlink(f"/proc/{pid}/fd/{dirfd}")


def _own_proc(path: str, pid: int) -> str:
    """`/proc/self/...` as the caller means it (this process has another self)."""
    for alias in ("/proc/self", "/proc/thread-self"):
        if path == alias or path.startswith(alias + "/"):
            return f"/proc/{pid}" + path[len(alias) :]
    return path


def _string(memory: io.FileIO, address: int) -> str:
    """The NUL-terminated path at `address` in the caller's memory, read page by page."""
    data = b""
    while len(data) < PATH_MAX:
        here = address + len(data)
        chunk_size = min(4096 - here % 4096, PATH_MAX - len(data))
        memory.seek(here)
        chunk = memory.read(chunk_size)
        if not chunk:  # None or empty: nothing mapped there
            raise OSError(errno.EFAULT, "unreadable path")
        end = chunk.find(b"\0")
        if end >= 0:
            return os.fsdecode(data + chunk[:end])
        data += chunk
    raise OSError(errno.ENAMETOOLONG, "path too long")


def _open_how_flags(memory: io.FileIO, address: int) -> int:
    memory.seek(address)
    raw = memory.read(8)
    if raw is None or len(raw) != 8:
        raise OSError(errno.EFAULT, "unreadable open_how")
    return int(struct.unpack("=Q", raw)[0])
