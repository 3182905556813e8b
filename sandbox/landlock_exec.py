"""The Landlock launcher: restrict this process, then exec the command. Standard library only.

Run by `sandbox.landlock_launch` as `python -I -S -c SOURCE SPEC_FD STATUS_FD -- CMD ARG...` (SOURCE is
this file with `sandbox.landlock` defined in front of it, so nothing is read from disk but the
interpreter and its standard library; `-I` keeps the working directory, which the command controls, off
`sys.path`): by the Landlock backend on the host and, for the inner layer, inside bwrap after it has set
up the mounts (a Landlock-restricted process may no longer change mounts, so the ruleset must come after
them, from inside).

The spec (JSON, read from SPEC_FD) says what to enforce, in this order: wait on `block_fd` until the
parent has put this process in its cgroup; rlimits; with `drop_caps`, every capability (bounding set
included, and the securebits that stop a uid-0 exec from regaining them); the Landlock ruleset (which
sets no-new-privileges); each seccomp filter. Any failure writes one line to STATUS_FD and exits 125
without running the command; otherwise `ok` is written just before the exec.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    from sandbox import landlock, landlock_watch
except ImportError:  # pragma: no cover - the launcher: both are defined in front of this source
    import landlock  # type: ignore[no-redef,import-not-found]
    import landlock_watch  # type: ignore[no-redef,import-not-found]

_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_SECBITS_LOCKED_NOROOT = 0x3F  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED and their locks
_CAP_LAST_CAP = Path("/proc/sys/kernel/cap_last_cap")
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_SET_CHILD_SUBREAPER = 36
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP)
_RLIMITS = {
    "nproc": resource.RLIMIT_NPROC,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
}


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


_libc = ctypes.CDLL(None, use_errno=True)


class LaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class WatchSpec:
    """The write watch (`sandbox.landlock_watch`): its filter, read before Landlock hides corral's cache,
    the fd its reports go to, and the watched calls' numbers."""

    program: bytes
    report_fd: int
    names: dict[int, str]
    seccomp_nr: int

    @classmethod
    def parse(cls, value: object) -> WatchSpec | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise LaunchError("malformed launcher spec (watch)")
        names = value.get("syscalls")
        if not isinstance(names, dict):
            raise LaunchError("malformed launcher spec (watch.syscalls)")
        report_fd = int(value["report_fd"])
        os.set_inheritable(report_fd, False)  # the command never holds it
        return cls(
            program=Path(str(value["filter"])).read_bytes(),
            report_fd=report_fd,
            names={int(number): str(name) for number, name in names.items()},
            seccomp_nr=int(value["seccomp_nr"]),
        )


def _prctl(option: int, arg: int, what: str) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        raise LaunchError(f"{what} failed: {os.strerror(ctypes.get_errno())}")


def load_seccomp(program: bytes) -> None:
    """Install one compiled BPF program (no-new-privileges must be set already)."""
    if not program or len(program) % 8:
        raise LaunchError("the seccomp filter is empty or malformed")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise LaunchError(f"could not load the seccomp filter: {os.strerror(ctypes.get_errno())}")


def drop_capabilities() -> None:
    """No capability now or after any exec: for a root caller, whose command has no user namespace."""
    last = int(_CAP_LAST_CAP.read_text())
    for cap in range(last + 1):
        _prctl(_PR_CAPBSET_DROP, cap, f"dropping capability {cap} from the bounding set")
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, "clearing ambient capabilities")
    _prctl(_PR_SET_SECUREBITS, _SECBITS_LOCKED_NOROOT, "locking the securebits")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise LaunchError(f"capset failed: {os.strerror(ctypes.get_errno())}")


def apply(spec: dict[str, object]) -> tuple[landlock.LandlockRules, WatchSpec | None]:
    block_fd = spec.get("block_fd")
    if isinstance(block_fd, int) and block_fd >= 0:
        if os.read(block_fd, 1) != b"1":
            raise LaunchError("the parent did not release the command")
        os.close(block_fd)
    rlimits = spec.get("rlimits") or {}
    assert isinstance(rlimits, dict)
    for name, value in rlimits.items():
        resource.setrlimit(_RLIMITS[name], (int(value), int(value)))
    if spec.get("drop_caps"):
        drop_capabilities()
    programs = [
        Path(path).read_bytes() for path in _strings(spec.get("seccomp"))
    ]  # before Landlock hides them
    watch = WatchSpec.parse(spec.get("watch"))
    ports = spec.get("connect_ports")
    rules = landlock.LandlockRules(
        readable=tuple(Path(p) for p in _strings(spec.get("readable"))),
        writable=tuple(Path(p) for p in _strings(spec.get("writable"))),
        write_only=tuple(Path(p) for p in _strings(spec.get("write_only"))),
        listable=tuple(Path(p) for p in _strings(spec.get("listable"))),
        connect_ports=tuple(int(p) for p in ports) if isinstance(ports, list) else None,
        isolate_ipc=bool(spec.get("isolate_ipc", True)),
        minimum_abi=int(str(spec.get("minimum_abi", 1))),
    )
    try:
        landlock.restrict_self(rules)
    except landlock.LandlockError as error:
        raise LaunchError(str(error)) from error
    for program in programs:
        load_seccomp(program)
    return rules, watch


def _run_and_reap(command: list[str], rules: landlock.LandlockRules, watch: WatchSpec | None) -> int:
    """Be the command's init: run it as a child, then kill and reap everything it left behind (an orphan,
    however it detached, is re-parented here: this process is a subreaper). The exit status is the
    command's (128 + N for a signal). Used where no pid namespace ends the command's processes.

    The command runs in a Landlock domain nested in this one (the same rules again): with signal scoping
    (ABI 6) it cannot kill this process to orphan its daemons, while this process can still kill them.
    With `watch`, the command also runs under the write watch's filter and this process serves it."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1, "becoming the command's subreaper")
    for sig in _FORWARDED:
        signal.signal(sig, signal.SIG_IGN)  # they reach the command through its process group
    ours, theirs = socket.socketpair() if watch is not None else (None, None)
    child = os.fork()
    if child == 0:  # pragma: no cover - the command's process
        for sig in _FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        try:
            landlock.restrict_self(rules)
        except landlock.LandlockError as error:
            print(f"corral: the command's own Landlock domain: {error}", file=sys.stderr)
            os._exit(125)
        if watch is not None and theirs is not None and ours is not None:
            ours.close()
            try:
                listener = landlock_watch.install_filter(watch.program, watch.seccomp_nr)
                socket.send_fds(theirs, [b"w"], [listener])
            except OSError as error:
                print(f"corral: the Landlock write watch: {error}", file=sys.stderr)
                os._exit(125)
            os.close(listener)
            theirs.close()
        try:
            os.execvp(command[0], command)  # noqa: S606 - the launcher execs the command itself
        except OSError as error:
            print(f"corral: {command[0]}: {error.strerror}", file=sys.stderr)
            os._exit(127 if isinstance(error, FileNotFoundError) else 126)
    server = _serve_watch(watch, ours, theirs, rules)
    status = 0
    while True:
        pid, wait_status = os.waitpid(-1, 0)
        if pid == child:
            status = os.waitstatus_to_exitcode(wait_status)
            break
    _kill_the_rest()
    if server is not None:
        server.join(timeout=5)  # every caller is gone: its last reports are written
    return status if status >= 0 else 128 - status


def _serve_watch(
    watch: WatchSpec | None,
    ours: socket.socket | None,
    theirs: socket.socket | None,
    rules: landlock.LandlockRules,
) -> landlock_watch.Watch | None:
    """Receive the command's listener and serve it (None when there is no watch, or the command ended
    before it sent one: it then ran nothing)."""
    if watch is None or ours is None or theirs is None:
        return None
    theirs.close()
    try:
        _message, fds, _flags, _address = socket.recv_fds(ours, 1, 1)
    finally:
        ours.close()
    if not fds:
        return None
    granted = [str(p) for p in (*rules.writable, *rules.write_only)]
    server = landlock_watch.Watch(fds[0], watch.report_fd, watch.names, granted)
    server.start()
    return server


def _kill_the_rest() -> None:
    """SIGKILL every remaining descendant until none is left, reaping them."""
    while True:
        children = _children()
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


def _children() -> list[int]:
    pids: list[int] = []
    me = os.getpid()
    try:
        tasks = os.listdir(f"/proc/{me}/task")
    except OSError:
        return pids
    for tid in tasks:
        try:
            with open(f"/proc/{me}/task/{tid}/children", encoding="ascii") as handle:
                pids.extend(int(p) for p in handle.read().split())
        except (OSError, ValueError):
            continue
    return pids


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise LaunchError("malformed launcher spec")
    return [str(item) for item in value]


def _read_spec(fd: int) -> dict[str, object]:
    chunks: list[bytes] = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    spec = json.loads(b"".join(chunks))
    if not isinstance(spec, dict):
        raise LaunchError("malformed launcher spec")
    return spec


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: landlock_exec.py SPEC_FD STATUS_FD -- CMD [ARG...]", file=sys.stderr)
        return 125
    spec_fd, status_fd = int(argv[0]), int(argv[1])
    command = argv[3:]
    try:
        spec = _read_spec(spec_fd)
        rules, watch = apply(spec)
        if "/" not in command[0] and shutil.which(command[0]) is None:
            os.write(status_fd, f"not found: {command[0]}\n".encode(errors="replace"))
            return 127
    except (LaunchError, OSError, ValueError) as error:
        os.write(status_fd, f"{error}\n".encode(errors="replace"))
        return 125
    # The parent stops reading here: other processes may hold the pipe open (bwrap's own do).
    os.write(status_fd, b"ok\n")
    os.close(status_fd)
    if spec.get("reap"):
        return _run_and_reap(command, rules, watch)
    try:
        os.execvp(command[0], command)  # noqa: S606 - the launcher execs the command itself
    except OSError as error:
        print(f"corral: {command[0]}: {error.strerror}", file=sys.stderr)
        return 127 if isinstance(error, FileNotFoundError) else 126
    return 126  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
