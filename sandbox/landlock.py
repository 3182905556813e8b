"""Landlock, the kernel's unprivileged access-control layer, through its three system calls.

Why our own ctypes code: the PyPI bindings are alpha and single-author, and what corral needs is three
system calls and four structures, all stable kernel ABI (`linux/landlock.h`). Everything here fails
closed: a kernel that cannot enforce what was asked for raises `LandlockError` instead of running with
less.

Landlock only ever *allows*: once a ruleset handles an access right, every path lacks it except those
given it by a rule (and their subtrees). A path that must stay unreadable below a readable directory is
therefore carved out: the directory itself is not given the right, only its other entries are
(`carve`). An entry created later in such a directory gets no right at all, which is the allow-list
behaviour corral wants for the home.

What Landlock cannot do, and the callers must not claim: it cannot capture a write (it refuses it), it
does not tell corral which path it refused (its audit records reach only root's audit daemon: the
launcher's write watch, `sandbox.landlock_watch`, finds them), and a rule on a directory covers files
created in it later.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem access rights, by the ABI version that introduced them.
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

_FS_BY_ABI = {
    1: (1 << 13) - 1,
    2: (1 << 14) - 1,
    3: (1 << 15) - 1,
    4: (1 << 15) - 1,
    5: (1 << 16) - 1,
}
READ_ACCESS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
WRITE_ACCESS = (
    FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_CHAR
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SOCK
    | FS_MAKE_FIFO
    | FS_MAKE_BLOCK
    | FS_MAKE_SYM
    | FS_REFER
    | FS_TRUNCATE
    | FS_IOCTL_DEV
)
_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
MAX_CARVED_ENTRIES = 4096


class LandlockError(RuntimeError):
    """Landlock cannot enforce the requested rules (absent, disabled, too old, or a rule failed)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _NetPortAttr(ctypes.Structure):
    _fields_ = (("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64))


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def abi_version() -> int:
    """The Landlock ABI the running kernel offers; 0 when it offers none (absent or disabled)."""
    result = _syscall(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return int(result) if result > 0 else 0


def fs_access_for(abi: int) -> int:
    """Every filesystem right this ABI can handle."""
    return _FS_BY_ABI.get(abi, _FS_BY_ABI[5]) if abi > 0 else 0


@dataclass(frozen=True, slots=True)
class LandlockRules:
    """What a process restricted by `restrict_self` may still do.

    `readable` and `writable` are allow-lists of paths (with their subtrees); a path in neither can be
    neither read nor written. `connect_ports` None leaves TCP unhandled; a tuple (even empty) allows
    connecting to those ports only and binding to none. `isolate_ipc` (ABI 6) stops signals and abstract
    Unix sockets from reaching processes outside the sandbox.
    """

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    write_only: tuple[Path, ...] = ()
    """Files that may be written and truncated but not read (an approved write to a file the command may
    not read: the Landlock backend's re-run)."""
    listable: tuple[Path, ...] = ()
    """Directories whose entries may be listed (names only: no file below them becomes readable)."""
    connect_ports: tuple[int, ...] | None = None
    isolate_ipc: bool = True
    minimum_abi: int = 1
    unsupported: tuple[str, ...] = field(default=())

    def missing(self, abi: int) -> list[str]:
        """What these rules need that an ABI lacks (empty when it can enforce them all)."""
        needs: list[str] = []
        if abi < max(1, self.minimum_abi):
            needs.append(f"Landlock ABI {max(1, self.minimum_abi)} (the kernel offers {abi or 'none'})")
        if self.connect_ports is not None and abi < 4:
            needs.append("TCP connect rules (Landlock ABI 4, Linux 6.7)")
        return needs


def _set_no_new_privs() -> None:
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise LandlockError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")


def _add_path_rule(ruleset: int, path: Path, access: int) -> None:
    try:
        # O_NOFOLLOW: a grant never travels through a link (a link among a carved directory's entries
        # may point at the very hole being carved out); the link's own inode gets the right, harmlessly.
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # nothing there to grant; a path created later under it is not covered (fail closed)
    except OSError as error:
        raise LandlockError(f"cannot open {path} for a Landlock rule: {error.strerror}") from error
    try:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            access &= _FILE_ONLY
        attr = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        result = _syscall(
            ctypes.c_long(_SYS_ADD_RULE), ruleset, _RULE_PATH_BENEATH, ctypes.byref(attr), ctypes.c_uint32(0)
        )
        if result != 0:
            raise LandlockError(f"landlock_add_rule({path}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def _add_port_rule(ruleset: int, port: int) -> None:
    attr = _NetPortAttr(allowed_access=NET_CONNECT_TCP, port=port)
    result = _syscall(
        ctypes.c_long(_SYS_ADD_RULE), ruleset, _RULE_NET_PORT, ctypes.byref(attr), ctypes.c_uint32(0)
    )
    if result != 0:
        raise LandlockError(f"landlock_add_rule(port {port}) failed: {os.strerror(ctypes.get_errno())}")


def restrict_self(rules: LandlockRules) -> int:
    """Restrict the calling thread and everything it later starts; returns the ABI used.

    Meant for a process that is about to `exec` the sandboxed command (a launcher, or a
    `preexec_fn`). Raises LandlockError, leaving the process unrestricted, when anything asked for
    cannot be enforced: the caller must then not run the command.
    """
    abi = abi_version()
    missing = rules.missing(abi)
    if missing:
        raise LandlockError("Landlock cannot enforce this policy: needs " + "; ".join(missing))
    handled_fs = fs_access_for(abi)
    attr = _RulesetAttr(
        handled_access_fs=handled_fs,
        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if rules.connect_ports is not None else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if rules.isolate_ipc and abi >= 6 else 0,
    )
    # Older kernels accept the larger structure as long as the fields they do not know are zero.
    size = ctypes.c_size_t(ctypes.sizeof(_RulesetAttr))
    ruleset = int(_syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr), size, 0))
    if ruleset < 0:
        raise LandlockError(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    try:
        for path in rules.listable:
            _add_path_rule(ruleset, path, FS_READ_DIR & handled_fs)
        for path in rules.readable:
            _add_path_rule(ruleset, path, READ_ACCESS & handled_fs)
        for path in rules.writable:
            _add_path_rule(ruleset, path, (READ_ACCESS | WRITE_ACCESS) & handled_fs)
        for path in rules.write_only:
            _add_path_rule(ruleset, path, (FS_WRITE_FILE | FS_TRUNCATE) & handled_fs)
        for port in rules.connect_ports or ():
            _add_port_rule(ruleset, port)
        _set_no_new_privs()
        if _syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ruleset, ctypes.c_uint32(0)) != 0:
            raise LandlockError(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


def carve(root: Path, holes: Iterable[Path]) -> list[Path]:
    """Paths to grant so that `root`'s subtree is covered except `holes` (and their subtrees).

    Each directory on the way from `root` to a hole is not granted itself; its other entries are. An
    entry created later in such a directory is therefore not covered. Refuses (LandlockError) a directory
    too large to enumerate rather than granting it whole.
    """
    root = Path(os.path.abspath(root))
    inside = sorted(
        {Path(os.path.abspath(h)) for h in holes if Path(os.path.abspath(h)).is_relative_to(root)},
        key=lambda p: len(p.parts),
    )
    if not inside:
        return [root]
    if root in inside:
        return []
    on_the_way: set[Path] = set()
    for hole in inside:
        on_the_way.update(p for p in hole.parents if p.is_relative_to(root))
    granted: list[Path] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                names = sorted(entry.name for entry in entries)
        except FileNotFoundError:
            continue
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EPERM):
                continue  # unreadable to us, so nothing of it to grant
            raise
        if len(names) > MAX_CARVED_ENTRIES:
            raise LandlockError(f"{directory} has more than {MAX_CARVED_ENTRIES} entries to carve around")
        for name in names:
            child = directory / name
            if child in inside:
                continue
            if child in on_the_way:
                pending.append(child)
            else:
                granted.append(child)
    return granted


def readable_except(roots: Sequence[Path], hidden: Iterable[Path]) -> tuple[Path, ...]:
    """Read grants covering `roots` minus `hidden`."""
    holes = tuple(hidden)
    result: list[Path] = []
    for root in roots:
        result.extend(carve(root, holes))
    return tuple(dict.fromkeys(result))
