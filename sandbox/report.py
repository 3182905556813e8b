"""The words every layer shares about what a sandboxed command did.

`Violation` is what crossed the boundary; `Change` is one captured filesystem change; `RunResult`
is everything one sandboxed run produced. The report JSON, the ledger, the dialogs and the MCP tool
all speak these types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class ViolationKind(StrEnum):
    """What kind of boundary a command crossed."""

    FS_WRITE = "fs-write"
    """A create / modify / delete outside the writable set (captured, not yet on the host)."""
    FS_PROTECTED = "fs-protected"
    """The same for a protected path inside the workspace (hooks, agent config, rc files...)."""
    FS_READ = "fs-read"
    """An attempt to read a hidden credential path; the command got nothing."""
    NET = "net"
    """A connection to a host that no rule allowed."""


class ChangeOp(StrEnum):
    """One captured filesystem operation, as the command left things when it ended."""

    CREATE = "create"
    MODIFY = "modify"
    DELETE = "delete"
    MKDIR = "mkdir"
    SYMLINK = "symlink"
    CHMOD = "chmod"


@dataclass(frozen=True, slots=True)
class Change:
    """One change a command made, captured in an overlay upper directory.

    `path` is the absolute host path the change applies to; `source` is the captured file in the
    upper directory (None for deletions); `link_target` is set for symlinks.
    """

    path: Path
    op: ChangeOp
    source: Path | None = None
    size: int = 0
    mode: int = 0
    link_target: str | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    """One crossing of the boundary: what kind, which target, which operation.

    `target` is a path (fs-*) or `host:port` (net); `operation` is a `ChangeOp` value for writes,
    `read` for reads, `connect` for the network. `detail` is free text for a person.
    """

    kind: ViolationKind
    target: str
    operation: str
    detail: str = ""
    changes: tuple[Change, ...] = field(default=(), compare=False, hash=False)
    """For fs-write / fs-protected: the captured changes an allow would apply."""

    def key(self) -> tuple[str, str]:
        """Identity used to avoid asking twice in one session."""
        return (self.kind.value, self.target)


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
    run_dir: Path | None = None
    """Holds the captured content of pending changes until they are applied or discarded."""
    notices: list[str] = field(default_factory=list)
    """One line per resource bound the command ran into (`sandbox.limits`), for the person."""
    release: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    """Frees the run directory once pending changes are applied or discarded (set by the runner)."""
