"""The words both sides of the boundary share about what a command crossed.

`Violation` is one crossing (a write outside the workspace, a protected path, a credential read, a
host); `Change` is one captured filesystem change an allow would apply. The sandbox produces them, the
core decides on them, the ledger, the report JSON and the dialogs show them: one definition, so a
kind or an operation can never mean two things in two layers.
"""

from __future__ import annotations

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
    NET_CREDENTIAL = "net-credential"
    """A request to a brokered host carrying a credential that is not the session's own (refused; the
    target is the host, the detail names the header or field, never the value). Never allowed."""


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

    What the scan saw, so that applying checks it is still the same thing (see `sandbox.apply`):
    `source_root` is the upper directory `source` lies in (reached fd-relative, never by path),
    `source_id` the (st_dev, st_ino) of the captured entry, `host_id` the (st_dev, st_ino, st_ctime_ns)
    of the host entry it replaces, None when there was none.
    """

    path: Path
    op: ChangeOp
    source: Path | None = None
    size: int = 0
    mode: int = 0
    link_target: str | None = None
    source_root: Path | None = field(default=None, compare=False)
    source_id: tuple[int, int] | None = field(default=None, compare=False)
    host_id: tuple[int, int, int] | None = field(default=None, compare=False)


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
    config_changes: tuple[str, ...] = ()
    """For a git config file: its exact key/value changes (`+key=value`, `-key=value`, from
    `sandbox.gitconfig`). A project rule made from this violation allows these and nothing else."""
    reruns_on_allow: bool = field(default=False, compare=False)
    """True where the write was refused, not captured (Seatbelt): allowing it re-runs the whole command
    with that path writable, and the prompt says so before the answer."""

    def key(self) -> tuple[str, str]:
        """Identity used to avoid asking twice in one session."""
        return (self.kind.value, self.target)
