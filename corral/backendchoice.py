"""Which sandbox backend a session runs with: `--backend NAME` over the user config's `sandbox.backend`
over `auto`, handed to `sandbox.backend.choose_backend` once, where the session is composed.

`--backend` is set here by the command line (`request_backend`) before the front end starts, so every
front end (`corral run`, both shells, `corral session`, `corral policy`) opens its session with it and
none of them has to carry it. A backend that cannot run refuses: `SetupError`, exit 125, one line naming
what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from boundary.backends import AUTO, BACKEND_NAMES
from corral.errors import SetupError
from corral.locations import Locations

if TYPE_CHECKING:  # the client path (`corral run` joining a live session) loads no sandbox module
    from sandbox.backend import Backend, BackendTraits
    from sandbox.limits import ResourceLimits


@dataclass(frozen=True, slots=True)
class BackendRequest:
    """A backend name and where it was asked for (`--backend`, a config file, or "default")."""

    name: str = AUTO
    source: str = "default"
    landlock_layer: bool = False
    """bwrap: a Landlock ruleset inside the sandbox too (the config's `sandbox.landlock_layer`)."""


_from_command_line: BackendRequest | None = None


def request_backend(name: str | None) -> None:
    """`--backend NAME` of this corral process (None or "auto": no preference on the command line)."""
    global _from_command_line
    _from_command_line = None if name in (None, AUTO) else BackendRequest(str(name), "--backend")


def command_line_request() -> BackendRequest | None:
    """The `--backend` of this process, when one was given (a live session is then not joined)."""
    return _from_command_line


def effective_request(
    configured: str | None, config_source: str, *, landlock_layer: bool = False
) -> BackendRequest:
    """`--backend` over the config key over `auto`."""
    if _from_command_line is not None:
        return replace(_from_command_line, landlock_layer=landlock_layer)
    if configured is not None and configured != AUTO:
        return BackendRequest(configured, f"{config_source} key 'sandbox.backend'", landlock_layer)
    return BackendRequest(landlock_layer=landlock_layer)


@dataclass(frozen=True, slots=True)
class ChosenBackend:
    """The backend a session runs with, why, and whether it is a fallback the person must hear about."""

    backend: Backend
    reason: str
    fallback: bool

    @property
    def traits(self) -> BackendTraits:
        return self.backend.traits

    def warning(self) -> str | None:
        """One line for the front end when the backend enforces less than bwrap: the first (the most
        important) of what it cannot do."""
        if not self.traits.cannot or not self.traits.enforces_less:
            return None
        name = self.traits.name
        if self.fallback:
            because = self.reason.partition(", because ")[2] or self.reason
            return (
                f"{because}, so commands run under the {name} backend (automatic fallback), which enforces "
                f"less than bwrap: it {self.traits.cannot[0]}; `corral doctor` says how to make bwrap work "
                "and lists the rest"
            )
        return (
            f"sandbox backend {self.traits.name} ({self.reason}) enforces less than bwrap: it "
            f"{self.traits.cannot[0]}; `corral doctor --backend {self.traits.name}` lists the rest"
        )


def open_backend(
    request: BackendRequest,
    locations: Locations,
    *,
    workspace: Path | None,
    limits: ResourceLimits | None,
) -> ChosenBackend:
    """Choose and build the backend, or raise SetupError (exit 125) with the one line of what is missing."""
    from sandbox.backend import BackendParams, BackendRefused, choose

    params = BackendParams(
        runtime_dir=locations.runtime_dir,
        cache_dir=locations.cache_dir,
        layers_dir=locations.cache_layers_dir,
        limits=limits,
        requested=request.name,
        requested_by=request.source,
        workspace=workspace,
        landlock_layer=request.landlock_layer,
    )
    try:
        choice = choose(params)
    except BackendRefused as error:
        raise SetupError(str(error)) from error
    return ChosenBackend(choice.backend, choice.reason, choice.fallback)


__all__ = [
    "BACKEND_NAMES",
    "BackendRequest",
    "ChosenBackend",
    "effective_request",
    "open_backend",
    "request_backend",
]
