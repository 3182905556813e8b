"""The gVisor tier (`--backend gvisor`): bwrap's runner, with runsc between bwrap and the command.

Everything but the argv and the seccomp filter is `sandbox.runner.SandboxRunner`'s: the same layout,
capture layers, decoys, proxy hook, pid-namespace kill and apply step (see `sandbox.gvisor`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.bwrap import SandboxLayout, SandboxSetupError, build_argv
from sandbox.gvisor import GVISOR_FILTER, SANDBOX_ID, Runsc, RunscUnavailable, find_runsc, runsc_argv
from sandbox.locate import BwrapBinary
from sandbox.policy import Policy
from sandbox.runner import SandboxRunner
from sandbox.seccomp import FilterProfile


class GvisorRunner(SandboxRunner):
    """Runs each command under runsc inside the bwrap-prepared view."""

    filter_profile: FilterProfile = GVISOR_FILTER

    _runsc: Runsc | None = None

    def runsc(self) -> Runsc:
        """The runsc binary (looked up once per runner); raises SandboxSetupError when there is none."""
        if self._runsc is None:
            try:
                self._runsc = find_runsc()
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
    ) -> list[str]:
        return build_argv(
            bwrap,
            policy,
            layout,
            runsc_argv(self.runsc().path, command, policy.env),
            seccomp_fd=seccomp_fd,
            status_fd=status_fd,
            block_fd=block_fd,
            nested_userns=True,
            sandbox_id=SANDBOX_ID if os.geteuid() == 0 else None,
        )
