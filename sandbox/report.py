"""What one sandboxed run produced: `RunResult`.

The words inside it (`Violation`, `Change` and their kinds) live in the leaf package `boundary`, which
the core and the trust layer read as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from boundary.violations import Change, Violation

if TYPE_CHECKING:
    from sandbox.background import KeptSandbox


@dataclass(slots=True)
class RunResult:
    """What one sandboxed run produced.

    `changes` are the captured filesystem changes not yet applied to the host; `violations` lists
    every crossing (writes outside, protected paths, credential reads, network) with no decision.
    `applied` lists workspace changes corral applied with no prompt.
    """

    exit_code: int
    duration_ms: float
    changes: list[Change] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    applied: list[Change] = field(default_factory=list)
    refused: list[tuple[Change, str]] = field(default_factory=list)
    """Workspace changes the safe apply step refused (symlinked parents, devices, setuid...)."""
    capture_roots: list[Path] = field(default_factory=list)
    """Where each captured change would apply (the mount points of the capture layers)."""
    started_ns: int = 0
    """When the command started (`time.time_ns()`): a host entry changed after it is a conflict."""
    run_dir: Path | None = None
    """Holds the captured content of pending changes until they are applied or discarded."""
    notices: list[str] = field(default_factory=list)
    """One line per resource bound the command ran into (`sandbox.limits`), for the person."""
    release: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    """Frees the run directory once pending changes are applied or discarded (set by the runner)."""
    background: KeptSandbox | None = field(default=None, repr=False, compare=False)
    """The command's sandbox, kept because it left processes running in the session's background
    (`sandbox.background`); its layers stay held until `SandboxRunner.finish_background`."""
    exclusive: bool = True
    """Its layers were read with every sandboxed process gone (False: kept ones may still write, so the
    apply step copies captured files instead of moving them)."""
