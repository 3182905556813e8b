"""The seccomp filter that shows the Landlock launcher every write-shaped system call of the command
(`sandbox.landlock_watch` serves it), compiled once with libseccomp and cached beside the others.

Its action for the calls of `landlock_watch.WATCHED` is a user notification: `open` and `openat` only
with a write access mode, O_CREAT or O_TRUNC (a read-only open costs nothing); the others always.
Everything else, another ABI's calls included, is allowed here (the main filter decides it). The calls' numbers on this machine go to
the launcher with the filter (`syscall_names`), so it knows what it was shown.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from types import ModuleType

from sandbox.landlock_watch import WATCHED
from sandbox.seccomp import SeccompUnavailable, cached_program, exported_program

FILTER_VERSION = "2"
_FLAGS_ARG = {"open": 1, "openat": 2}
_O_ACCMODE = 3


def _seccomp() -> ModuleType:
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError, OSError) as error:
        raise SeccompUnavailable(f"libseccomp is not usable ({error})") from error
    module: ModuleType = seccomp
    return module


def syscall_names() -> dict[int, str]:
    """The watched calls by their number on this machine (a call this architecture lacks is left out)."""
    seccomp = _seccomp()
    arch = seccomp.system_arch()
    names: dict[int, str] = {}
    for name in WATCHED:
        try:
            number = int(seccomp.resolve_syscall(arch, name))
        except (ValueError, OSError, RuntimeError):
            continue
        if number >= 0:
            names[number] = name
    return names


def seccomp_number() -> int:
    seccomp = _seccomp()
    return int(seccomp.resolve_syscall(seccomp.system_arch(), "seccomp"))


def compile_watch_filter() -> bytes:
    seccomp = _seccomp()
    notify = seccomp.NOTIFY
    flt = seccomp.SyscallFilter(seccomp.ALLOW)
    # Another ABI's calls are the main filter's to refuse (EPERM); libseccomp's own default would kill.
    flt.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.ALLOW)
    for name in syscall_names().values():
        flags_arg = _FLAGS_ARG.get(name)
        if flags_arg is None:
            flt.add_rule(notify, name)
            continue
        for mask, value in (
            (_O_ACCMODE, os.O_WRONLY),
            (_O_ACCMODE, os.O_RDWR),
            (os.O_CREAT, os.O_CREAT),
            (os.O_TRUNC, os.O_TRUNC),
        ):
            flt.add_rule(notify, name, seccomp.Arg(flags_arg, seccomp.MASKED_EQ, mask, value))
    return exported_program(flt)


def watch_filter_path(cache_dir: Path) -> Path:
    """The compiled filter, cached beside the main one."""
    return cached_program(
        cache_dir, "seccomp-watch", f"{FILTER_VERSION}|{platform.machine()}|{WATCHED}", compile_watch_filter
    )
