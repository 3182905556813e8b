"""Prove that nothing sandboxed is still running before corral reads a capture layer.

bwrap returns as soon as the command's first process exits, while pid 1 of the sandbox's pid namespace
and every background process die later (`--die-with-parent` only sends the signal). `SandboxInit` holds a
pidfd on that pid 1 (bwrap's child) from before the command starts: `end()` SIGKILLs it, which makes the
kernel kill every process in the namespace, and then waits until pid 1 has finished exiting. The kernel
lets the init of a pid namespace finish exiting (become a zombie, or be reaped) only once every other
process of the namespace is gone (`zap_pid_ns_processes`), double-forked, SCHED_IDLE and nested-namespace
ones included; so when `end()` returns, no sandboxed process exists, and none can be created again.

The pidfd is taken while pid 1 is held at bwrap's `--block-fd` (the command has not started), and is
checked to be bwrap's own child and pid 1 of a namespace of its own, so a recycled pid can never be
mistaken for it. Failing any of that is a setup failure: nothing runs.
"""

from __future__ import annotations

import os
import select
import signal
import time


class SandboxLingered(RuntimeError):
    """Sandboxed processes are still alive after the deadline; their layers are never read."""


class SandboxInit:
    """pid 1 of one sandbox's pid namespace, held by a pidfd and a /proc directory fd."""

    def __init__(self, pid: int, bwrap_pid: int) -> None:
        self.pid = pid
        self._pidfd = os.pidfd_open(pid)
        try:
            self._proc_fd = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            os.close(self._pidfd)
            raise
        try:
            self._verify(bwrap_pid)
        except BaseException:
            self.close()
            raise

    def _verify(self, bwrap_pid: int) -> None:
        status = self._status()
        if status is None:
            raise OSError(f"the sandbox's first process {self.pid} is gone")
        ppid = status.get("PPid", "")
        nspid = status.get("NSpid", "").split()
        if ppid != str(bwrap_pid) or len(nspid) < 2 or nspid[-1] != "1":
            raise OSError(f"process {self.pid} is not the init of bwrap's pid namespace")
        # Still alive after /proc was read: the pidfd and /proc fd name the process just checked.
        signal.pidfd_send_signal(self._pidfd, 0)

    def _status(self) -> dict[str, str] | None:
        try:
            fd = os.open("status", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._proc_fd)
        except OSError:
            return None
        try:
            text = os.read(fd, 65536).decode(errors="replace")
        except OSError:
            return None
        finally:
            os.close(fd)
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return fields

    def finished(self) -> bool:
        """Every process of the namespace is gone (pid 1 finished exiting)."""
        return self._finished()

    def _finished(self) -> bool:
        """pid 1 is a zombie or reaped: the kernel has already removed every other process."""
        status = self._status()
        return status is None or status.get("State", "").startswith(("Z", "X"))

    def end(self, timeout: float = 30.0) -> None:
        """Kill the whole namespace and wait until it is empty; SandboxLingered after `timeout`."""
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if poller.poll(max(0, int(remaining * 1000))) and self._finished():
                return
            if self._finished():
                return
            if remaining <= 0:
                raise SandboxLingered(
                    f"sandboxed processes were still running {timeout:.0f} s after the command ended"
                )
            time.sleep(0.005)

    def close(self) -> None:
        for fd in (self._pidfd, self._proc_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._pidfd = self._proc_fd = -1
