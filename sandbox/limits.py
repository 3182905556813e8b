"""Resource bounds for one sandboxed command: how many processes, how much memory, how large a file
and how large each tmpfs, and the one line that says a command ran into them.

A sandboxed command must not be able to make the host unusable (a fork bomb, a tmpfs filled to the
size of the machine's memory, one file the size of the disk). Mechanisms, best first:

- **systemd scope**: bwrap starts in a transient scope (`systemd-run --user --scope`, or the system
  manager for a root caller) with `TasksMax` and `MemoryMax`: the kernel's cgroup controllers bound the
  whole command, every process and its tmpfs pages together. Used only when a probe shows the manager
  answers and passes file descriptors through (bwrap's status and seccomp fds must reach it).
- **cgroup**: a cgroup we may write ourselves, below our own (cgroup v2 when it is delegated to us with
  `pids` enabled for children, or the cgroup v1 `pids`/`memory` hierarchies, which root can write). One
  child cgroup per command with `pids.max` and a memory limit; bwrap's processes join it while bwrap
  holds the sandbox before the command starts, so nothing the command starts is outside it.
- **rlimits**, always (alone when there is no scope): set with `prlimit` on the sandbox's first
  process while bwrap holds it before the command starts, so everything the command starts inherits
  them and nothing in the sandbox can raise them (no CAP_SYS_RESOURCE there).
  `RLIMIT_NPROC` is counted per user *and user namespace* since Linux 5.14: the sandbox has its own
  user namespace, so the limit counts the command's own processes only, never the caller's other
  processes on the host. On older kernels it would count every process of the host uid, so it is not
  set there (`doctor` says so). The kernel never applies `RLIMIT_NPROC` to host uid 0, so for a root
  caller only a cgroup bounds the process count. `RLIMIT_DATA` bounds each process's private writable memory without
  refusing large address-space reservations (V8 and the JVM reserve far more than they use);
  `RLIMIT_FSIZE` bounds one file.

Every tmpfs the sandbox mounts has a size, and what cannot be sized (bwrap's /dev) is read-only.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
GIB = 1 << 30
DEFAULT_MAX_PROCESSES = 4096
"""Processes and threads together (the kernel counts both): room for parallel builds and JVMs."""
MAX_TMPFS_BYTES = 8 * GIB
MAX_FILE_BYTES = 64 * GIB
PROBE_TIMEOUT_S = 5.0
SAMPLE_INTERVAL_S = 0.2
NPROC_PER_NAMESPACE_KERNEL = (5, 14)


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """The bounds of one command.

    max_processes: processes and threads of the command together.
    max_memory_bytes: the whole command under a scope (`MemoryMax`); each process's data (rlimits).
    max_file_bytes: the largest file the command can write (`RLIMIT_FSIZE`; SIGXFSZ beyond).
    tmpfs_bytes: each tmpfs the sandbox mounts (/tmp, /var/tmp, /dev/shm).
    """

    max_processes: int
    max_memory_bytes: int
    max_file_bytes: int
    tmpfs_bytes: int


def physical_memory() -> int:
    """The machine's memory in bytes (8 GiB when /proc/meminfo cannot be read)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 * GIB


def default_limits(
    *, max_processes: int | None = None, memory_bytes: int | None = None, tmpfs_bytes: int | None = None
) -> ResourceLimits:
    """Bounds that leave the host usable: half the memory for the command, a quarter (at most 8 GiB)
    for each tmpfs. The arguments override single values (the user's `[limits]` settings)."""
    memory = physical_memory()
    return ResourceLimits(
        max_processes=max_processes or DEFAULT_MAX_PROCESSES,
        max_memory_bytes=memory_bytes or memory // 2,
        max_file_bytes=MAX_FILE_BYTES,
        tmpfs_bytes=tmpfs_bytes or min(memory // 4, MAX_TMPFS_BYTES),
    )


def _kernel_version() -> tuple[int, ...]:
    parts: list[int] = []
    for token in os.uname().release.split("-")[0].split(".")[:2]:
        digits = "".join(ch for ch in token if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def nproc_counts_per_namespace() -> bool:
    """Whether RLIMIT_NPROC counts per user namespace (Linux >= 5.14), so setting it inside the sandbox
    bounds the command alone."""
    return _kernel_version() >= NPROC_PER_NAMESPACE_KERNEL


@dataclass(frozen=True, slots=True)
class CgroupParents:
    """Writable cgroup directories under which each command gets a child: `version` 2 (one directory for
    both controllers) or 1 (one per hierarchy)."""

    version: int
    pids: Path
    memory: Path | None


@dataclass(frozen=True, slots=True)
class Mechanism:
    """How the limits are enforced: `scope_argv` prefixes bwrap's argv (empty: no scope); `cgroups`
    are the parents of per-command cgroups (None: none)."""

    name: str
    detail: str
    scope_argv: tuple[str, ...] = ()
    cgroups: CgroupParents | None = None

    @property
    def bounds_total(self) -> bool:
        """Whether processes and memory are bounded for the command as a whole (a cgroup)."""
        return bool(self.scope_argv) or self.cgroups is not None


def _scope_argv(limits: ResourceLimits, systemd_run: str) -> list[str]:
    user = [] if os.geteuid() == 0 else ["--user"]
    return [
        systemd_run,
        *user,
        "--scope",
        "--quiet",
        "--collect",
        "-p",
        f"TasksMax={limits.max_processes}",
        "-p",
        f"MemoryMax={limits.max_memory_bytes}",
        "-p",
        "MemorySwapMax=0",
        "--",
    ]


def _manager_present() -> str | None:
    """Why no systemd manager can give us a scope, or None when one might."""
    if os.geteuid() == 0:
        return None if os.path.isdir("/run/systemd/system") else "systemd is not the init system"
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if not runtime or not os.path.exists(os.path.join(runtime, "systemd", "private")):
        return "no systemd user manager (no $XDG_RUNTIME_DIR/systemd/private)"
    return None


def _probe_scope(argv: list[str]) -> str:
    """Run `/bin/sh` in a scope that must see a passed fd; "" when it works, else why not."""
    read_end, write_end = os.pipe()
    try:
        probe = subprocess.run(
            [*argv, "/bin/sh", "-c", f"test -e /proc/self/fd/{write_end}"],
            pass_fds=[write_end],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return str(error)
    finally:
        os.close(read_end)
        os.close(write_end)
    if probe.returncode == 0:
        return ""
    lines = probe.stderr.decode("utf-8", "replace").strip().splitlines()
    return f"systemd-run failed: {lines[-1] if lines else probe.returncode}"


def _mount_points() -> list[tuple[str, str, set[str]]]:
    """(mount point, filesystem type, super options) of every cgroup filesystem."""
    found: list[tuple[str, str, set[str]]] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                left, _, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                    found.append((fields[4], tail[0], set(tail[2].split(","))))
    except OSError:
        pass
    return found


def _own_cgroups() -> dict[str, str]:
    """Our cgroup path per hierarchy: key "" for cgroup v2, else the v1 controller names."""
    paths: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    for controller in parts[1].split(",") if parts[1] else [""]:
                        paths[controller] = parts[2]
    except OSError:
        pass
    return paths


def _writable_cgroup(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK) and os.access(path / "cgroup.procs", os.W_OK)


def find_cgroup_parents() -> tuple[CgroupParents | None, str]:
    """The cgroup(s) below our own where a command's cgroup can be made, or (None, why not).

    cgroup v2: our own cgroup, when it is writable and already enables `pids` for its children (a
    delegated subtree; the kernel forbids enabling it while we are a process in it). cgroup v1: our
    cgroup in the `pids` (and `memory`) hierarchies, when writable (root)."""
    mounts = _mount_points()
    own = _own_cgroups()
    for point, kind, _options in mounts:
        if kind != "cgroup2" or "" not in own:
            continue
        here = Path(point + own[""].rstrip("/"))
        try:
            enabled = (here / "cgroup.subtree_control").read_text().split()
        except OSError:
            continue
        if "pids" in enabled and _writable_cgroup(here):
            return CgroupParents(2, here, here if "memory" in enabled else None), ""
    found: dict[str, Path] = {}
    for point, kind, options in mounts:
        if kind != "cgroup":
            continue
        for controller in ("pids", "memory"):
            if controller in options and controller in own:
                here = Path(point + own[controller].rstrip("/"))
                if _writable_cgroup(here):
                    found[controller] = here
    if "pids" in found:
        return CgroupParents(1, found["pids"], found.get("memory")), ""
    return None, "no writable cgroup with the pids controller"


def detect_mechanism(limits: ResourceLimits) -> Mechanism:
    """A systemd scope when a probe shows one works, else a cgroup we can write, else rlimits alone.
    Never raises: every failed probe falls through to the next mechanism."""
    rlimits = "rlimits (processes per sandbox, data per process, file size)"
    if not nproc_counts_per_namespace():
        rlimits = (
            "rlimits (data per process, file size; no process limit: kernel < 5.14 counts it per host user)"
        )
    systemd_run = shutil.which("systemd-run")
    scope_reason = "systemd-run not installed" if systemd_run is None else _manager_present()
    if systemd_run is not None and scope_reason is None:
        argv = _scope_argv(limits, systemd_run)
        scope_reason = _probe_scope(argv)
        if not scope_reason:
            return Mechanism(
                "systemd scope",
                f"cgroup via a systemd scope (TasksMax={limits.max_processes}, "
                f"MemoryMax={limits.max_memory_bytes // MIB} MiB) and {rlimits}",
                scope_argv=tuple(argv),
            )
    parents, cgroup_reason = find_cgroup_parents()
    if parents is not None:
        memory = f"memory in {parents.memory}" if parents.memory else "no memory controller"
        return Mechanism(
            "cgroup",
            f"cgroup v{parents.version} (pids in {parents.pids}, {memory}) and {rlimits}",
            cgroups=parents,
        )
    return Mechanism("rlimits", f"{rlimits}; no systemd scope ({scope_reason}), {cgroup_reason}")


class RunCgroup:
    """The cgroup(s) of one command: made before it starts, removed after it ended."""

    def __init__(self, parents: CgroupParents, limits: ResourceLimits, name: str) -> None:
        self.version = parents.version
        self.pids = parents.pids / name
        self.memory = parents.memory / name if parents.memory is not None else None
        self._made: list[Path] = []
        try:
            for directory in dict.fromkeys(d for d in (self.pids, self.memory) if d is not None):
                directory.mkdir(mode=0o755)
                self._made.append(directory)
            _write(self.pids / "pids.max", str(limits.max_processes))
            if self.memory is not None:
                if self.version == 2:
                    _write(self.memory / "memory.max", str(limits.max_memory_bytes))
                    _write_optional(self.memory / "memory.swap.max", "0")
                else:
                    _write(self.memory / "memory.limit_in_bytes", str(limits.max_memory_bytes))
        except OSError:
            self.remove()
            raise

    def add(self, pid: int) -> None:
        """Move process `pid` (all its threads) into the command's cgroups. Raises OSError."""
        for directory in self._made:
            _write(directory / "cgroup.procs", str(pid))

    def notices(self, limits: ResourceLimits) -> list[str]:
        """Lines for the bounds the kernel enforced (its own counters: nothing is missed)."""
        lines: list[str] = []
        if _event(self.pids / "pids.events", "max") > 0:
            lines.append(_PROCESS_LINE.format(limit=limits.max_processes))
        if self.memory is not None:
            if self.version == 2:
                hit = _event(self.memory / "memory.events", "oom_kill")
            else:
                hit = _counter(self.memory / "memory.failcnt")
            if hit > 0:
                lines.append(
                    "corral: resource limit: the command reached its memory limit "
                    f"({limits.max_memory_bytes // MIB} MiB); allocations failed or processes were killed"
                )
        return lines

    def remove(self) -> None:
        """Remove the cgroups (retried briefly: the kernel frees a cgroup a moment after its last task)."""
        for directory in reversed(self._made):
            for _attempt in range(100):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    threading.Event().wait(0.02)
        self._made.clear()


CGROUP_PREFIX = "corral-"


def cgroup_name(owner_pid: int, token: str) -> str:
    """The name of a command's cgroup: the pid of the corral process that made it, and a token."""
    return f"{CGROUP_PREFIX}{owner_pid}-{token}"


def sweep_stale_cgroups(parents: CgroupParents) -> int:
    """Remove empty command cgroups left by corral processes that died before their clean-up (killed
    mid-run); returns how many. A cgroup whose maker still runs, or that still holds a task, is kept."""
    removed = 0
    for parent in dict.fromkeys(p for p in (parents.pids, parents.memory) if p is not None):
        try:
            names = [entry.name for entry in os.scandir(parent) if entry.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for name in names:
            owner = name[len(CGROUP_PREFIX) :].split("-", 1)[0]
            if not name.startswith(CGROUP_PREFIX) or not owner.isdigit() or _alive(int(owner)):
                continue
            try:
                (parent / name).rmdir()
                removed += 1
            except OSError:
                continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PROCESS_LINE = (
    "corral: resource limit: the command reached its process limit "
    "({limit} processes and threads); further forks failed"
)


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def _write_optional(path: Path, text: str) -> None:
    try:
        _write(path, text)
    except OSError:
        pass


def _event(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _counter(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def apply_rlimits(pid: int, limits: ResourceLimits) -> None:
    """Set the command's rlimits on `pid`, the sandbox's first process, which bwrap holds (block fd)
    until this returns: everything the command starts inherits them. Raises OSError (fail closed: the
    caller kills the sandbox rather than run it unbounded)."""
    if nproc_counts_per_namespace():
        resource.prlimit(pid, resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.prlimit(pid, resource.RLIMIT_DATA, (limits.max_memory_bytes, limits.max_memory_bytes))
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))


def _descendants(root: int, cap: int) -> int:
    """How many tasks (threads included) run below `root`, counted up to `cap`."""
    count = 0
    pending = [root]
    while pending and count < cap:
        pid = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        count += len(tasks)
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as handle:
                    pending.extend(int(child) for child in handle.read().split())
            except (OSError, ValueError):
                continue
    return count


class ResourceWatch:
    """Samples a running sandbox from outside so that running into a bound is reported, not silent:
    the task count of its process tree against the process limit, and the free space of each sized
    tmpfs (seen through `/proc/PID/root`, the sandbox's own mount namespace)."""

    def __init__(
        self, pid: int, limits: ResourceLimits, tmpfs_targets: tuple[Path, ...], *, count_tasks: bool = True
    ) -> None:
        self._pid = pid
        self._count_tasks = count_tasks
        self._limits = limits
        self._targets = tmpfs_targets
        self._stop = threading.Event()
        self.peak_tasks = 0
        self.full: set[Path] = set()
        self._thread = threading.Thread(target=self._loop, name="corral-resource-watch", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        if self._count_tasks:
            self.peak_tasks = max(self.peak_tasks, _descendants(self._pid, self._limits.max_processes + 1))
        for target in self._targets:
            if target in self.full:
                continue
            try:
                info = os.statvfs(f"/proc/{self._pid}/root{target}")
            except OSError:
                continue
            if info.f_blocks and info.f_bavail * info.f_frsize < max(
                MIB, info.f_blocks * info.f_frsize // 100
            ):
                self.full.add(target)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._sample()

    def stop(self) -> list[str]:
        """Stop sampling; one line per bound the command ran into."""
        self._stop.set()
        self._thread.join(timeout=2)
        notices: list[str] = []
        # The sampler counts bwrap's own init too and may miss the last few forks: close to the limit is
        # at the limit.
        if self.peak_tasks >= self._limits.max_processes * 9 // 10:
            notices.append(_PROCESS_LINE.format(limit=self._limits.max_processes))
        for target in sorted(self.full):
            notices.append(
                f"corral: resource limit: {target} inside the sandbox is full "
                f"({self._limits.tmpfs_bytes // MIB} MiB); further writes there failed"
            )
        return notices
