"""The macOS backend (`--backend seatbelt`): the command runs under `/usr/bin/sandbox-exec` (never one
from PATH) with the profile `sandbox.seatbelt` generates from the same `Policy`.

One run:
1. a fresh tag and a private temp directory; the profile (every deny tagged) written beside it;
2. `sandbox-exec -f PROFILE -- COMMAND` in the policy's working directory, with its environment only;
3. the command's tagged denials read back from the unified log (`sandbox.seatbelt_log`) as the same
   violation kinds as on Linux.

Without overlayfs a refused write is refused, not captured, so nothing waits to be applied: when the
person allows an `fs-write` / `fs-protected`, `settle` re-runs the whole command with exactly those
paths writable (the violation's detail, which the prompt shows before the answer, says so), and the
re-run's exit status becomes the command's. Anything the re-run is refused again is reported as refused.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from boundary.violations import Change, ChangeOp, Violation, ViolationKind
from sandbox.apply import ApplyOutcome
from sandbox.backend import BackendParams, BackendTraits
from sandbox.bwrap import SandboxSetupError
from sandbox.host_proxy import open_listener, serve
from sandbox.policy import Policy
from sandbox.report import RunResult
from sandbox.runner import NetworkHook, StdioSpec
from sandbox.seatbelt import SANDBOX_EXEC, generate_profile, params_from_policy, sandbox_exec_argv
from sandbox.seatbelt_log import read_denials, violations_from

_REWRITABLE = (ViolationKind.FS_WRITE, ViolationKind.FS_PROTECTED)
_INHERIT = StdioSpec()


@dataclass(frozen=True, slots=True)
class _Pending:
    """What a re-run needs: the same command, policy and output."""

    command: tuple[str, ...]
    policy: Policy
    stdio: StdioSpec
    network: NetworkHook | None


def rerun_paths(allowed: Sequence[Violation]) -> tuple[Path, ...]:
    """The paths an approval makes writable for the re-run (writes only; reads and hosts re-run nothing)."""
    return tuple(dict.fromkeys(Path(v.target) for v in allowed if v.kind in _REWRITABLE))


class SeatbeltBackend:
    """Runs commands under Seatbelt; see the module docstring."""

    traits = BackendTraits(
        name="seatbelt",
        title="Seatbelt (macOS sandbox-exec)",
        enforces=(
            "deny by default; reads everywhere but hidden paths; writes only to the workspace and a private "
            "temp dir, never to protected paths or their ancestors; the network only to corral's proxy port; "
            "no Unix sockets, Apple Events or Launch Services"
        ),
        cannot=(
            "writes are refused, not captured: approving one re-runs the whole command with that path writable",
            "a refused read fails (EPERM) instead of seeing a decoy",
            "no pid namespace: background processes are killed by process group, not proven gone",
            "no resource limits beyond the command's own",
            "violations come from the unified log, which can lag: a late denial may be missing from the report",
        ),
        captures_writes=False,
    )

    def __init__(self, params: BackendParams) -> None:
        self.params = params
        self._pending: dict[int, _Pending] = {}
        self._groups: set[int] = set()
        self._lock = threading.Lock()

    @staticmethod
    def unavailable(params: BackendParams) -> str | None:
        if sys.platform != "darwin":
            return "Seatbelt runs only on macOS"
        if not SANDBOX_EXEC.is_file():
            return f"{SANDBOX_EXEC} is missing (corral runs no sandbox-exec from PATH)"
        return None

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        yield

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        with self._lock:
            groups = list(self._groups)
        for group in groups:
            with contextlib.suppress(OSError):
                os.killpg(group, sig)

    def describe(self, policy: Policy, command: Sequence[str]) -> list[str]:
        return sandbox_exec_argv(self.params.runtime_dir / "PROFILE.sb", list(command))

    def run(
        self,
        command: Sequence[str],
        policy: Policy,
        *,
        stdio: StdioSpec = _INHERIT,
        network: NetworkHook | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> RunResult:
        result = self._run(tuple(command), policy, stdio, network, (), on_start)
        if any(v.kind in _REWRITABLE for v in result.violations):
            self._pending[id(result)] = _Pending(tuple(command), policy, stdio, network)
        return result

    def _run(
        self,
        command: tuple[str, ...],
        policy: Policy,
        stdio: StdioSpec,
        network: NetworkHook | None,
        approved: tuple[Path, ...],
        on_start: Callable[[int], None] | None,
    ) -> RunResult:
        tag = secrets.token_hex(8)
        self.params.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        run_dir = Path(os.path.realpath(self.params.runtime_dir)) / f"seatbelt-{tag}"
        run_dir.mkdir(mode=0o700)
        # The command's private temp dir lies outside corral's state (which the profile hides), in the
        # system's per-user temp directory; paths as the kernel sees them (/private/var/...).
        temp_dir = Path(os.path.realpath(tempfile.mkdtemp(prefix=f"corral-{tag}-")))
        listener: socket.socket | None = None
        try:
            env = {**policy.env, "TMPDIR": f"{temp_dir}/"}
            # corral's proxy on the host's loopback, on a port of this command's own: the profile allows
            # TCP to that port and nothing else.
            listener = open_listener(policy, network, env, "Seatbelt")
            port = int(listener.getsockname()[1]) if listener is not None else None
            params = params_from_policy(
                policy, tag=tag, temp_dir=temp_dir, proxy_port=port, approved=approved
            )
            profile = run_dir / "profile.sb"
            profile.write_text(generate_profile(params))
            if listener is not None:
                serve(network, listener)
            since = datetime.now(UTC)
            started = time.perf_counter()
            try:
                process = subprocess.Popen(
                    sandbox_exec_argv(profile, command),
                    stdin=stdio.stdin,
                    stdout=stdio.stdout,
                    stderr=stdio.stderr,
                    cwd=policy.cwd,
                    env=env,
                    process_group=0,
                    close_fds=True,
                )
            except OSError as error:
                raise SandboxSetupError(f"could not start {SANDBOX_EXEC}: {error}") from error
            with self._lock:
                self._groups.add(process.pid)
            try:
                if on_start is not None:
                    on_start(process.pid)
                exit_code = process.wait()
            finally:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)  # what it left running in its group
                with self._lock:
                    self._groups.discard(process.pid)
            duration_ms = (time.perf_counter() - started) * 1000
            refusals, lag = read_denials(tag, since)
        finally:
            if listener is not None:
                listener.close()
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(temp_dir, ignore_errors=True)
        denials = violations_from(refusals, policy)
        result = RunResult(exit_code=exit_code, duration_ms=duration_ms, started_ns=time.time_ns())
        result.violations.extend(denials.violations)
        result.notices.extend(denials.notices)
        if lag is not None:
            result.notices.append(lag)
        return result

    def settle(self, result: RunResult, allowed: Sequence[Violation]) -> ApplyOutcome:
        """Nothing was captured, so nothing is applied: an allowed write re-runs the command with that
        path writable (the re-run's exit status becomes the result's)."""
        pending = self._pending.pop(id(result), None)
        paths = rerun_paths(allowed)
        if pending is None or not paths:
            return ApplyOutcome((), ())
        shown = ", ".join(str(p) for p in paths)
        result.notices.append(
            f"re-running the command with {shown} writable (Seatbelt cannot capture writes)"
        )
        again = self._run(pending.command, pending.policy, pending.stdio, pending.network, paths, None)
        result.exit_code = again.exit_code
        result.notices.extend(again.notices)
        applied = tuple(Change(Path(v.target), _op(v.operation)) for v in allowed if v.kind in _REWRITABLE)
        refused = tuple(
            (Change(Path(v.target), _op(v.operation)), "refused by Seatbelt in the re-run")
            for v in again.violations
            if v.kind in _REWRITABLE
        )
        return ApplyOutcome(applied, refused)


def _op(operation: str) -> ChangeOp:
    try:
        return ChangeOp(operation)
    except ValueError:
        return ChangeOp.MODIFY
