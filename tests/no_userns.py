"""Have the kernel refuse new user namespaces to a process and all it starts, as Ubuntu 24.04's AppArmor
does for unprivileged ones: `refuse_user_namespaces` is a `preexec_fn` (`Actor.run(..., preexec=...)`).

A seccomp filter (no-new-privileges set first) refuses `unshare` and `clone` with CLONE_NEWUSER (EPERM)
and `clone3` (ENOSYS, so the C library falls back to `clone`, whose flags the filter can read). Nothing
else changes: whatever bubblewrap tries then fails for real, in the kernel."""

from __future__ import annotations

import ctypes
import errno

import pyseccomp as seccomp

CLONE_NEWUSER = 0x10000000
_PR_SET_NO_NEW_PRIVS = 38


def refuse_user_namespaces() -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    flt = seccomp.SyscallFilter(seccomp.ALLOW)
    new_user = seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
    flt.add_rule(seccomp.ERRNO(errno.EPERM), "unshare", new_user)
    flt.add_rule(seccomp.ERRNO(errno.EPERM), "clone", new_user)
    flt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    flt.load()
