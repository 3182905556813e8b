"""A second seccomp filter for commands with no network namespace (the Landlock backend): IP sockets are
TCP streams only, so Landlock's TCP port rules are the whole story.

Landlock ABI 4+ limits TCP connect and bind by port, and nothing else: a UDP datagram, an SCTP or MPTCP
stream, or a TCP Fast Open `sendto` would go around it. Refused (EPERM):
- `socket(AF_INET | AF_INET6, type)` unless the type is SOCK_STREAM (flags such as SOCK_CLOEXEC allowed)
  and the protocol is 0 or IPPROTO_TCP;
- `sendto`, `sendmsg`, `sendmmsg` with MSG_FASTOPEN (a connect that the connect hook does not see).
AF_NETLINK stays as the main filter has it (NETLINK_ROUTE only); AF_UNIX stays refused by the main filter.
"""

from __future__ import annotations

import errno
import platform
from pathlib import Path

from sandbox.seccomp import AF_INET, AF_INET6, SeccompUnavailable, cached_program, exported_program

SOCK_STREAM = 1
_TYPE_MASK = 0xF
IPPROTO_TCP = 6
MSG_FASTOPEN = 0x20000000
FILTER_VERSION = "1"


def compile_stream_filter() -> bytes:
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError, OSError) as error:
        raise SeccompUnavailable(f"libseccomp is not usable ({error})") from error
    eperm = seccomp.ERRNO(errno.EPERM)
    flt = seccomp.SyscallFilter(seccomp.ALLOW)
    flt.set_attr(seccomp.Attr.ACT_BADARCH, eperm)
    for family in (AF_INET, AF_INET6):
        is_family = seccomp.Arg(0, seccomp.MASKED_EQ, 0xFFFFFFFF, family)
        for sock_type in range(_TYPE_MASK + 1):
            if sock_type != SOCK_STREAM:
                flt.add_rule(
                    eperm, "socket", is_family, seccomp.Arg(1, seccomp.MASKED_EQ, _TYPE_MASK, sock_type)
                )
        # Protocol 0 or 6 only: any bit outside 0b110 refuses, then 2 and 4 themselves.
        for bit in range(32):
            if bit not in (1, 2):
                flt.add_rule(
                    eperm, "socket", is_family, seccomp.Arg(2, seccomp.MASKED_EQ, 1 << bit, 1 << bit)
                )
        for protocol in (2, 4):
            flt.add_rule(eperm, "socket", is_family, seccomp.Arg(2, seccomp.MASKED_EQ, 0xFFFFFFFF, protocol))
    for syscall, flags_arg in (("sendto", 3), ("sendmsg", 2), ("sendmmsg", 3)):
        flt.add_rule(eperm, syscall, seccomp.Arg(flags_arg, seccomp.MASKED_EQ, MSG_FASTOPEN, MSG_FASTOPEN))
    return exported_program(flt)


def stream_filter_path(cache_dir: Path) -> Path:
    """The compiled filter, cached beside the main one."""
    return cached_program(
        cache_dir, "seccomp-stream", f"{FILTER_VERSION}|{platform.machine()}", compile_stream_filter
    )
