"""A command's sandbox kept alive after the command ended, because it left processes in the background.

In a live session (`sandbox.sessionns`), a command that leaves processes running (`cmd &`, `nohup`,
`setsid`, a double fork, an agent's run-in-background) does not take them down when it ends: its
sandbox (bwrap's pid 1 and its pid namespace, its mounts, its capture layers and its cgroup) stays as it
is, held here, until the processes exit on their own, are stopped (`stop`), or the session ends (the
keeper's pid namespace takes them all). Its slot is not reused meanwhile.

What such a sandbox wrote while its command ran was read and decided when the command ended, with the
processes still alive: every read of a layer is fd-relative and inode-checked (`sandbox.layerfs`) and
nothing is moved out of a layer while a process may still write it (copies only, `exclusive=False` in
`sandbox.apply`). What they write later is read again, with the pid namespace proven empty, when the
sandbox ends (`SandboxRunner.finish_background`), and decided then like any command's writes.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.bwrap import SandboxLayout
from sandbox.limits import RunCgroup
from sandbox.pidns import SandboxInit
from sandbox.policy import Policy
from sandbox.slots import Slot

_ids = itertools.count(1)
_MAX_LISTED = 64


@dataclass(frozen=True, slots=True)
class BackgroundProcess:
    """One process of a kept sandbox as the host sees it (its argv is the sandbox's: hostile text)."""

    pid: int
    argv: tuple[str, ...]


@dataclass
class KeptSandbox:
    """A sandbox whose command ended while processes it started kept running."""

    init: SandboxInit
    slot: Slot
    layout: SandboxLayout
    policy: Policy
    command: tuple[str, ...]
    cgroup: RunCgroup | None = None
    started_at: float = field(default_factory=time.time)
    checkpoint_ns: int = 0
    """When its layers were last read and decided: a host entry changed after it is a conflict."""
    id: int = field(default_factory=lambda: next(_ids))

    def running(self) -> bool:
        """Whether any process of it is still alive (pid 1 has not finished exiting)."""
        return not self.init.finished()

    def processes(self) -> list[BackgroundProcess]:
        """Its processes below bwrap's pid 1, breadth first, at most a bounded number."""
        found: list[BackgroundProcess] = []
        pending = _children(self.init.pid)
        while pending and len(found) < _MAX_LISTED:
            pid = pending.pop(0)
            argv = _argv(pid)
            if argv is None:
                continue
            found.append(BackgroundProcess(pid, argv))
            pending.extend(_children(pid))
        return found

    def listening_ports(self, net_namespace_of: int) -> list[int]:
        """TCP ports its processes listen on, read from the session's network namespace (the keeper,
        `net_namespace_of`) and matched to its processes' socket descriptors."""
        listening = _listening_inodes(net_namespace_of)
        if not listening:
            return []
        ports: set[int] = set()
        for process in self.processes():
            try:
                names = os.listdir(f"/proc/{process.pid}/fd")
            except OSError:
                continue
            for name in names:
                try:
                    target = os.readlink(f"/proc/{process.pid}/fd/{name}")
                except OSError:
                    continue
                if target.startswith("socket:[") and target.endswith("]"):
                    port = listening.get(target[8:-1])
                    if port is not None:
                        ports.add(port)
        return sorted(ports)

    def stop(self, timeout: float = 30.0) -> None:
        """Kill every process of it and wait until its pid namespace is empty (`SandboxLingered`)."""
        self.init.end(timeout)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _argv(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return tuple(p.decode(errors="replace") for p in parts) or None


def _listening_inodes(pid: int) -> dict[str, int]:
    """socket inode -> port of every TCP socket listening in the network namespace of `pid`."""
    found: dict[str, int] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # TCP_LISTEN
                try:
                    found[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
                except (IndexError, ValueError):
                    continue
    return found


def still_running_below(init_pid: int) -> bool:
    """Whether bwrap's pid 1 has a child that is not a zombie: the command left processes behind."""
    for child in _children(init_pid):
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("State:"):
                    if not line.split()[1].startswith(("Z", "X")):
                        return True
                    break
        except OSError:
            continue
    return False
