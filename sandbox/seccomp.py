"""The seccomp filter every sandboxed command runs under, compiled once to BPF and cached.

Refused (EPERM unless noted):
- `socket()` of every address family except an allow-list (a deny-list trails new families: AF_VSOCK
  reaches the hypervisor, AF_PACKET / AF_ALG / AF_BLUETOOTH / AF_TIPC are kernel attack surface):
  - AF_INET, AF_INET6: the network namespace holds only a loopback, where corral's egress proxy listens;
  - AF_NETLINK with NETLINK_ROUTE only: `getifaddrs` (Node's `os.networkInterfaces()`, which dev servers
    call to print their addresses, and glibc's `AI_ADDRCONFIG`) reads interfaces through it. It shows
    only the sandbox's own network namespace (a loopback) and changes nothing without CAP_NET_ADMIN,
    which no sandboxed process has. Every other netlink protocol (audit, netfilter, xfrm, generic
    netlink families, uevents, sock_diag) is refused.
  AF_UNIX is refused, so docker.sock, ssh-agent, D-Bus and every other local daemon are unreachable.
- `socketpair()` of every family except AF_UNIX, and of every AF_UNIX type except SOCK_STREAM and
  SOCK_SEQPACKET: many tools need a stream socketpair (Node's and libuv's child-process pipes, Python's
  multiprocessing), and a connected stream or seqpacket pair reaches nothing outside the process tree
  (both ends are made by the caller; the kernel refuses or ignores an address on them). A datagram pair
  is another matter: `sendto()` with a path delivers to any datagram socket the sandbox can see
  (journald's, `/run/systemd/notify`, a daemon's), so SOCK_DGRAM is refused, and SOCK_RAW with it, which
  the kernel turns into SOCK_DGRAM for AF_UNIX. The type is compared on its low four bits (the kernel's
  type mask; SOCK_CLOEXEC/SOCK_NONBLOCK are flags above it).
  Families are compared on the low 32 bits the kernel reads, so high garbage bits dodge nothing.
- `ptrace`, `process_vm_readv/writev`: no debugging of other processes.
- `io_uring_*` (ENOSYS, so programs fall back): a second syscall path that filters cannot see.
- `keyctl`, `add_key`, `request_key`: the kernel keyring is shared with the host user.
- `bpf`, `perf_event_open`, `userfaultfd`, `kexec_*`, module loading, `setns`, `open_by_handle_at`.
- `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)`: no typing into a terminal (the session is new as well).
- Any non-native ABI (32-bit x86, x32): every syscall fails, so the AF_UNIX rule cannot be dodged through
  `socketcall` or another ABI's numbers.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16
NETLINK_ROUTE = 0
SOCKET_FAMILIES = frozenset({AF_INET, AF_INET6, AF_NETLINK})
"""Families `socket()` may create (AF_NETLINK only with NETLINK_ROUTE)."""
SOCKETPAIR_FAMILIES = frozenset({AF_UNIX})
SOCK_TYPE_MASK = 0xF
SOCKETPAIR_TYPES = frozenset({1, 5})
"""SOCK_STREAM and SOCK_SEQPACKET: the AF_UNIX socketpair types that cannot address a third socket."""
_FAMILY_SPAN = 64
"""Families below this are refused one by one unless allowed; any bit above it refuses the call."""
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

_DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "setns",
    "open_by_handle_at",
    "name_to_handle_at",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
)
_NOSYS = ("io_uring_setup", "io_uring_enter", "io_uring_register")
FILTER_VERSION = "2"


@dataclass(frozen=True, slots=True)
class FilterProfile:
    """Which filter to build. The default is the one every bwrap command runs under; a backend that
    runs its own kernel inside the sandbox (gVisor's runsc) names the few things that kernel itself
    needs, and nothing else changes."""

    name: str = "bwrap"
    unix_sockets: bool = False
    """`socket(AF_UNIX)` allowed (runsc's control socket between its own processes)."""
    allowed: frozenset[str] = frozenset()
    """Syscalls of `_DENIED` this profile allows."""
    any_socketpair_type: bool = False
    """AF_UNIX socketpairs of every type (runsc's own processes pass datagrams; the commands it runs
    see gVisor's kernel, never the host's sockets). Otherwise only stream and seqpacket pairs."""


BWRAP_FILTER = FilterProfile()
BWRAP_AGENT_FILTER = FilterProfile(name="bwrap-agent", unix_sockets=True)
"""The default filter with `socket(AF_UNIX)` let through: used only under `sandbox.unixgate`'s filter,
which turns every such socket into one connected to corral's ssh-agent filter."""


class SeccompUnavailable(RuntimeError):
    """libseccomp (or pyseccomp) is missing: the sandbox cannot start without the filter."""


def _socket_families(profile: FilterProfile) -> frozenset[int]:
    return SOCKET_FAMILIES | {AF_UNIX} if profile.unix_sockets else SOCKET_FAMILIES


def _socketpair_types(profile: FilterProfile) -> frozenset[int]:
    return frozenset(range(SOCK_TYPE_MASK + 1)) if profile.any_socketpair_type else SOCKETPAIR_TYPES


def _denied(profile: FilterProfile) -> tuple[str, ...]:
    return tuple(name for name in _DENIED if name not in profile.allowed)


def _spec(profile: FilterProfile = BWRAP_FILTER) -> str:
    return "|".join(
        (
            FILTER_VERSION,
            os.uname().machine,
            *_denied(profile),
            *_NOSYS,
            ",".join(map(str, sorted(_socket_families(profile)))),
            ",".join(map(str, sorted(SOCKETPAIR_FAMILIES))),
            ",".join(map(str, sorted(_socketpair_types(profile)))),
            str(TIOCSTI),
        )
    )


def compile_filter(profile: FilterProfile = BWRAP_FILTER) -> bytes:
    """Build the BPF program with libseccomp. Raises SeccompUnavailable when it cannot."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError, OSError) as error:
        raise SeccompUnavailable(
            f"libseccomp is not usable ({error}); install it (Debian/Ubuntu: apt-get install libseccomp2)"
        ) from error
    eperm = seccomp.ERRNO(errno.EPERM)
    flt = seccomp.SyscallFilter(seccomp.ALLOW)
    flt.set_attr(seccomp.Attr.ACT_BADARCH, eperm)
    for syscall, allowed in (("socket", _socket_families(profile)), ("socketpair", SOCKETPAIR_FAMILIES)):
        for family in range(_FAMILY_SPAN):
            if family not in allowed:
                flt.add_rule(eperm, syscall, seccomp.Arg(0, seccomp.MASKED_EQ, 0xFFFFFFFF, family))
        for bit in range(_FAMILY_SPAN.bit_length() - 1, 32):
            flt.add_rule(eperm, syscall, seccomp.Arg(0, seccomp.MASKED_EQ, 1 << bit, 1 << bit))
    for sock_type in range(SOCK_TYPE_MASK + 1):
        if sock_type not in _socketpair_types(profile):
            flt.add_rule(eperm, "socketpair", seccomp.Arg(1, seccomp.MASKED_EQ, SOCK_TYPE_MASK, sock_type))
    flt.add_rule(
        eperm,
        "socket",
        seccomp.Arg(0, seccomp.MASKED_EQ, 0xFFFFFFFF, AF_NETLINK),
        seccomp.Arg(2, seccomp.NE, NETLINK_ROUTE),
    )
    flt.add_rule(eperm, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, TIOCSTI))
    flt.add_rule(eperm, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, TIOCLINUX))
    for name in _denied(profile):
        flt.add_rule(eperm, name)
    for name in _NOSYS:
        flt.add_rule(seccomp.ERRNO(errno.ENOSYS), name)
    return exported_program(flt)


def exported_program(flt: Any) -> bytes:
    """A libseccomp filter as the BPF program bwrap's `--seccomp` (or a launcher) loads."""
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


def cached_program(cache_dir: Path, prefix: str, spec: str, build: Callable[[], bytes]) -> Path:
    """The program for `spec` from the cache when it is there, else built and written atomically (a
    changed spec is a new file: a cached program is never reused for another filter)."""
    digest = hashlib.sha256(spec.encode()).hexdigest()[:16]
    path = cache_dir / f"{prefix}-{digest}.bpf"
    try:
        if path.stat().st_size > 0:
            return path
    except FileNotFoundError:
        pass
    program = build()
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=cache_dir, prefix=".seccomp-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(program)
    os.replace(temp, path)
    return path


def filter_path(cache_dir: Path, profile: FilterProfile = BWRAP_FILTER) -> Path:
    """The compiled filter, from the cache when it is there (built and written atomically otherwise)."""
    prefix = "seccomp" if profile == BWRAP_FILTER else f"seccomp-{profile.name}"
    return cached_program(cache_dir, prefix, _spec(profile), lambda: compile_filter(profile))
