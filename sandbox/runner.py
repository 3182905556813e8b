"""Run one command in the sandbox and report what it crossed.

`SandboxRunner.run()` builds the layout, starts bwrap, waits, then reads every capture layer:
workspace changes that touch no protected path are applied to the host at once (the workspace is
writable); everything else becomes a `Violation` whose captured changes wait in the run directory
until the caller decides: `finish(result, allowed)` applies the allowed ones and discards the rest.
Nothing is ever re-run.

Nothing sandboxed runs while corral touches a layer: before a layer is read, the sandbox's whole pid
namespace is killed and proven empty (`sandbox.pidns`); if it cannot be, no layer is read or applied and
the slot is discarded. Every read of a layer is fd-relative besides (`sandbox.layerfs`), so a layer
shaped by the command cannot steer corral outside it either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import select
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from boundary.violations import Change, ChangeOp, Violation, ViolationKind
from sandbox.appends import merge as merge_appends
from sandbox.apply import ApplyOutcome, apply_changes
from sandbox.background import KeptSandbox, still_running_below
from sandbox.bwrap import (
    SandboxLayout,
    SandboxSetupError,
    build_argv,
    prepare_layout,
    remove_run_dir,
    reset_layout,
)
from sandbox.capture import CaptureLayer, read_changes
from sandbox.gitconfig import ConfigDiff, diff_captured, is_git_config
from sandbox.layerfs import LayerRefused
from sandbox.layerplace import capture_place
from sandbox.limits import (
    Mechanism,
    ResourceLimits,
    ResourceWatch,
    RunCgroup,
    apply_rlimits,
    cgroup_name,
    default_limits,
    detect_mechanism,
    sweep_stale_cgroups,
)
from sandbox.linkwatch import LinkRegistry
from sandbox.locate import BwrapBinary, BwrapNotFound, find_bwrap
from sandbox.pidns import SandboxInit, SandboxLingered
from sandbox.policy import Policy
from sandbox.readwatch import ReadWatcher, removed, untouched
from sandbox.report import RunResult
from sandbox.seccomp import BWRAP_AGENT_FILTER, BWRAP_FILTER, FilterProfile, SeccompUnavailable, filter_path
from sandbox.sessionns import SharedPlace, monitored_pid
from sandbox.slots import NoFreeSlot, Slot, acquire_slot, sweep_discarded
from sandbox.unixgate import UnixGate, UnixGateRun

if TYPE_CHECKING:
    from sandbox.landlock_layer import InnerLayer

EXIT_SETUP_FAILED = 125
_SLOT_ATTEMPTS = 4


BACKGROUND_STOPPED_LINE = (
    "corral: processes this command left in the background were stopped with it (no live session keeps "
    "them: run `corral session` or `corral shell` in the project, and agents' `corral run` joins it)"
)


class SandboxOutlived(SandboxSetupError):
    """The command ran, but its processes could not be proven gone: nothing of it was applied."""

    summary = "the command ran, but its sandbox could not be proven empty, so nothing it wrote was applied"


class NetworkHook(Protocol):
    """Gives the sandbox its network: called with the sandbox's first pid before the command starts."""

    def attach(self, child_pid: int) -> None: ...


@dataclass(frozen=True, slots=True)
class StdioSpec:
    """File descriptors for the command's stdin, stdout and stderr (None: inherit corral's)."""

    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None


class SandboxRunner:
    """Runs commands under a policy. Capture slots live on disk next to `runtime_dir` (`sandbox.layerplace`:
    the runtime directory itself only when it is disk-backed, or when nothing on disk is usable); `cache_dir` the
    compiled seccomp filter; `layers_dir` the persistent per-project cache layers; `limits` the resource
    bounds of every command (`sandbox.limits`).

    A backend that runs something inside the same prepared view (gVisor's runsc) overrides
    `filter_profile` and `sandbox_argv`; everything else (capture, decoys, proxy, apply) is shared."""

    shares_place = True
    """Whether this backend runs a session's commands in its shared place (`place`)."""

    filter_profile: FilterProfile = BWRAP_FILTER
    """The seccomp filter bwrap installs (`sandbox.seccomp`)."""
    unix_gate: UnixGate | None = None
    """The ssh agent offered inside (`sandbox.unixgate`): every Unix socket the sandbox creates is
    connected to it. Only the default bwrap filter combines with it; None: `socket(AF_UNIX)` is refused."""
    decoy_content: bytes = b""
    """What each decoy file holds (`sandbox.readwatch`)."""

    def __init__(
        self,
        *,
        runtime_dir: Path,
        cache_dir: Path,
        layers_dir: Path | None = None,
        limits: ResourceLimits | None = None,
    ) -> None:
        self.runtime_dir = runtime_dir
        # Where each workspace's capture slots live (`sandbox.layerplace`: on disk, on the workspace's
        # mount when possible), chosen once per workspace.
        self._capture_dirs: dict[tuple[Path, ...], Path] = {}
        self.cache_dir = cache_dir
        self.layers_dir = layers_dir
        self.limits = limits or default_limits()
        self._mechanism: Mechanism | None = None
        self.place: SharedPlace | None = None
        """The session's shared place (`sandbox.sessionns`): its network and pid namespaces and its /tmp,
        shared by every command this runner runs; None: each command gets its own, as before."""
        # The sandboxes running now (several when commands of one session run in parallel threads).
        self._children: set[int] = set()
        self._children_lock = threading.Lock()
        # A Ctrl-C that arrives before the command's own process exists (while the sandbox is still
        # being set up, or before pid 1 has forked it) is kept here and delivered as soon as it does:
        # an early interrupt is never lost.
        self._starting = 0
        self._pending: dict[int, int] = {}
        self._pending_start: int | None = None

    def mechanism(self) -> Mechanism:
        """How this runner bounds its commands (probed once)."""
        if self._mechanism is None:
            self._mechanism = detect_mechanism(self.limits)
            if self._mechanism.cgroups is not None:
                sweep_stale_cgroups(self._mechanism.cgroups)
        return self._mechanism

    def locate(self, workspace: Path) -> BwrapBinary:
        return find_bwrap(workspace=workspace, cache_dir=self.cache_dir)

    def preflight(self, policy: Policy) -> tuple[BwrapBinary, Path]:
        """Find bwrap and the seccomp filter, or raise SandboxSetupError saying how to fix it."""
        try:
            binary = self.locate(policy.workspace)
            seccomp = filter_path(self.cache_dir, self.filter_profile)
        except (BwrapNotFound, SeccompUnavailable) as error:
            raise SandboxSetupError(str(error)) from error
        return binary, seccomp

    def capture_dir(self, policy: Policy) -> Path:
        """The directory holding the capture slots of commands under `policy`."""
        key = (policy.workspace, *policy.capture_roots)
        found = self._capture_dirs.get(key)
        if found is None:
            found = self._capture_dirs[key] = capture_place(
                self.runtime_dir, policy.workspace, policy.capture_roots
            )
        return found

    def new_run_dir(self, policy: Policy | None = None) -> Path:
        base = self.runtime_dir if policy is None else self.capture_dir(policy)
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_private_dir(base)
        return base / f"run-{os.getpid()}-{secrets.token_hex(4)}"

    def describe(self, policy: Policy, command: Sequence[str]) -> list[str]:
        """The argv that would run (for `corral policy --backend-args`), built in a scratch layout."""
        binary, _ = self.preflight(policy)
        run_dir = self.new_run_dir(policy)
        try:
            layout = prepare_layout(policy, run_dir, None)
            return self.sandbox_argv(binary.path, policy, layout, list(command), seccomp_fd=3, status_fd=4)
        finally:
            remove_run_dir(run_dir)

    def sandbox_argv(
        self,
        bwrap: Path,
        policy: Policy,
        layout: SandboxLayout,
        command: list[str],
        *,
        seccomp_fd: int,
        status_fd: int | None = None,
        block_fd: int | None = None,
        shared_net: bool = False,
    ) -> list[str]:
        """The bwrap argv that runs `command` (`sandbox.bwrap.build_argv`)."""
        return build_argv(
            bwrap,
            policy,
            layout,
            command,
            seccomp_fd=seccomp_fd,
            status_fd=status_fd,
            block_fd=block_fd,
            shared_net=shared_net,
        )

    def run(
        self,
        command: Sequence[str],
        policy: Policy,
        *,
        stdio: StdioSpec = StdioSpec(),
        network: NetworkHook | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> RunResult:
        """Run `command`; raise SandboxSetupError (and run nothing) if the sandbox cannot start."""
        with self.starting():
            return self._run(command, policy, stdio=stdio, network=network, on_start=on_start)

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Mark a command as on its way (a caller composing its policy counts too): an interrupt that
        arrives before its sandbox exists is kept and delivered to it."""
        with self._children_lock:
            self._starting += 1
        try:
            yield
        finally:
            self._started()

    def _run(
        self,
        command: Sequence[str],
        policy: Policy,
        *,
        stdio: StdioSpec,
        network: NetworkHook | None,
        on_start: Callable[[int], None] | None,
    ) -> RunResult:
        binary, seccomp_path = self.preflight(policy)
        slot, layout = self._prepare(policy)
        started = time.perf_counter()
        started_ns = time.time_ns()
        kept: KeptSandbox | None = None
        try:
            watcher = ReadWatcher(layout.decoys)
            holder: list[tuple[SandboxInit, RunCgroup | None]] = []
            try:
                exit_code, notices = self._execute(
                    binary, policy, layout, command, seccomp_path, stdio, network, on_start, holder
                )
            finally:
                if holder:
                    kept_init, kept_cgroup = holder[0]
                    kept = KeptSandbox(kept_init, slot, layout, policy, tuple(command), kept_cgroup)
            reads = watcher.reads()
        except BaseException as error:
            if kept is not None:
                _end_kept_quietly(kept)
            layout.release()
            if isinstance(error, SandboxOutlived):
                slot.discard()  # processes may still be writing there: never reused, never read
                raise
            _reset_or_discard(layout, slot)
            if isinstance(error, OSError):
                raise SandboxSetupError(f"could not start the sandbox: {error}") from error
            raise
        if kept is None:
            layout.release()  # a kept sandbox still has the project's cache layers mounted
        duration_ms = (time.perf_counter() - started) * 1000
        result = RunResult(
            exit_code=exit_code,
            duration_ms=duration_ms,
            run_dir=slot.path,
            capture_roots=[layer.target for layer in layout.layers],
            notices=notices,
            started_ns=started_ns,
            background=kept,
        )
        return self._collect_and_hold(policy, layout, slot, reads, result, kept)

    def _collect_and_hold(
        self,
        policy: Policy,
        layout: SandboxLayout,
        slot: Slot,
        reads: list[Path],
        result: RunResult,
        kept: KeptSandbox | None,
    ) -> RunResult:
        """Read the layers into `result`; its `release` frees the slot once the caller has decided (a
        kept sandbox's slot stays held: its processes still write there)."""

        def release() -> None:
            if kept is None:
                _reset_or_discard(layout, slot)
            else:
                kept.checkpoint_ns = time.time_ns()

        result.release = release
        try:
            self._collect(policy, layout, reads, result, exclusive=kept is None)
        except BaseException:
            release()
            raise
        if not result.violations:
            release()
            result.release = None
            result.run_dir = None
        return result

    def finish_background(self, kept: KeptSandbox, *, stop: bool = True) -> RunResult:
        """End a kept sandbox (`stop`: kill what still runs) and read what its processes wrote since
        its layers were last read, with its pid namespace proven empty first; decided like a command's
        writes (`settle`), after which its slot is freed. Raises SandboxOutlived when it cannot be shown
        empty (nothing is read; the slot is discarded)."""
        started = time.perf_counter()
        try:
            if stop or kept.running():
                kept.stop()
        except SandboxLingered as error:
            kept.layout.release()
            kept.slot.discard()
            raise SandboxOutlived(str(error)) from error
        finally:
            kept.init.close()
            if kept.cgroup is not None:
                kept.cgroup.remove()
        kept.layout.release()
        result = RunResult(
            exit_code=0,
            duration_ms=(time.perf_counter() - started) * 1000,
            run_dir=kept.slot.path,
            capture_roots=[layer.target for layer in kept.layout.layers],
            started_ns=kept.checkpoint_ns,
        )
        result = self._collect_and_hold(kept.policy, kept.layout, kept.slot, [], result, None)
        result.applied = [c for c in result.applied if not _reapplied_link(c)]
        return result

    def _wait_delivering(self, process: subprocess.Popen[bytes], child_pid: int) -> int:
        """Wait for bwrap to exit, delivering meanwhile an interrupt kept for this command (it came
        before the command's process existed) as soon as that process does. The exit is seen at once
        on bwrap's pidfd (Popen.wait with a timeout sleeps in growing steps: up to 50 ms late)."""
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError:
            pidfd = -1
        try:
            poller = select.poll()
            if pidfd >= 0:
                poller.register(pidfd, select.POLLIN)
            while True:
                try:
                    if pidfd >= 0:
                        if poller.poll(50):
                            return process.wait()
                    else:
                        return process.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
                except KeyboardInterrupt:
                    self.interrupt()
                    continue
                self._deliver_pending(child_pid)
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def _prepare(self, policy: Policy) -> tuple[Slot, SandboxLayout]:
        """A locked slot with its layout prepared; a slot that cannot be emptied is discarded and the
        next one tried."""
        slots = self.capture_dir(policy)
        try:
            slots.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_private_dir(slots)
            sweep_discarded(slots)
        except OSError as error:
            raise SandboxSetupError(f"no run directory available: {error}") from error
        last: BaseException | None = None
        for _attempt in range(_SLOT_ATTEMPTS):
            try:
                slot = acquire_slot(slots)
            except (NoFreeSlot, OSError) as error:
                raise SandboxSetupError(f"no run directory available: {error}") from error
            try:
                return slot, prepare_layout(
                    policy,
                    slot.path,
                    self.layers_dir,
                    tmpfs_bytes=self.limits.tmpfs_bytes,
                    shared_tmp=self.place.tmp if self.place is not None else None,
                    decoy_content=self.decoy_content,
                )
            except SandboxSetupError:
                slot.release()
                raise
            except OSError as error:
                last = error
                _discard_quietly(slot)
            except BaseException:
                slot.release()
                raise
        raise SandboxSetupError(f"no run directory could be emptied for this run: {last}")

    def _execute(
        self,
        binary: BwrapBinary,
        policy: Policy,
        layout: SandboxLayout,
        command: Sequence[str],
        seccomp_path: Path,
        stdio: StdioSpec,
        network: NetworkHook | None,
        on_start: Callable[[int], None] | None,
        kept: list[tuple[SandboxInit, RunCgroup | None]],
    ) -> tuple[int, list[str]]:
        """Run bwrap; (the command's exit code, lines about resource bounds it ran into)."""
        layer = self.inner_layer(policy)
        mechanism = self.mechanism()
        gate_run: UnixGateRun | None = None
        if self.unix_gate is not None and self.filter_profile == BWRAP_FILTER and not mechanism.scope_argv:
            # The notifying filter goes into bwrap itself (a systemd-run scope before it would talk
            # D-Bus through it); only then may the main filter let socket(AF_UNIX) through.
            try:
                seccomp_path = filter_path(self.cache_dir, BWRAP_AGENT_FILTER)
            except SeccompUnavailable as error:
                raise SandboxSetupError(str(error)) from error
            gate_run = self.unix_gate.new_run()
        seccomp_fd = os.open(seccomp_path, os.O_RDONLY | os.O_CLOEXEC)
        status_r, status_w = os.pipe()
        # Always held at --block-fd until corral has a pidfd on the sandbox's pid 1 (sandbox.pidns).
        block_r, block_w = os.pipe()
        pass_fds = [seccomp_fd, status_w, block_r]
        namespace = self.place.namespace if self.place is not None else None
        cgroup: RunCgroup | None = None
        if mechanism.cgroups is not None:
            try:
                cgroup = RunCgroup(
                    mechanism.cgroups, self.limits, cgroup_name(os.getpid(), secrets.token_hex(4))
                )
            except OSError as error:
                for fd in (seccomp_fd, status_r, status_w, block_r, block_w):
                    os.close(fd)
                raise SandboxSetupError(f"could not make the command's cgroup: {error}") from error
        if layer is not None:
            command = layer.wrap(command)
            pass_fds += layer.child_fds
        argv = list(mechanism.scope_argv) + self.sandbox_argv(
            binary.path,
            policy,
            layout,
            list(command),
            seccomp_fd=seccomp_fd,
            status_fd=status_w,
            block_fd=block_r,
            shared_net=namespace is not None,
        )
        preexec = _default_signals_in_child()
        namespace_fds: tuple[int, ...] = ()
        if namespace is not None:
            try:
                join, namespace_fds = namespace.enter()
            except OSError as error:
                for fd in (seccomp_fd, status_r, status_w, block_r, block_w):
                    os.close(fd)
                if cgroup is not None:
                    cgroup.remove()
                raise SandboxSetupError(f"the session's namespaces are gone: {error}") from error
            preexec = _chained(preexec, join)
        if gate_run is not None:
            preexec = _chained(preexec, gate_run.install)
        try:
            process = subprocess.Popen(
                argv,
                stdin=stdio.stdin,
                stdout=stdio.stdout,
                stderr=stdio.stderr,
                pass_fds=pass_fds,
                process_group=0,
                close_fds=True,
                preexec_fn=preexec,
                # bwrap's own process is pid 1 inside the sandbox and its /proc/1/environ is readable
                # there: give it only the command's filtered environment, never corral's.
                env=dict(policy.env),
            )
        except subprocess.SubprocessError as error:
            # Joining the session's namespaces (or installing the agent socket filter) failed between
            # fork and exec: nothing ran.
            if gate_run is not None:
                gate_run.abandon()
            for fd in (status_r, block_w):
                os.close(fd)
            if cgroup is not None:
                cgroup.remove()
            if layer is not None:
                layer.close()
            raise SandboxSetupError(
                f"could not start the sandbox in the session's namespaces: {error}"
            ) from error
        except BaseException:
            if gate_run is not None:
                gate_run.abandon()
            if layer is not None:
                layer.close()
            raise
        finally:
            os.close(seccomp_fd)
            os.close(status_w)
            os.close(block_r)
            for fd in namespace_fds:
                os.close(fd)
        if layer is not None:
            layer.started()
        if gate_run is not None:
            try:
                gate_run.started()
            except OSError as error:
                gate_run.abandon()
                process.kill()
                process.wait()
                for fd in (status_r, block_w):
                    os.close(fd)
                if cgroup is not None:
                    cgroup.remove()
                if layer is not None:
                    layer.close()
                raise SandboxSetupError(f"could not offer the ssh agent inside: {error}") from error
        status = _StatusReader(status_r)
        watch: ResourceWatch | None = None
        init: SandboxInit | None = None
        try:
            child_pid = status.child_pid()
            if child_pid is None:
                process.wait()
                raise SandboxSetupError(_setup_failure_hint(process.returncode))
            bwrap_pid = process.pid
            if namespace is not None:
                # In the session's namespaces bwrap is the child of a monitor (`SessionNamespace.enter`)
                # and reports its child's pid as the session's pid namespace numbers it: take the pid
                # this side sees (bwrap's only child; `SandboxInit` checks it is that namespace's init).
                bwrap_pid = monitored_pid(process.pid) or -1
                child_pid = next(iter(_children(bwrap_pid)), -1) if bwrap_pid > 0 else -1
            try:
                init = SandboxInit(child_pid, bwrap_pid)
            except OSError as error:
                raise SandboxSetupError(f"could not hold the sandbox's first process: {error}") from error
            try:
                if cgroup is not None:
                    cgroup.add(process.pid)
                    cgroup.add(child_pid)
                apply_rlimits(child_pid, self.limits)
            except OSError as error:
                # Fail closed: an unbounded command does not run.
                raise SandboxSetupError(f"could not set the sandbox's resource limits: {error}") from error
            with self._children_lock:
                self._children.add(child_pid)
                if self._pending_start is not None:
                    self._pending[child_pid] = self._pending_start
                    self._pending_start = None
            if network is not None:
                try:
                    network.attach(child_pid)
                except Exception as error:
                    process.kill()
                    process.wait()
                    raise SandboxSetupError(
                        f"could not give the sandbox its network proxy: {error}"
                    ) from error
            os.write(block_w, b"1")
            if layer is not None:
                layer.released()
            watch = ResourceWatch(child_pid, self.limits, layout.writable_tmpfs, count_tasks=cgroup is None)
            if on_start is not None:
                on_start(child_pid)
            returncode = self._wait_delivering(process, child_pid)
            exit_code = status.exit_code()
            if exit_code is None:
                # bwrap reports an exit code only for a command that really ran: anything else is a
                # setup failure (mounts, seccomp, exec), never the command's own status.
                raise SandboxSetupError(_setup_failure_hint(returncode))
            notices, watch = watch.stop(), None
            if cgroup is not None:
                notices = cgroup.notices(self.limits) + notices
            if still_running_below(init.pid):
                if namespace is not None:
                    # Processes the command left in the background keep running in the session: its
                    # sandbox is kept (pid 1, mounts, layers, cgroup) and handed to the caller.
                    kept.append((init, cgroup))
                    init, cgroup = None, None
                else:
                    # Nothing keeps them: they end with the command below. Said, so that the next
                    # command's `curl localhost:3000` failing is not a silent breakage.
                    notices.append(BACKGROUND_STOPPED_LINE)
            return exit_code, notices
        finally:
            if watch is not None:
                watch.stop()
            status.close()
            if init is not None:
                with self._children_lock:
                    self._children.discard(init.pid)
                    self._pending.pop(init.pid, None)
            os.close(block_w)
            if layer is not None:
                layer.close()
            if process.poll() is None:
                process.kill()
                process.wait()
            if init is not None:
                try:
                    init.end()
                except SandboxLingered as error:
                    raise SandboxOutlived(str(error)) from error
                finally:
                    init.close()
                    if cgroup is not None:
                        cgroup.remove()
            elif cgroup is not None:
                cgroup.remove()

    def inner_layer(self, policy: Policy) -> InnerLayer | None:
        """A second layer inside the sandbox for one command (`sandbox.bwrap_backend`: Landlock)."""
        return None

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        """Forward a signal (Ctrl-C) to the process groups of every sandboxed command running now; one
        that arrives before a command's own process exists is delivered as soon as it does."""
        with self._children_lock:
            running = list(self._children)
            if not running and self._starting:
                self._pending_start = sig
        for child in running:
            if not _signal_command(child, sig):
                with self._children_lock:
                    if child in self._children:
                        self._pending[child] = sig

    def _started(self) -> None:
        with self._children_lock:
            self._starting -= 1
            if not self._starting:
                self._pending_start = None

    def _deliver_pending(self, child: int) -> None:
        with self._children_lock:
            sig = self._pending.get(child)
        if sig is not None and _signal_command(child, sig):
            with self._children_lock:
                self._pending.pop(child, None)

    def _collect(
        self,
        policy: Policy,
        layout: SandboxLayout,
        reads: list[Path],
        result: RunResult,
        *,
        exclusive: bool = True,
    ) -> None:
        """`exclusive`: the sandbox's pid namespace was proven empty; False while processes it kept in
        the background may still write its layers (captured files are then copied, never moved)."""
        result.exclusive = exclusive
        # Lines added to a hidden shell start-up file become "the real file plus those lines" in the
        # layer before it is read (`sandbox.appends`); a stand-in left as it was is no change.
        unchanged: set[Path] = set()
        for upper, taking_appends in layout.appends:
            unchanged |= merge_appends(taking_appends, upper)
        for layer in layout.layers:
            try:
                changes = read_changes(layer, layout.kept)
            except (LayerRefused, OSError) as error:
                # One clear refusal for the whole layer (a 5,000-deep tree, an entry swapped while read):
                # nothing of it reaches the host, and the slot is emptied or discarded afterwards.
                reason = error.strerror or str(error)
                result.refused.append((Change(layer.target, ChangeOp.CREATE), reason))
                continue
            changes = [
                c for c in changes if not untouched(layout.stand_ins, c.path) and c.path not in unchanged
            ]
            # A hidden home entry the command deleted: its stand-in is gone (no whiteout to read).
            deleted = [Change(path, ChangeOp.DELETE) for path in removed(layout.stand_ins, layer.target)]
            changes = [*deleted, *changes]
            if not changes:
                continue
            if policy.in_workspace(layer.target):
                self._workspace_changes(policy, layer, changes, result, exclusive=exclusive)
            else:
                result.violations.extend(_group(changes, ViolationKind.FS_WRITE, "outside the workspace"))
        for path in reads:
            result.violations.append(
                Violation(ViolationKind.FS_READ, str(path), "read", "hidden credential path")
            )

    def _workspace_changes(
        self,
        policy: Policy,
        layer: CaptureLayer,
        changes: list[Change],
        result: RunResult,
        *,
        exclusive: bool,
    ) -> None:
        allowed: list[Change] = []
        protected: list[Change] = []
        config_diffs: dict[Path, ConfigDiff] = {}
        for change in changes:
            replaces = change.op in (ChangeOp.DELETE, ChangeOp.SYMLINK)
            if not policy.is_protected(change.path, replaces_node=replaces):
                allowed.append(change)
                continue
            diff = _git_config_diff(policy, change)
            if diff is not None and diff.housekeeping_only:
                allowed.append(change)  # git's own branch tracking: nothing in it runs a program
                continue
            if diff is not None:
                config_diffs[change.path] = diff
            protected.append(change)
        withdrawn: list[Change] = []
        if allowed:
            # exclusive: the sandbox's pid namespace was proven empty before any layer was read (else
            # processes kept in the background may still write: content is copied, never moved).
            outcome = apply_changes(layer.target, allowed, started_ns=result.started_ns, exclusive=exclusive)
            result.applied.extend(outcome.applied)
            result.refused.extend(outcome.refused)
            withdrawn = _withdraw_links_into_hidden(policy, result, self._links(policy))
        result.violations.extend(
            _bind_config_changes(
                _group(protected, ViolationKind.FS_PROTECTED, "protected path in the workspace"), config_diffs
            )
        )
        result.violations.extend(_group(withdrawn, ViolationKind.FS_PROTECTED, "symlink into a hidden path"))

    def _links(self, policy: Policy) -> LinkRegistry:
        """The per-project record of workspace links corral applied (in corral's own data)."""
        if self.layers_dir is None:
            return LinkRegistry(None)
        key = hashlib.sha256(os.fsencode(policy.workspace)).hexdigest()[:16]
        return LinkRegistry(self.layers_dir.parent / "links" / f"{key}.json")

    def settle(self, result: RunResult, allowed: Sequence[Violation]) -> ApplyOutcome:
        """The one apply step after the decisions: apply the changes of `allowed` violations, discard
        the rest, remove the run directory. Returns what was applied (outside the workspace: the
        workspace's own changes are in `result.applied` already) and what the safe apply step refused."""
        applied: list[Change] = []
        refused: list[tuple[Change, str]] = []
        try:
            by_root: dict[Path, list[Change]] = {}
            for violation in allowed:
                for change in violation.changes:
                    root = _apply_root(change.path, result.capture_roots)
                    if root is not None:
                        by_root.setdefault(root, []).append(change)
                    else:
                        refused.append((change, "no capture root for this path"))
            for root, changes in by_root.items():
                outcome = apply_changes(
                    root, changes, started_ns=result.started_ns, exclusive=result.exclusive
                )
                applied.extend(outcome.applied)
                refused.extend(outcome.refused)
        finally:
            if result.release is not None:
                result.release()
                result.release = None
            result.run_dir = None
        return ApplyOutcome(tuple(applied), tuple(refused))

    def finish(self, result: RunResult, allowed: Sequence[Violation]) -> list[tuple[Change, str]]:
        """`settle`, returning only the changes the safe apply step refused."""
        return list(self.settle(result, allowed).refused)


def _end_kept_quietly(kept: KeptSandbox) -> None:
    """A kept sandbox whose first read failed: kill it, and never reuse its slot."""
    try:
        kept.stop()
    except SandboxLingered:
        pass
    finally:
        kept.init.close()
        if kept.cgroup is not None:
            kept.cgroup.remove()
    with contextlib.suppress(OSError):
        kept.slot.discard()


def _reapplied_link(change: Change) -> bool:
    """A symlink a kept sandbox's final read applied again, unchanged: the host already had it."""
    return change.op is ChangeOp.SYMLINK and change.link_target == _readlink(change.path)


def _reset_or_discard(layout: SandboxLayout, slot: Slot) -> None:
    """Empty the slot for the next command, or discard it when that fails (never reused dirty)."""
    try:
        reset_layout(layout)
    except OSError:
        _discard_quietly(slot)
        return
    slot.release()


def _discard_quietly(slot: Slot) -> None:
    try:
        slot.discard()
    except OSError:
        slot.release()


def _withdraw_links_into_hidden(
    policy: Policy, result: RunResult, registry: LinkRegistry | None = None
) -> list[Change]:
    """Take back off the host every symlink just applied that resolves (through any chain of links)
    into a hidden path: a credential, or corral's own state, such as the persistent cache layers a
    sandboxed command fills at a predictable path. A host program following such a link would read a
    secret or run content written outside the workspace (e.g. `git status` in a linked directory
    running its `core.fsmonitor`). With a `registry` (`sandbox.linkwatch`), links applied by earlier
    commands are checked again too, and a link into a protected location or through another link is
    withdrawn as well. Returns the withdrawn changes; they become violations."""

    def unsafe(link: Path) -> bool:
        real = Path(os.path.realpath(link))
        return policy.is_hidden(real) or (
            policy.in_workspace(real) and policy.is_protected(real, replaces_node=False)
        )

    withdrawn: list[Change] = []
    links = [c for c in result.applied if c.op is ChangeOp.SYMLINK]
    risky: set[Path] = set()
    if registry is not None:
        risky.update(registry.recheck((c.path for c in links), policy.workspace, unsafe))
    else:
        risky.update(c.path for c in links if policy.is_hidden(Path(os.path.realpath(c.path))))
    for change in links:
        if change.path not in risky:
            continue
        risky.discard(change.path)
        try:
            if os.path.islink(change.path):
                os.unlink(change.path)
        except OSError as error:
            result.refused.append((change, f"could not withdraw a link into a hidden path: {error.strerror}"))
        result.applied.remove(change)
        withdrawn.append(change)
    for earlier in sorted(risky):
        # A link an earlier command left, whose target has become unsafe since.
        change = Change(earlier, ChangeOp.SYMLINK, link_target=_readlink(earlier))
        try:
            os.unlink(earlier)
        except OSError as error:
            result.refused.append((change, f"could not withdraw a link: {error.strerror}"))
            continue
        withdrawn.append(change)
    return withdrawn


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _git_config_diff(policy: Policy, change: Change) -> ConfigDiff | None:
    """The key/value changes of a write to a git config file in the workspace (None: not one, or it
    cannot be judged key by key, so it stays a plain protected change)."""
    if change.op not in (ChangeOp.CREATE, ChangeOp.MODIFY):
        return None
    try:
        relative = PurePosixPath(change.path.relative_to(policy.workspace))
    except ValueError:
        return None
    if not is_git_config(relative):
        return None
    return diff_captured(change.path, change.source)


def _bind_config_changes(violations: list[Violation], diffs: dict[Path, ConfigDiff]) -> list[Violation]:
    """Give each git config violation its exact key/value changes, shown and bound into rules."""
    bound: list[Violation] = []
    for violation in violations:
        diff = diffs.get(Path(violation.target)) if len(violation.changes) == 1 else None
        if diff is None:
            bound.append(violation)
            continue
        keys = ", ".join(sorted(diff.keys)) or "no keys"
        bound.append(
            dataclasses.replace(
                violation, config_changes=diff.lines, detail=f"{violation.detail}; git config keys: {keys}"
            )
        )
    return bound


def _apply_root(path: Path, roots: Sequence[Path]) -> Path | None:
    candidates = [r for r in roots if r == path or r in path.parents]
    return max(candidates, key=lambda r: len(r.parts)) if candidates else None


def _group(changes: list[Change], kind: ViolationKind, detail: str) -> list[Violation]:
    """One violation per changed path, except that a new directory carries everything created under it."""
    violations: list[Violation] = []
    open_dir: Path | None = None
    bucket: list[Change] = []

    def flush() -> None:
        if bucket:
            head = bucket[0]
            extra = f"{detail}; {len(bucket) - 1} more inside" if len(bucket) > 1 else detail
            violations.append(Violation(kind, str(head.path), head.op.value, extra, tuple(bucket)))

    for change in changes:
        if open_dir is not None and open_dir in change.path.parents:
            bucket.append(change)
            continue
        flush()
        bucket = [change]
        open_dir = change.path if change.op is ChangeOp.MKDIR else None
    flush()
    return violations


class _StatusReader:
    """Reads bwrap's --json-status-fd: a `child-pid` document at start, an `exit-code` one at the end."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._documents: list[dict[str, object]] = []

    def _next_document(self) -> dict[str, object] | None:
        while b"}" not in self._buffer:
            chunk = os.read(self._fd, 4096) if self._fd >= 0 else b""
            if not chunk:
                return None
            self._buffer += chunk
        end = self._buffer.index(b"}") + 1
        raw, self._buffer = self._buffer[:end], self._buffer[end:]
        try:
            document = json.loads(raw)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def child_pid(self) -> int | None:
        document = self._next_document()
        value = document.get("child-pid") if document else None
        return value if isinstance(value, int) else None

    def exit_code(self) -> int | None:
        while (document := self._next_document()) is not None:
            value = document.get("exit-code")
            if isinstance(value, int):
                return value
        return None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP)


def _default_signals_in_child() -> Callable[[], None] | None:
    """What the sandbox's first process needs so that a forwarded Ctrl-C reaches the command: an ignored
    signal stays ignored across exec (corral started with `&` or `nohup` ignores SIGINT) and a blocked
    one stays blocked, so both are reset to the default in the child. None when nothing needs resetting
    (the common case: no code runs between fork and exec)."""
    ignored = [sig for sig in _FORWARDED if signal.getsignal(sig) is signal.SIG_IGN]
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    if not ignored and not blocked:
        return None

    def reset() -> None:
        for sig in ignored:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])

    return reset


def _chained(first: Callable[[], None] | None, then: Callable[[], None]) -> Callable[[], None]:
    if first is None:
        return then

    def both() -> None:
        first()
        then()

    return both


def _signal_command(child: int, sig: int) -> bool:
    """Send `sig` to the process groups below the sandbox's pid 1; False when there is none yet."""
    # Until bwrap's pid 1 has forked *and exec'd* the command, its child is still bwrap (whose handlers
    # would swallow the signal): that is not the command yet.
    targets = [pid for pid in _children(child) if not _still_bwrap(pid, child)]
    for pid in targets:
        try:
            os.killpg(pid, sig)
        except OSError:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    return bool(targets)


def _still_bwrap(pid: int, init: int) -> bool:
    try:
        return Path(f"/proc/{pid}/exe").resolve() == Path(f"/proc/{init}/exe").resolve()
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _check_private_dir(path: Path) -> None:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise SandboxSetupError(f"corral's runtime directory {path} is not a directory owned by you")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def _setup_failure_hint(returncode: int | None) -> str:
    return (
        f"bubblewrap could not create the sandbox (exit {returncode}). Run `corral doctor` for the cause and fix "
        "(most often: unprivileged user namespaces are disabled, e.g. Ubuntu 24.04's AppArmor restriction)"
    )
