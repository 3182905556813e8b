"""A Landlock layer inside bwrap: defence in depth, so that a mistake in the mounts (a path bound writable
that the policy does not make writable) is still refused.

A Landlock-restricted process may no longer change mounts, so the ruleset is applied from inside the
sandbox once bwrap has set them up: the command is started by `sandbox.landlock_exec` (through the system
interpreter, which the sandbox shows), which restricts itself and execs it. The rules come from the policy,
not from the mount list, so they are an independent second statement of what may be written: the
workspace, the capture roots, caches, the private temp dirs and /dev. Reads are not restricted (bwrap's
stand-ins must stay readable for reads of hidden paths to be reported), nor is the network (the sandbox's
own namespace holds only a loopback).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sandbox.bwrap import SandboxSetupError
from sandbox.landlock import abi_version
from sandbox.landlock_launch import Launch, LaunchFailed, system_python
from sandbox.policy import Policy

ALWAYS_WRITABLE = ("/tmp", "/var/tmp", "/dev")
"""Private tmpfs mounts and bwrap's own /dev (device nodes; /dev/shm is a tmpfs inside it)."""


def layer_unavailable() -> str | None:
    """None when the inner layer can be applied here, else what is missing."""
    if abi_version() == 0:
        return "Landlock is not enabled in this kernel"
    if system_python() is None:
        return "no root-owned /usr/bin/python3 to start the Landlock launcher inside the sandbox"
    return None


def inner_rules(policy: Policy) -> dict[str, object]:
    writable = [
        policy.workspace,
        *policy.capture_roots,
        *policy.extra_writable,
        *policy.cache_dirs,
        *policy.private_caches,
        *map(Path, ALWAYS_WRITABLE),
    ]
    return {
        "readable": ["/"],
        "writable": [str(p) for p in dict.fromkeys(writable)],
        "connect_ports": None,
        "isolate_ipc": True,
    }


class InnerLayer:
    """One command's launcher: wrap its argv, pass its fds, then hand over the rules and check it started."""

    def __init__(self, policy: Policy) -> None:
        python = system_python()
        if python is None:
            raise SandboxSetupError(layer_unavailable() or "no interpreter for the Landlock layer")
        self.python = python
        self.spec = inner_rules(policy)
        self.launch = Launch.open()

    def wrap(self, command: Sequence[str]) -> list[str]:
        return self.launch.argv(self.python, command)

    @property
    def child_fds(self) -> list[int]:
        return self.launch.child_fds

    def started(self) -> None:
        """The child holds its ends now: drop ours."""
        self.launch.close_child_ends()

    def released(self) -> None:
        """bwrap released the command: send the rules and wait for the launcher's word."""
        self.launch.send(self.spec)
        try:
            self.launch.status()
        except LaunchFailed as failure:
            raise SandboxSetupError(
                f"the Landlock layer inside the sandbox could not start: {failure}"
            ) from failure

    def close(self) -> None:
        self.launch.close()
