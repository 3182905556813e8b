"""The bubblewrap backend: `sandbox.runner.SandboxRunner` behind the `sandbox.backend.Backend` protocol.

Whether bwrap can start here is probed once per boot: a probe that succeeded is remembered in corral's
cache (keyed by the boot, the binary and its inode), so `auto` costs one file lookup per session, not a
sandbox start. A failed probe is never remembered: the person may fix it (an AppArmor profile, a sysctl)
and the next session sees bwrap again.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from sandbox.backend import BackendParams, BackendTraits
from sandbox.bwrap import SandboxSetupError
from sandbox.landlock_layer import InnerLayer, layer_unavailable
from sandbox.locate import BwrapBinary, BwrapNotFound, find_bwrap
from sandbox.policy import Policy
from sandbox.runner import SandboxRunner

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class BwrapBackend(SandboxRunner):
    """Linux namespaces with overlay capture: the reference every other backend is compared with."""

    traits = BackendTraits(
        name="bwrap",
        title="bubblewrap (Linux namespaces + overlayfs capture)",
        enforces=(
            "own mount, pid, user and network namespaces; reads of hidden paths see decoys and are reported; "
            "writes outside the workspace and to protected paths are captured and asked about; the network "
            "only through corral's proxy; the seccomp filter; resource limits"
        ),
    )

    def __init__(self, params: BackendParams) -> None:
        super().__init__(
            runtime_dir=params.runtime_dir,
            cache_dir=params.cache_dir,
            layers_dir=params.layers_dir,
            limits=params.limits,
        )
        self.params = params

    def inner_layer(self, policy: Policy) -> InnerLayer | None:
        """With `sandbox.landlock_layer`, every command also runs under Landlock inside the sandbox."""
        if not self.params.landlock_layer:
            return None
        missing = layer_unavailable()
        if missing is not None:
            raise SandboxSetupError(f"the Landlock layer (sandbox.landlock_layer) cannot run: {missing}")
        return InnerLayer(policy)

    @staticmethod
    def unavailable(params: BackendParams) -> str | None:
        try:
            binary = find_bwrap(workspace=params.workspace, cache_dir=params.cache_dir)
        except BwrapNotFound as error:
            return str(error)
        return namespaces_refused(binary, params.cache_dir)


def namespaces_refused(binary: BwrapBinary, cache_dir: Path) -> str | None:
    """None when `binary` can make a user and network namespace here, else bwrap's own one-line error."""
    marker = _probe_marker(binary, cache_dir)
    if marker is not None and marker.exists():
        return None
    try:
        probe = subprocess.run(
            [str(binary.path), "--unshare-user", "--unshare-net", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not be started: {error}"
    if probe.returncode != 0:
        detail = probe.stderr.strip().splitlines()
        return (
            f"bubblewrap cannot create a user namespace here ({detail[-1] if detail else f'exit {probe.returncode}'}); "
            "`corral doctor` says how to allow it"
        )
    if marker is not None:
        try:
            marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass  # only a cache: the next session probes again
    return None


def _probe_marker(binary: BwrapBinary, cache_dir: Path) -> Path | None:
    try:
        boot = _BOOT_ID.read_text().strip()
        st = binary.path.stat()
    except OSError:
        return None
    key = f"{boot}:{binary.path}:{st.st_ino}:{st.st_mtime_ns}:{os.geteuid()}"
    return cache_dir / "probes" / f"bwrap-userns-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
