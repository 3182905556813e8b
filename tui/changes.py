"""The captured change set of a prompt, described for a person: file list, sizes, and a diff for text.

A violation's `changes` point at captured files in the command's capture directory (`Change.source`)
and at the host path they would replace (`Change.path`). Both are read here without following a
symlink and only up to `MAX_DIFF_INPUT` bytes; binary content is named, never shown. The diff is plain
text: callers pass it through `tui.inert` before it reaches a screen.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from boundary.violations import Change, ChangeOp, Violation

MAX_DIFF_INPUT = 256 * 1024
"""Files larger than this are listed but not diffed."""
MAX_DIFF_LINES = 400
"""Diff lines shown per file."""


@dataclass(frozen=True, slots=True)
class ChangeLine:
    """One captured change, for a list: operation, host path, size and mode as words."""

    op: str
    path: str
    size: str
    mode: str
    note: str


def human_size(size: int) -> str:
    """`1.2 kB`-style size for a list."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def describe(change: Change) -> ChangeLine:
    """The list row for one change."""
    note = ""
    if change.op is ChangeOp.SYMLINK:
        note = f"-> {change.link_target or '?'}"
    elif change.mode and change.mode & (stat.S_ISUID | stat.S_ISGID):
        note = "setuid/setgid: will be refused"
    mode = f"{stat.S_IMODE(change.mode):04o}" if change.mode else ""
    size = human_size(change.size) if change.op in (ChangeOp.CREATE, ChangeOp.MODIFY) else ""
    return ChangeLine(change.op.value, str(change.path), size, mode, note)


def _read_regular(path: Path, limit: int = MAX_DIFF_INPUT) -> bytes | None:
    """The bytes of a regular file (not through a symlink), or None when absent, special or too big."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0 and (chunk := os.read(fd, min(65536, remaining))):
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        return None if len(data) > limit else data
    finally:
        os.close(fd)


def _as_text(data: bytes) -> list[str] | None:
    if b"\x00" in data:
        return None
    return data.decode("utf-8", errors="replace").splitlines(keepends=True)


def diff_for(change: Change) -> list[str]:
    """Unified diff lines (host file -> captured file) for a text change; a one-line note otherwise."""
    if change.op is ChangeOp.DELETE:
        return [f"delete {change.path}"]
    if change.op in (ChangeOp.MKDIR, ChangeOp.CHMOD, ChangeOp.SYMLINK):
        return [f"{change.op.value} {change.path}"]
    if change.source is None:
        return [f"{change.path}: captured content unavailable"]
    new = _read_regular(change.source)
    if new is None:
        return [f"{change.path}: not shown (larger than {human_size(MAX_DIFF_INPUT)} or not a regular file)"]
    new_lines = _as_text(new)
    if new_lines is None:
        return [f"{change.path}: binary content, {human_size(len(new))}"]
    old = _read_regular(change.path) if change.op is ChangeOp.MODIFY else b""
    old_lines = _as_text(old) if old is not None else None
    if old_lines is None:
        old_lines = []
    # The path is already on the change's row: the diff headers say which side is which, not the path.
    host_label = "on the host" if change.op is ChangeOp.MODIFY else "/dev/null (new file)"
    lines = [line.rstrip("\n") for line in difflib.unified_diff(old_lines, new_lines, host_label, "captured")]
    if not lines:
        if not new and change.op is not ChangeOp.MODIFY:
            return [f"{change.path}: new empty file"]
        return [f"{change.path}: content unchanged (metadata only)"]
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more diff lines not shown"]
    return lines


def shows_target_line(violation: Violation, changes: list[Change]) -> bool:
    """Whether a change list needs the violation's target above it: not when its only change is the
    target itself (each path is shown once)."""
    return not (len(changes) == 1 and str(changes[0].path) == violation.target)


def change_set(violations: tuple[Violation, ...] | list[Violation]) -> list[tuple[Violation, list[Change]]]:
    """The violations that carry captured changes, with their changes."""
    return [(v, list(v.changes)) for v in violations if v.changes]
