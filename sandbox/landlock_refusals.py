"""The Landlock backend's refused writes as corral's violations, and what an approval grants the re-run.

The launcher's write watch (`sandbox.landlock_watch`) reports each write Landlock refused as one JSON
line (`op`, `path`). A new file, a new directory or a change to an existing file becomes an `fs-write`
violation that says, before the person answers, that allowing it re-runs the whole command with that path
writable (nothing was captured to apply). The rest are one notice line each, never asked: a delete, rename
or link needs a grant on its whole directory (Landlock grants directories, not names), a write to an
existing hidden file fails under bwrap too (nothing there is replaced by content the command never saw),
tool caches are read-only under Landlock (bwrap keeps their writes in a per-project layer without asking;
one notice per cache), and corral's own state is never writable.

An approval grants the re-run exactly the approved paths: an existing file write-only (readable too when
the policy already lets the command read it), a new file after corral creates it empty (Landlock can
grant an existing file, or a whole directory; it is removed again if the re-run leaves it empty and
untouched), a new directory after corral creates it (with everything the re-run puts in it).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from boundary.violations import ChangeOp, Violation, ViolationKind
from sandbox.policy import Policy

REFUSED_NOT_CAPTURED = (
    "refused, not captured (Landlock has no overlay): allowing it re-runs the whole command with this path "
    "writable"
)
_ASKED = {"create": ChangeOp.CREATE, "modify": ChangeOp.MODIFY, "mkdir": ChangeOp.MKDIR}
_TOLD = {
    "delete": "a delete of",
    "rename": "a rename onto",
    "link": "a hard link at",
    "symlink": "a symlink at",
    "mknod": "a device or FIFO at",
}


@dataclass(frozen=True, slots=True)
class Refusals:
    violations: tuple[Violation, ...]
    notices: tuple[str, ...]


def parse_reports(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(op, path) of each report line, in order (a line that is not one is skipped)."""
    reports: list[tuple[str, str]] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("op"), str):
            reports.append((entry["op"], str(entry.get("path", ""))))
    return reports


def refusals_from(reports: Iterable[tuple[str, str]], policy: Policy, own_state: Sequence[Path]) -> Refusals:
    """The reports as violations (asked) and notices (told), one each, in the order they came."""
    found: dict[tuple[str, str], Violation] = {}
    notices: dict[str, None] = {}
    for op, text in reports:
        if op == "unknown":
            notices["Landlock refused a write whose path corral could not read"] = None
            continue
        if op == "more":
            notices["Landlock refused more writes than corral reports for one command"] = None
            continue
        path = Path(text)
        if not path.is_absolute():
            continue
        if any(path == p or p in path.parents for p in (*own_state, *policy.blanked)):
            notices[f"Landlock refused a write to corral's own state: {path}"] = None
            continue
        cache = next((c for c in (*policy.cache_dirs, *policy.private_caches) if _beneath(path, [c])), None)
        if cache is not None:
            # bwrap keeps these in a per-project layer without asking; here they are read-only, and a
            # re-run of the whole command for a cache entry would help nobody.
            notices[
                f"Landlock refused writes to the tool cache {cache} (read-only under Landlock; not asked)"
            ] = None
            continue
        change = _ASKED.get(op)
        if change is ChangeOp.MODIFY and policy.is_hidden(path):
            notices[f"Landlock refused a write to the hidden file {path} (not asked: as under bwrap)"] = None
            continue
        if change is None:
            what = _TOLD.get(op, f"{op} of")
            notices[
                f"Landlock refused {what} {path} (not asked: Landlock cannot allow it without the whole "
                "directory; add that to the project's [paths] writable to allow it)"
            ] = None
            continue
        if policy.in_workspace(path):
            kind, where = ViolationKind.FS_PROTECTED, "in the workspace"
        else:
            kind, where = ViolationKind.FS_WRITE, "outside the workspace"
        note = " (corral creates it empty first)" if change is ChangeOp.CREATE else ""
        violation = Violation(
            kind, str(path), change.value, f"{where}; {REFUSED_NOT_CAPTURED}{note}", reruns_on_allow=True
        )
        found.setdefault(violation.key(), violation)
    return Refusals(tuple(found.values()), tuple(notices))


@dataclass(slots=True)
class _Made:
    path: Path
    inode: int
    mtime_ns: int
    directory: bool


@dataclass(slots=True)
class Grants:
    """What the re-run may write, and what corral made for it (taken back when left untouched)."""

    writable: list[Path] = field(default_factory=list)
    write_only: list[Path] = field(default_factory=list)
    made: list[_Made] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [*self.writable, *self.write_only]

    def tidy(self) -> None:
        """Remove what corral created for the re-run when the re-run left it as corral made it."""
        for made in reversed(self.made):
            try:
                st = os.lstat(made.path)
            except OSError:
                continue
            if st.st_ino != made.inode:
                continue
            with contextlib.suppress(OSError):
                if made.directory and stat.S_ISDIR(st.st_mode) and not os.listdir(made.path):
                    os.rmdir(made.path)
                elif not made.directory and st.st_size == 0 and st.st_mtime_ns == made.mtime_ns:
                    os.unlink(made.path)


def grant(allowed: Sequence[Violation], readable: Sequence[Path]) -> Grants:
    """The re-run's grants for the approved violations (only those that re-run)."""
    grants = Grants()
    for violation in allowed:
        if not violation.reruns_on_allow:
            continue
        path = Path(violation.target)
        try:
            if violation.operation == ChangeOp.MKDIR.value:
                grants.writable.append(path)
                if not os.path.lexists(path):
                    grants.made.append(_make(path, directory=True))
            elif os.path.lexists(path):
                if _beneath(path, readable):
                    grants.writable.append(path)
                else:
                    grants.write_only.append(path)
            else:
                grants.made.append(_make(path, directory=False))
                grants.writable.append(path)
        except OSError as error:
            grants.failed.append((path, error.strerror or str(error)))
    return grants


def standing(rules: Sequence[Path], readable: Sequence[Path], hidden: Sequence[Path]) -> Grants:
    """Grants for the project's fs-write rules, given to every command: each existing path (a directory
    with what is in it), write-only unless the policy already lets the command read it. A path that does
    not exist yet is refused, reported, allowed by its rule and re-run once; then it exists."""
    grants = Grants()
    for rule in rules:
        path = Path(os.path.realpath(rule))
        if any(path == h or h in path.parents or path in h.parents for h in hidden):
            continue  # never a grant over corral's own state or what a hidden path covers
        if os.path.isdir(path):
            grants.writable.append(path)
        elif os.path.isfile(path):
            (grants.writable if _beneath(path, readable) else grants.write_only).append(path)
    return grants


def _make(path: Path, *, directory: bool) -> _Made:
    """Create `path` in its (already resolved) parent, never through a link."""
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if directory:
            os.mkdir(path.name, 0o777, dir_fd=parent)
        else:
            fd = os.open(
                path.name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o666,
                dir_fd=parent,
            )
            os.close(fd)
        st = os.lstat(path.name, dir_fd=parent)
    finally:
        os.close(parent)
    return _Made(path, st.st_ino, st.st_mtime_ns, directory)


def _beneath(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)
