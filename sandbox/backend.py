"""One interface for every sandbox backend, and the one place that picks which of them runs.

The core builds a `BackendParams` (what was asked for, where corral keeps its files, the resource
bounds), calls `choose_backend(params)` and gets a `Backend` and the reason it was picked. From then on it
runs commands through the `Backend` protocol only: the same `Policy` in, the same `RunResult` (exit code,
violations, applied changes) out, so the core never knows which backend ran. The shape follows
sandbox-runtime's: one parameters object that names the backend and the policy, one runner.

Registering a backend is one entry of `BACKENDS` (its name and the module and class that build it,
imported only when it is picked, so `corral run` loads nothing it does not use). A backend class has:

- `traits: BackendTraits` — what it enforces and what it cannot do compared with bwrap (shown by
  `corral doctor` and `corral policy`);
- `unavailable(params) -> str | None` (a static method) — None when it can run here, else one line naming
  what is missing (a forced backend then refuses: exit 125 with that line);
- `__init__(params)` — builds the runner.

`auto` picks Seatbelt on macOS, and bubblewrap on Linux. Where bubblewrap cannot start (e.g. Ubuntu 24.04's AppArmor blocks the unprivileged
user namespaces it needs) `auto` falls back to Landlock, never silently: the choice carries `fallback`, its
reason names why bwrap could not run, and every front end prints, when it opens, what Landlock does not
cover (`ChosenBackend.warning`); `corral doctor` and `corral policy` list all of it. Where neither can
run, `auto` refuses (exit 125) naming what each is missing. A backend asked for by name never falls back.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

from boundary.backends import AUTO, BACKEND_NAMES
from boundary.violations import Violation
from sandbox.apply import ApplyOutcome
from sandbox.bwrap import SandboxSetupError
from sandbox.limits import ResourceLimits
from sandbox.policy import Policy
from sandbox.report import RunResult
from sandbox.runner import NetworkHook, StdioSpec


class BackendRefused(SandboxSetupError):
    """The backend asked for cannot enforce the policy here: nothing runs (exit 125)."""

    summary = "the sandbox backend cannot run here"


@dataclass(frozen=True, slots=True)
class BackendTraits:
    """What a backend is, for the person: its name, what it enforces, and what it cannot do that bwrap does."""

    name: str
    title: str
    """e.g. "bubblewrap (Linux namespaces)"."""
    enforces: str
    """One line: what this backend enforces."""
    cannot: tuple[str, ...] = ()
    """What it cannot do compared with bwrap, one short line each (empty for bwrap itself)."""
    enforces_less: bool = True
    """False for a backend that enforces everything bwrap does and more (gVisor): its `cannot` lines are
    costs and differences, shown by `corral doctor`, and front ends do not warn each time it opens."""
    captures_writes: bool = True
    """False: a write outside the workspace is refused, not captured, so approving it re-runs the command
    with that path writable (the prompt says so)."""


@dataclass(frozen=True, slots=True)
class BackendParams:
    """Everything a backend needs to be chosen and built (the shape of sandbox-runtime's parameters).

    `requested` is the name asked for (`auto` when nothing was), `requested_by` where that came from
    (`--backend`, the user config file, or "default"), for messages. `policy`, when known at this point,
    is checked by the chosen backend (a backend that cannot enforce it refuses).
    """

    runtime_dir: Path
    cache_dir: Path
    layers_dir: Path | None = None
    limits: ResourceLimits | None = None
    requested: str = AUTO
    requested_by: str = "default"
    workspace: Path | None = None
    policy: Policy | None = None
    landlock_layer: bool = False
    """bwrap only: apply a Landlock ruleset inside the sandbox too (defence in depth)."""
    options: tuple[tuple[str, str], ...] = field(default=())
    """Backend-specific settings (name, value), for backends that need more than the above."""


class Backend(Protocol):
    """Runs commands under a `Policy` and reports what they crossed. Every backend is this, and only this,
    to the core."""

    traits: BackendTraits

    def run(
        self,
        command: Sequence[str],
        policy: Policy,
        *,
        stdio: StdioSpec = ...,
        network: NetworkHook | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> RunResult:
        """Run `command`; raise SandboxSetupError (and run nothing) if the sandbox cannot start."""
        ...

    def starting(self) -> AbstractContextManager[None]:
        """A command is on its way: an interrupt arriving before its process exists is kept for it."""
        ...

    def interrupt(self, sig: int = ...) -> None:
        """Forward `sig` to every command running now (or keep it for one still starting)."""
        ...

    def settle(self, result: RunResult, allowed: Sequence[Violation]) -> ApplyOutcome:
        """Apply the changes of the `allowed` violations, discard the rest, free the run's files."""
        ...

    def describe(self, policy: Policy, command: Sequence[str]) -> list[str]:
        """The argv that would run (`corral policy --backend-args`)."""
        ...


class BackendClass(Protocol):
    traits: BackendTraits

    def __call__(self, params: BackendParams) -> Backend: ...

    def unavailable(self, params: BackendParams) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Registration:
    """Where a backend's class lives (imported only when it is picked)."""

    module: str
    attribute: str
    platform: str = "linux"

    def load(self) -> BackendClass:
        return cast(BackendClass, getattr(importlib.import_module(self.module), self.attribute))


BACKENDS: dict[str, Registration] = {
    "bwrap": Registration("sandbox.bwrap_backend", "BwrapBackend"),
    "landlock": Registration("sandbox.landlock_backend", "LandlockBackend"),
    "gvisor": Registration("sandbox.gvisor_backend", "GvisorBackend"),
    "seatbelt": Registration("sandbox.seatbelt_backend", "SeatbeltBackend", platform="darwin"),
}
"""Every backend corral can run, by the name `--backend` and the config key take. One line each."""

KNOWN_NAMES = BACKEND_NAMES

AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "linux": ("bwrap", "landlock"),
    "darwin": ("seatbelt",),
}
"""What `auto` tries on each platform, in order. Linux: bwrap, which enforces the whole policy, then
Landlock where bwrap cannot start (it enforces less: the front end says what, every time a session
opens). macOS: Seatbelt."""


def auto_order(platform: str | None = None) -> tuple[str, ...]:
    """The backends `auto` tries on `platform` (this one by default; Linux's order on a platform this
    table does not name)."""
    return AUTO_ORDER.get(platform or sys.platform, AUTO_ORDER["linux"])


@dataclass(frozen=True, slots=True)
class Choice:
    """The backend picked and why (one line, for `corral doctor`, `corral policy` and warnings)."""

    backend: Backend
    reason: str
    fallback: bool = False
    """True when `auto` could not use bwrap and picked a weaker backend: the front end warns."""


def backend_names() -> tuple[str, ...]:
    return KNOWN_NAMES


def traits_of(name: str) -> BackendTraits | None:
    """The traits of a registered backend (None when it is not registered on this build)."""
    registration = BACKENDS.get(name)
    return registration.load().traits if registration is not None else None


def unavailable(name: str, params: BackendParams) -> str | None:
    """None when backend `name` can run here, else one line naming what is missing."""
    registration = BACKENDS.get(name)
    if registration is None:
        return f"the {name} backend is not part of this corral build"
    return registration.load().unavailable(params)


def choose_backend(params: BackendParams) -> tuple[Backend, str]:
    """The backend that runs, and why. Raises BackendRefused (nothing runs) when the backend asked for
    cannot run here, or when `auto` finds none."""
    choice = choose(params)
    return choice.backend, choice.reason


def choose(params: BackendParams) -> Choice:
    """`choose_backend`, with whether `auto` fell back to a weaker backend."""
    if params.requested not in KNOWN_NAMES:
        raise BackendRefused(
            f"{params.requested_by}: unknown backend '{params.requested}' (one of: {', '.join(KNOWN_NAMES)})"
        )
    if params.requested != AUTO:
        name = params.requested
        missing = unavailable(name, params)
        if missing is not None:
            raise BackendRefused(f"backend {name} (from {params.requested_by}) cannot run: {missing}")
        return Choice(_build(name, params), f"{name}: asked for by {params.requested_by}")
    reasons: list[str] = []
    for name in auto_order():
        missing = unavailable(name, params)
        if missing is None:
            if not reasons:
                return Choice(_build(name, params), f"{name}: the default")
            because = "; ".join(reasons)
            return Choice(
                _build(name, params), f"{name}: automatic fallback, because {because}", fallback=True
            )
        reasons.append(f"{name} cannot run ({missing})")
    raise BackendRefused("no sandbox backend can run here: " + "; ".join(reasons))


def _build(name: str, params: BackendParams) -> Backend:
    return BACKENDS[name].load()(params)
