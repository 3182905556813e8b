"""Grouping for display: violations of one kind collapsed under a directory or a domain.

Display only: a group's pattern is never made into a rule. A sensitive violation always stands
alone, so one dangerous item cannot hide among fifty routine ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from boundary.violations import ChangeOp, Violation, ViolationKind
from corral.sensitivity import host_of, is_sensitive


@dataclass(frozen=True, slots=True)
class ViolationGroup:
    """Violations of one kind collapsed under a common directory (`/a/b/`) or domain (`*.example.com`).

    `pattern` is for display only: rules are never made from it (a rule names one path, one directory
    the person chose, or one exact host).
    """

    kind: ViolationKind
    pattern: str
    violations: tuple[Violation, ...]

    @property
    def count(self) -> int:
        """How many violations the group holds."""
        return len(self.violations)


_KIND_WORDS = {
    ViolationKind.FS_WRITE: ("write outside the workspace", "writes outside the workspace"),
    ViolationKind.FS_PROTECTED: ("write to a protected path", "writes to protected paths"),
    ViolationKind.FS_READ: ("credential read", "credential reads"),
    ViolationKind.NET: ("new host", "new hosts"),
    ViolationKind.NET_CREDENTIAL: ("request with a foreign credential", "requests with foreign credentials"),
}
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or"}


def _domain_of(target: str) -> str:
    """A display-only grouping key for a host: its last two labels (three under `co.uk` and the like)."""
    host = host_of(target)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").lower().split(".")
        width = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
        return ".".join(labels[-width:])
    return "IP addresses"


def _collapse_paths(violations: list[Violation], max_groups: int) -> list[tuple[str, list[Violation]]]:
    """Group paths by parent directory, climbing towards `/` until at most `max_groups` remain."""
    keys = {v: PurePosixPath(v.target).parent for v in violations}
    while len(set(keys.values())) > max_groups:
        # Climb every directory at the deepest level at once, so siblings fold together.
        depth = max(len(key.parts) for key in keys.values())
        if depth <= 1:
            break
        keys = {v: (key.parent if len(key.parts) == depth else key) for v, key in keys.items()}
    grouped: dict[str, list[Violation]] = {}
    for violation in violations:
        grouped.setdefault(str(keys[violation]), []).append(violation)
    return [
        (members[0].target if len(members) == 1 else key.rstrip("/") + "/", members)
        for key, members in grouped.items()
    ]


def _collapse_hosts(violations: list[Violation], max_groups: int) -> list[tuple[str, list[Violation]]]:
    grouped: dict[str, list[Violation]] = {}
    for violation in violations:
        grouped.setdefault(_domain_of(violation.target), []).append(violation)
    if len(grouped) > max_groups:
        return [(f"{len(violations)} hosts", violations)]
    return [
        (members[0].target if len(members) == 1 else (key if key == "IP addresses" else f"*.{key}"), members)
        for key, members in grouped.items()
    ]


def group_violations(violations: Sequence[Violation], max_groups: int = 8) -> tuple[ViolationGroup, ...]:
    """Collapse violations for a summary view; at most about `max_groups` groups per kind.

    A sensitive violation is never folded into a group with others: it always stands alone, so one
    dangerous item cannot hide among fifty routine ones.
    """
    groups: list[ViolationGroup] = []
    for kind in ViolationKind:
        of_kind = [v for v in violations if v.kind is kind]
        alone = [v for v in of_kind if is_sensitive(v)]
        rest = [v for v in of_kind if not is_sensitive(v)]
        groups.extend(ViolationGroup(kind, v.target, (v,)) for v in alone)
        if not rest:
            continue
        collapsed = (
            _collapse_hosts(rest, max_groups)
            if kind in (ViolationKind.NET, ViolationKind.NET_CREDENTIAL)
            else _collapse_paths(rest, max_groups)
        )
        groups.extend(ViolationGroup(kind, pattern, tuple(members)) for pattern, members in collapsed)
    return tuple(groups)


_DELETION_WORDS = {
    ViolationKind.FS_WRITE: ("deletion outside the workspace", "deletions outside the workspace"),
    ViolationKind.FS_PROTECTED: ("deletion of a protected path", "deletions of protected paths"),
}


def deleted_paths(violation: Violation) -> int:
    """How many existing host paths `violation` would delete (a deletion is never called a write)."""
    return sum(1 for change in violation.changes if change.op is ChangeOp.DELETE)


def is_deletion(violation: Violation) -> bool:
    """Whether `violation` only deletes existing paths (nothing is written)."""
    return bool(violation.changes) and all(change.op is ChangeOp.DELETE for change in violation.changes)


def summarize(violations: Sequence[Violation]) -> str:
    """One line such as `2 writes outside the workspace, 3 deletions outside the workspace, 1 credential
    read, 50 new hosts`. Deletions are counted by deleted path, separately from writes."""
    parts: list[str] = []
    for kind in ViolationKind:
        of_kind = [v for v in violations if v.kind is kind]
        deletions = sum(deleted_paths(v) for v in of_kind if is_deletion(v)) if kind in _DELETION_WORDS else 0
        count = sum(1 for v in of_kind if not (deletions and is_deletion(v)))
        if count:
            singular, plural = _KIND_WORDS[kind]
            parts.append(f"{count} {singular if count == 1 else plural}")
        if deletions:
            singular, plural = _DELETION_WORDS[kind]
            parts.append(f"{deletions} {singular if deletions == 1 else plural}")
    return ", ".join(parts)
