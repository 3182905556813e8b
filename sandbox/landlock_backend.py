"""The Landlock backend: where bubblewrap cannot start (e.g. Ubuntu's AppArmor blocks the unprivileged user
namespaces it needs), the command runs on the host's own filesystem and network, restricted by Landlock.

What it enforces, from the same `Policy`:
- reads: everything except the hidden paths and the homes (but their read allow-list). Landlock only
  allows, so every directory on the way to a hidden path is left out and its other entries are granted
  one by one (`sandbox.landlock.carve`): an entry created later in such a directory is not readable;
- writes: the workspace (and the project's writable paths), a private temp dir (`TMPDIR`) and a few
  device nodes (/dev/null, the terminal); everything else is refused, not captured. The launcher's write
  watch (`sandbox.landlock_watch`) reports each refused write by path (`sandbox.landlock_refusals`): an
  approved one re-runs the whole command with exactly that path writable (`settle`), and every such
  prompt says so before the person answers;
- network: TCP connect to corral's proxy port only (ABI >= 4), every bind refused; the proxy listens on
  the host's loopback on a port chosen for this command; UDP and other IP protocols refused by a second
  seccomp filter (`sandbox.seccomp_stream`);
- no-new-privileges, the main seccomp filter (`sandbox.seccomp`), the filtered environment, signals and
  abstract Unix sockets scoped to the command (ABI 6), every capability dropped for a root caller,
  resource bounds (a cgroup where corral can make one, else rlimits).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from boundary.violations import Change, ChangeOp, Violation
from sandbox.apply import ApplyOutcome
from sandbox.backend import BackendParams, BackendTraits
from sandbox.bwrap import SandboxSetupError
from sandbox.host_proxy import open_listener, serve
from sandbox.landlock import LandlockError, abi_version, readable_except
from sandbox.landlock_launch import Launch, LaunchFailed, host_python
from sandbox.landlock_refusals import Grants, grant, parse_reports, refusals_from, standing
from sandbox.landlock_watch_filter import seccomp_number, syscall_names, watch_filter_path
from sandbox.limits import (
    Mechanism,
    RunCgroup,
    cgroup_name,
    default_limits,
    detect_mechanism,
)
from sandbox.policy import Policy
from sandbox.report import RunResult
from sandbox.runner import NetworkHook, StdioSpec, _default_signals_in_child
from sandbox.seccomp import SeccompUnavailable, filter_path
from sandbox.seccomp_stream import stream_filter_path

MINIMUM_ABI = 4
"""TCP rules: without them the network could not be limited to the proxy."""
DEVICE_WRITES = (
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
)
_INHERIT = StdioSpec()
REPORT_WAIT_S = 10.0
"""How long the reports may take to arrive after the launcher ended (its last line is written by then)."""


@dataclass(frozen=True, slots=True)
class _Pending:
    """What a re-run needs: the same command, policy, output and network."""

    command: tuple[str, ...]
    policy: Policy
    stdio: StdioSpec
    network: NetworkHook | None


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


class LandlockBackend:
    """Runs commands on the host under Landlock, seccomp and no-new-privileges."""

    traits = BackendTraits(
        name="landlock",
        title=f"Landlock (Linux security module, ABI >= {MINIMUM_ABI}; no namespaces)",
        enforces=(
            "reads of everything but the hidden paths and the homes' non-allow-listed entries; writes to the "
            "workspace and a private temp dir only; TCP only to corral's proxy port, no bind, no UDP; "
            "no-new-privileges, the seccomp filter, capabilities dropped, resource limits"
        ),
        cannot=(
            "cannot protect paths in the workspace (git hooks and config, agent and IDE config, shell "
            "start-up files): Landlock cannot refuse one name in a writable directory",
            "cannot capture a write: a write outside the workspace is refused (the command sees EACCES) and "
            "reported; approving it re-runs the whole command with that path writable (a new file is "
            "created empty first), which the prompt says before you answer; a refused delete, rename or "
            "link is only reported (allowing one would take its whole directory)",
            "cannot report reads of hidden paths (refused without a decoy to watch), and refuses to run "
            "(exit 125) when a hidden path lies inside the workspace (a project's paths.hidden)",
            "cannot limit TCP by address: a host listening on the proxy's port (random per command) is "
            "reachable directly",
            "no private /tmp, /var/tmp or /dev/shm (only TMPDIR is private; the shared ones are read-only)",
            "no pid or network namespace: other processes are visible in /proc and the host's network "
            "interfaces are listed (the launcher kills what the command leaves behind, as bwrap's init does)",
            "no private /tmp tmpfs to bound: disk use is bounded per file only",
            "tool caches in the home are read-only (no per-project cache layer)",
            "with Landlock ABI < 6 (Linux < 6.12), signals and abstract Unix sockets reach the host's "
            "processes of the same user",
        ),
        captures_writes=False,
    )

    def __init__(self, params: BackendParams) -> None:
        self.params = params
        self.runtime_dir = params.runtime_dir
        self.cache_dir = params.cache_dir
        self.limits = params.limits or default_limits()
        self._mechanism: Mechanism | None = None
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._starting = 0
        self._pending: int | None = None
        self._reruns: dict[int, _Pending] = {}

    @staticmethod
    def unavailable(params: BackendParams) -> str | None:
        abi = abi_version()
        if abi == 0:
            return "Landlock is not enabled in this kernel (it needs Linux >= 5.13 with `lsm=...,landlock`)"
        if abi < MINIMUM_ABI:
            return f"Landlock ABI {abi}: limiting the network to corral's proxy needs ABI {MINIMUM_ABI} (Linux 6.7)"
        try:
            filter_path(params.cache_dir)
            stream_filter_path(params.cache_dir)
            watch_filter_path(params.cache_dir)
        except (SeccompUnavailable, OSError) as error:
            return str(error)
        return None

    # --- the Backend protocol -------------------------------------------------------------------

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        with self._lock:
            self._starting += 1
        try:
            yield
        finally:
            with self._lock:
                self._starting -= 1
                if not self._starting:
                    self._pending = None

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        with self._lock:
            running = list(self._running)
            if not running and self._starting:
                self._pending = sig
        for pid in running:
            with contextlib.suppress(OSError):
                os.killpg(pid, sig)

    def settle(self, result: RunResult, allowed: Sequence[Violation]) -> ApplyOutcome:
        """Nothing was captured, so nothing is applied: an allowed write re-runs the command with exactly
        the allowed paths writable (the re-run's exit status becomes the result's)."""
        if result.release is not None:
            result.release()
            result.release = None
        pending = self._reruns.pop(id(result), None)
        chosen = [v for v in allowed if v.reruns_on_allow]
        if pending is None or not chosen:
            return ApplyOutcome((), ())
        spec_readable = [Path(p) for p in self._readable(pending.policy)]
        grants = grant(chosen, spec_readable)
        refused = [
            (Change(path, ChangeOp.MODIFY), f"not re-run with it writable: {why}")
            for path, why in grants.failed
        ]
        if not grants.paths:
            return ApplyOutcome((), tuple(refused))
        shown = ", ".join(str(p) for p in grants.paths)
        result.notices.append(
            f"re-running the command with {shown} writable (Landlock cannot capture writes)"
        )
        try:
            again = self.run(
                pending.command, pending.policy, stdio=pending.stdio, network=pending.network, grants=grants
            )
        except SandboxSetupError as error:
            grants.tidy()
            result.notices.append(f"the re-run could not start: {error}")
            return ApplyOutcome(
                (), (*refused, *((Change(p, ChangeOp.MODIFY), "not re-run") for p in grants.paths))
            )
        grants.tidy()
        self._reruns.pop(id(again), None)
        result.exit_code = again.exit_code
        result.notices.extend(again.notices)
        granted = set(map(str, grants.paths))
        applied = tuple(Change(Path(v.target), _op(v.operation)) for v in chosen if v.target in granted)
        refused += [
            (Change(Path(v.target), _op(v.operation)), "refused by Landlock in the re-run")
            for v in again.violations
        ]
        return ApplyOutcome(applied, tuple(refused))

    def describe(self, policy: Policy, command: Sequence[str]) -> list[str]:
        launch = Launch.open()
        try:
            argv = launch.argv(host_python(), command)
        finally:
            launch.close()
        argv[4] = "<sandbox/landlock_exec.py>"
        return argv

    def run(
        self,
        command: Sequence[str],
        policy: Policy,
        *,
        stdio: StdioSpec = _INHERIT,
        network: NetworkHook | None = None,
        on_start: Callable[[int], None] | None = None,
        grants: Grants | None = None,
    ) -> RunResult:
        """`grants`: what a re-run may write besides the policy's paths (`settle`)."""
        with self.starting():
            result = self._run(command, policy, stdio, network, on_start, grants)
        if result.violations:
            self._reruns[id(result)] = _Pending(tuple(command), policy, stdio, network)
        return result

    # --- one command ----------------------------------------------------------------------------

    def mechanism(self) -> Mechanism:
        if self._mechanism is None:
            self._mechanism = detect_mechanism(self.limits)
        return self._mechanism

    def _run(
        self,
        command: Sequence[str],
        policy: Policy,
        stdio: StdioSpec,
        network: NetworkHook | None,
        on_start: Callable[[int], None] | None,
        grants: Grants | None,
    ) -> RunResult:
        missing = self.unavailable(self.params)
        if missing is not None:
            raise SandboxSetupError(missing)
        private = self._private_dir()
        listener: socket.socket | None = None
        try:
            env = dict(policy.env)
            for name in ("TMPDIR", "TMP", "TEMP", "TEMPDIR"):
                env[name] = str(private)
            if "PYTHONPYCACHEPREFIX" in env:  # ~/.cache is read-only here: bytecode goes with the temp dir
                env["PYTHONPYCACHEPREFIX"] = str(private / "python-bytecode")
            listener = open_listener(policy, network, env, "Landlock")
            ports = [int(listener.getsockname()[1])] if listener is not None else []
            spec = self._spec(policy, private, ports, grants)
            started = time.perf_counter()
            started_ns = time.time_ns()
            exit_code, notices, reports = self._execute(
                command, policy, env, spec, stdio, network, listener, on_start
            )
        finally:
            if listener is not None:
                listener.close()
            shutil.rmtree(private, ignore_errors=True)
        refusals = refusals_from(reports, policy, (self.runtime_dir, self.cache_dir))
        return RunResult(
            exit_code=exit_code,
            duration_ms=(time.perf_counter() - started) * 1000,
            violations=list(refusals.violations),
            notices=[*notices, *refusals.notices],
            started_ns=started_ns,
        )

    def _private_dir(self) -> Path:
        try:
            self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(self.runtime_dir)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                raise SandboxSetupError(
                    f"corral's runtime directory {self.runtime_dir} is not a directory owned by you"
                )
            private = self.runtime_dir / f"landlock-{os.getpid()}-{secrets.token_hex(4)}"
            private.mkdir(mode=0o700)
        except OSError as error:
            raise SandboxSetupError(f"no private temp directory for the command: {error}") from error
        return private

    def _readable(self, policy: Policy) -> list[Path]:
        """What the command may read: everything but the holes, carved, plus what is shown in them."""
        holes = (
            *policy.hidden,
            *policy.homes,
            *policy.blanked,
            *policy.private_caches,
            self.runtime_dir,
            self.cache_dir,
        )
        try:
            readable = list(readable_except([Path("/")], holes))
        except LandlockError as error:
            raise SandboxSetupError(f"Landlock cannot express the read policy: {error}") from error
        hidden = (*policy.hidden, *policy.blanked)
        shown = [
            path
            for path in (*policy.readable, *policy.cache_dirs)
            if not any(path == h or h in path.parents for h in hidden)
        ]
        return readable + shown

    def _spec(
        self, policy: Policy, private: Path, ports: list[int], grants: Grants | None = None
    ) -> dict[str, object]:
        inside = [
            path
            for path in (*policy.hidden, *policy.blanked)
            if os.path.lexists(path) and (path == policy.workspace or policy.in_workspace(path))
        ]
        if inside:
            # Fail closed: the workspace is one writable grant, and Landlock cannot take a path back out
            # of it without refusing new entries in every directory above that path.
            raise SandboxSetupError(
                f"the Landlock backend cannot hide {inside[0]} inside the workspace (Landlock cannot refuse a "
                "path below a writable directory); run it with bwrap"
            )
        readable = self._readable(policy)
        writable = [policy.workspace, *policy.extra_writable, private, *map(Path, DEVICE_WRITES)]
        ruled = standing(policy.write_rules, readable, (*policy.blanked, self.runtime_dir, self.cache_dir))
        writable += ruled.writable
        write_only = list(ruled.write_only)
        if grants is not None:
            writable += grants.writable
            write_only += grants.write_only
        limits = self.limits
        rlimits = {"data": limits.max_memory_bytes, "fsize": limits.max_file_bytes}
        if os.geteuid() != 0 and self.mechanism().cgroups is None:
            # No user namespace: RLIMIT_NPROC counts every process of this user, so the bound is on top
            # of what the user runs now (the kernel never applies it to root).
            rlimits["nproc"] = _processes_of(os.getuid()) + limits.max_processes
        return {
            # Every directory may be listed (names only, as bwrap's stand-ins show them): `ls /` and
            # tools that walk up to find a project root keep working; contents stay carved.
            "listable": ["/"],
            "readable": [str(p) for p in readable],
            "writable": [str(p) for p in writable],
            "write_only": [str(p) for p in write_only],
            "watch": {
                "filter": str(watch_filter_path(self.cache_dir)),
                "syscalls": {str(number): name for number, name in syscall_names().items()},
                "seccomp_nr": seccomp_number(),
            },
            "connect_ports": ports,
            "isolate_ipc": True,
            "minimum_abi": MINIMUM_ABI,
            "seccomp": [str(filter_path(self.cache_dir)), str(stream_filter_path(self.cache_dir))],
            "drop_caps": os.geteuid() == 0,
            "reap": True,
            "rlimits": rlimits,
        }

    def _execute(
        self,
        command: Sequence[str],
        policy: Policy,
        env: dict[str, str],
        spec: dict[str, object],
        stdio: StdioSpec,
        network: NetworkHook | None,
        listener: socket.socket | None,
        on_start: Callable[[int], None] | None,
    ) -> tuple[int, list[str], list[tuple[str, str]]]:
        """Run the launcher; the exit status, notices, and the write watch's reports (op, path)."""
        mechanism = self.mechanism()
        cgroup: RunCgroup | None = None
        if mechanism.cgroups is not None:
            try:
                cgroup = RunCgroup(
                    mechanism.cgroups, self.limits, cgroup_name(os.getpid(), secrets.token_hex(4))
                )
            except OSError as error:
                raise SandboxSetupError(f"could not make the command's cgroup: {error}") from error
        launch = Launch.open()
        block_r, block_w = os.pipe()
        report_r, report_w = os.pipe()
        watch = spec.get("watch")
        spec = {**spec, "block_fd": block_r}
        if isinstance(watch, dict):
            spec["watch"] = {**watch, "report_fd": report_w}
        reports = _Reports(report_r)
        process: subprocess.Popen[bytes] | None = None
        try:
            try:
                process = subprocess.Popen(
                    launch.argv(host_python(), command),
                    cwd=policy.cwd,
                    env=env,
                    stdin=stdio.stdin,
                    stdout=stdio.stdout,
                    stderr=stdio.stderr,
                    pass_fds=[*launch.child_fds, block_r, report_w],
                    process_group=0,
                    close_fds=True,
                    preexec_fn=_default_signals_in_child(),
                )
            except OSError as error:
                raise SandboxSetupError(f"could not start the Landlock launcher: {error}") from error
            launch.close_child_ends()
            os.close(block_r)
            block_r = -1
            os.close(report_w)
            report_w = -1
            reports.start()
            try:
                if cgroup is not None:
                    cgroup.add(process.pid)
            except OSError as error:
                raise SandboxSetupError(f"could not bound the command's resources: {error}") from error
            if listener is not None:
                serve(network, listener)
            os.write(block_w, b"1")
            launch.send(spec)
            try:
                launch.status()
            except LaunchFailed as failure:
                process.wait()
                if failure.not_found:
                    return 127, [f"corral: {failure}"], []
                raise SandboxSetupError(f"the Landlock sandbox could not start: {failure}") from failure
            with self._lock:
                self._running.add(process.pid)
                pending, self._pending = self._pending, None
            if pending is not None:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, pending)
            if on_start is not None:
                on_start(process.pid)
            while True:
                try:
                    returncode = process.wait()
                    break
                except KeyboardInterrupt:
                    self.interrupt()
            notices = cgroup.notices(self.limits) if cgroup is not None else []
            self._end(process, cgroup)
            return returncode if returncode >= 0 else 128 - returncode, notices, reports.wait(REPORT_WAIT_S)
        finally:
            if process is not None:
                self._end(process, cgroup)
                with self._lock:
                    self._running.discard(process.pid)
            for fd in (block_r, block_w, report_w):
                if fd >= 0:
                    os.close(fd)
            reports.close()
            launch.close()
            if cgroup is not None:
                cgroup.remove()

    @staticmethod
    def _end(process: subprocess.Popen[bytes], cgroup: RunCgroup | None) -> None:  # idempotent
        """Kill whatever is left: the launcher (it reaps the command's processes itself when it ends: it is
        their subreaper) and its process group while it still runs, and everything in the cgroup."""
        if process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)  # the group still exists: its leader is not reaped
            process.kill()
            process.wait()
        if cgroup is None:
            return
        procs = cgroup.pids / "cgroup.procs"
        for _attempt in range(200):
            try:
                pids = [int(p) for p in procs.read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)


class _Reports:
    """The write watch's report lines, read while the command runs (a full pipe would stall it)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True, name="corral-landlock-reports")
        self._started = False

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            self.lines.extend(line.decode(errors="replace") for line in complete)

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """The reports, once every writer has closed the pipe (the launcher has ended)."""
        if self._started:
            self._thread.join(timeout)
        return parse_reports(list(self.lines))

    def close(self) -> None:
        if self.fd >= 0 and not self._thread.is_alive():
            os.close(self.fd)
            self.fd = -1


def _op(operation: str) -> ChangeOp:
    try:
        return ChangeOp(operation)
    except ValueError:
        return ChangeOp.MODIFY
