"""The gVisor tier (`--backend gvisor`): bwrap's runner, with runsc between bwrap and the command.

Everything but the argv and the seccomp filter is `sandbox.runner.SandboxRunner`'s: the same layout,
capture layers, decoys, proxy hook, pid-namespace kill and apply step (see `sandbox.gvisor`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.backend import BackendParams, BackendTraits
from sandbox.bwrap import SandboxLayout, SandboxSetupError, build_argv
from sandbox.bwrap_backend import BwrapBackend
from sandbox.gvisor import (
    COST,
    DECOY_CONTENT,
    GVISOR_FILTER,
    SANDBOX_ID,
    Runsc,
    RunscUnavailable,
    find_runsc,
    runsc_argv,
)
from sandbox.locate import BwrapBinary
from sandbox.policy import Policy
from sandbox.seccomp import FilterProfile


class GvisorBackend(BwrapBackend):
    """Runs each command under runsc inside the bwrap-prepared view."""

    shares_place = False  # runsc makes its own namespaces: a session's shared place is not for it

    traits = BackendTraits(
        name="gvisor",
        title="gVisor (runsc) inside bubblewrap",
        enforces=(
            "everything bwrap enforces (the same view, capture, decoys, proxy and limits), and the command "
            "talks to gVisor's user-space kernel instead of the host's: a kernel bug it exploits is "
            "gVisor's, not the host's"
        ),
        cannot=(
            f"costs more: {COST}",
            "allows, at bwrap's layer only, a nested user namespace, AF_UNIX sockets and ptrace, which runsc "
            "itself needs (the command's own system calls go to gVisor, under gVisor's stricter filter)",
            "shows gVisor's kernel (Linux 4.4.0 in uname), so kernel-specific tools may behave differently; "
            "`ls -l` of symlinks and unreadable directories prints 'Bad file descriptor' with runsc 20240729 (a gVisor xattr bug)",
        ),
        enforces_less=False,
    )

    filter_profile: FilterProfile = GVISOR_FILTER
    decoy_content = DECOY_CONTENT

    _runsc: Runsc | None = None

    @staticmethod
    def unavailable(params: BackendParams) -> str | None:
        try:
            find_runsc(cache_dir=params.cache_dir)
        except RunscUnavailable as error:
            return str(error)
        return BwrapBackend.unavailable(params)

    def doctor_lines(self) -> list[str]:
        """What `corral doctor` adds for this backend: the runsc that runs, and what the tier costs."""
        try:
            runsc = self.runsc()
        except SandboxSetupError as error:
            return [f"runsc: {error}"]
        return [f"runsc: {runsc.path} ({runsc.version}; 2024 or later required)"]

    def runsc(self) -> Runsc:
        """The runsc binary (looked up once per runner); raises SandboxSetupError when there is none."""
        if self._runsc is None:
            try:
                self._runsc = find_runsc(cache_dir=self.cache_dir)
            except RunscUnavailable as error:
                raise SandboxSetupError(str(error)) from error
        return self._runsc

    def preflight(self, policy: Policy) -> tuple[BwrapBinary, Path]:
        self.runsc()
        return super().preflight(policy)

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
        return build_argv(
            bwrap,
            policy,
            layout,
            runsc_argv(self.runsc().path, command, policy.env),
            seccomp_fd=seccomp_fd,
            status_fd=status_fd,
            block_fd=block_fd,
            shared_net=shared_net,
            nested_userns=True,
            sandbox_id=SANDBOX_ID if os.geteuid() == 0 else None,
        )
