"""List the trust-relevant files of a project without parsing or executing any of them.

Discovery only stats, hashes and reads bytes. It never parses a file, never follows a symlink out of the
project, never opens anything but a regular file (a FIFO or device in a hostile tree cannot block it), and
stops at fixed limits so a huge or hostile tree cannot hang it. Anything it could not read cleanly is a
*problem*: problems are part of the fingerprint and a project with problems cannot be trusted.

Files by category:

- `corral`: everything under `.corral/` (the config and the hook scripts it names). Fingerprinted; the
  content is kept so it can be shown and diffed.
- `agent`: other agents' and IDEs' config that corral never loads but that runs code when another tool
  opens the repo (`.claude/`, `.mcp.json`, `.codex/`, `.gemini/`, `.cursor/`, `.vscode/tasks.json`,
  `.vscode/settings.json`). Fingerprinted and shown, so a change to them withdraws trust too.
- `shell`: `.envrc`, run by direnv on `cd`. Fingerprinted; content withheld (it often holds secrets).
- `listed`: files other tools read on their own (`.env`, `.yarnrc.yml`, `mise.toml`, ...). Listed with
  their size only, for the dialog; not hashed, not fingerprinted, never read.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from boundary.termsafe import visible_bytes

CORRAL_DIR = ".corral"
CONFIG_PATH = ".corral/config.toml"

AGENT_PATHS: tuple[str, ...] = (
    ".claude",
    ".mcp.json",
    ".codex",
    ".gemini",
    ".cursor",
    ".vscode/tasks.json",
    ".vscode/settings.json",
)
"""Other agents' and IDEs' config, fingerprinted and shown (directories are walked)."""

SHELL_PATHS: tuple[str, ...] = (".envrc",)
"""Shell hooks other tools run on `cd`: fingerprinted, content withheld."""

LISTED_PATHS: tuple[str, ...] = (
    ".env",
    ".yarnrc",
    ".yarnrc.yml",
    "mise.toml",
    ".mise.toml",
    ".tool-versions",
    ".nvmrc",
    ".npmrc",
    ".pnpmfile.cjs",
)
"""Files other tools read on their own: listed (path and size) only, never read by corral."""

MAX_FILE_BYTES = 1024 * 1024
"""A larger file is a problem (not read past this size)."""
MAX_TOTAL_BYTES = 8 * 1024 * 1024
"""Total content read; past it every further file is a problem."""
MAX_FILES = 500
"""Files recorded; past it discovery stops with a problem."""
MAX_ENTRIES_SCANNED = 5000
"""Directory entries looked at in total (bounds hostile trees of empty directories)."""
MAX_DEPTH = 12
"""Directory depth below a walked root."""


class FileCategory(enum.Enum):
    """How a trust-relevant file is treated (see the module docstring)."""

    CORRAL = "corral"
    AGENT = "agent"
    SHELL = "shell"
    LISTED = "listed"

    @property
    def fingerprinted(self) -> bool:
        """Whether a change to files of this category withdraws trust."""
        return self is not FileCategory.LISTED

    @property
    def content_shown(self) -> bool:
        """Whether the content is read, stored for diffs and shown."""
        return self in (FileCategory.CORRAL, FileCategory.AGENT)


@dataclass(frozen=True, slots=True)
class TrustFile:
    """One trust-relevant file as found on disk.

    path: relative to the project root, `/`-separated (non-UTF-8 names kept with surrogateescape).
    sha256: hex digest of the content; None for `listed` files and problems.
    content: the bytes read, for `corral` and `agent` files without a problem; otherwise None.
    link_target: the symlink text when the file is a symlink that stays inside the project.
    problem: why the file could not be read cleanly (a problem blocks trust).
    """

    path: str
    category: FileCategory
    size: int
    sha256: str | None = None
    content: bytes | None = field(default=None, repr=False)
    link_target: str | None = None
    problem: str | None = None

    @property
    def fingerprint_digest(self) -> str:
        """What the fingerprint records for this file: content hash, link text and any problem."""
        parts = [self.sha256 or "-"]
        if self.link_target is not None:
            parts.append("link:" + self.link_target)
        if self.problem is not None:
            parts.append("problem:" + self.problem)
        return " ".join(parts)

    def visible_text(self) -> str:
        """The content escaped for display (`visible_bytes`), or a one-line note why there is none."""
        if self.content is not None:
            return visible_bytes(self.content)
        if self.problem is not None:
            return f"(not shown: {self.problem})"
        return "(content not shown by corral)"


@dataclass(frozen=True, slots=True)
class Discovery:
    """The trust-relevant files of one project root (already a real path)."""

    root: Path
    files: tuple[TrustFile, ...]
    tree_problems: tuple[str, ...] = ()

    @property
    def fingerprinted_files(self) -> tuple[TrustFile, ...]:
        """Files whose change withdraws trust."""
        return tuple(f for f in self.files if f.category.fingerprinted)

    @property
    def problems(self) -> tuple[str, ...]:
        """Every reason this project cannot be trusted as it stands (empty when it can)."""
        per_file = tuple(f"{f.path}: {f.problem}" for f in self.files if f.problem is not None)
        return self.tree_problems + per_file

    def get(self, path: str) -> TrustFile | None:
        """The file at `path` (relative), if discovered."""
        for found in self.files:
            if found.path == path:
                return found
        return None

    @property
    def config_bytes(self) -> bytes | None:
        """The bytes of `.corral/config.toml` exactly as hashed, or None when absent or unreadable."""
        found = self.get(CONFIG_PATH)
        return None if found is None else found.content


class _Budget:
    """The limits shared by one discovery run."""

    def __init__(self) -> None:
        self.entries = 0
        self.files = 0
        self.bytes = 0
        self.problems: list[str] = []

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _read_regular(real_path: str, limit: int) -> tuple[bytes | None, int, str | None]:
    """Open `real_path` without following a final symlink or blocking; (content, size, problem)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(real_path, flags)
    except OSError as error:
        return None, 0, f"cannot open ({error.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, 0, "not a regular file"
        if info.st_size > limit:
            return None, info.st_size, f"larger than {limit} bytes"
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            return None, len(data), f"larger than {limit} bytes"
        return data, len(data), None
    finally:
        os.close(fd)


def _record(root: str, relative: str, category: FileCategory, budget: _Budget) -> TrustFile | None:
    """Stat, check and (for shown categories) read one file; None when it vanished."""
    full = os.path.join(root, relative)
    try:
        info = os.lstat(full)
    except FileNotFoundError:
        return None
    except OSError as error:
        return TrustFile(relative, category, 0, problem=f"cannot stat ({error.strerror})")
    link_target: str | None = None
    if stat.S_ISLNK(info.st_mode):
        try:
            link_target = os.fsdecode(os.readlink(full))
        except OSError as error:
            return TrustFile(relative, category, 0, problem=f"cannot read link ({error.strerror})")
    real = os.path.realpath(full)
    if not _inside(real, root):
        return TrustFile(relative, category, 0, link_target=link_target, problem="symlink leaves the project")
    if category is FileCategory.LISTED:
        return TrustFile(
            relative, category, info.st_size if link_target is None else 0, link_target=link_target
        )
    remaining = MAX_TOTAL_BYTES - budget.bytes
    if remaining <= 0:
        return TrustFile(relative, category, 0, link_target=link_target, problem="total size limit reached")
    data, size, problem = _read_regular(real, min(MAX_FILE_BYTES, remaining))
    if data is None:
        return TrustFile(relative, category, size, link_target=link_target, problem=problem)
    budget.bytes += len(data)
    digest = hashlib.sha256(data).hexdigest()
    content = data if category.content_shown else None
    return TrustFile(relative, category, size, digest, content, link_target)


def _walk(root: str, top: str, budget: _Budget) -> Iterator[str]:
    """Relative paths of the non-directory entries under `top` (itself relative), symlinks not followed."""
    stack: list[tuple[str, int]] = [(top, 0)]
    while stack:
        relative_dir, depth = stack.pop()
        try:
            with os.scandir(os.path.join(root, relative_dir)) as entries:
                names = []
                for entry in entries:
                    budget.entries += 1
                    if budget.entries > MAX_ENTRIES_SCANNED:
                        budget.note(f"more than {MAX_ENTRIES_SCANNED} directory entries")
                        return
                    names.append((entry.name, entry.is_dir(follow_symlinks=False)))
        except OSError as error:
            budget.note(f"{relative_dir}: cannot list ({error.strerror})")
            continue
        for name, is_dir in sorted(names, reverse=True):
            relative = f"{relative_dir}/{name}"
            if is_dir:
                if depth + 1 > MAX_DEPTH:
                    budget.note(f"{relative}: deeper than {MAX_DEPTH} levels")
                else:
                    stack.append((relative, depth + 1))
            else:
                yield relative


def _discover_top(root: str, top: str, category: FileCategory, budget: _Budget) -> Iterator[TrustFile]:
    """The files at or under one candidate path."""
    full = os.path.join(root, top)
    try:
        info = os.lstat(full)
    except FileNotFoundError:
        return
    except OSError as error:
        yield TrustFile(top, category, 0, problem=f"cannot stat ({error.strerror})")
        return
    real = os.path.realpath(full)
    if not _inside(real, root):
        yield TrustFile(top, category, 0, problem="path leaves the project (symlink)")
        return
    if stat.S_ISLNK(info.st_mode) and os.path.isdir(real):
        yield TrustFile(
            top,
            category,
            0,
            link_target=os.fsdecode(os.readlink(full)),
            problem="symlinked directory (not followed)",
        )
        return
    if not stat.S_ISDIR(info.st_mode):
        found = _record(root, top, category, budget)
        if found is not None:
            budget.files += 1
            yield found
        return
    for relative in _walk(root, top, budget):
        if budget.files >= MAX_FILES:
            budget.note(f"more than {MAX_FILES} files")
            return
        found = _record(root, relative, category, budget)
        if found is not None:
            budget.files += 1
            yield found


def candidate_paths() -> tuple[tuple[str, FileCategory], ...]:
    """Every top-level path discovery looks at, with its category (also used for git history)."""
    return (
        (CORRAL_DIR, FileCategory.CORRAL),
        *((p, FileCategory.AGENT) for p in AGENT_PATHS),
        *((p, FileCategory.SHELL) for p in SHELL_PATHS),
        *((p, FileCategory.LISTED) for p in LISTED_PATHS),
    )


def discover(project_root: Path | str) -> Discovery:
    """List the trust-relevant files of `project_root` (resolved to its real path first).

    Reads bytes and hashes them; never parses, never executes, never follows a symlink out of the
    project, never opens a non-regular file, and stops at the module's limits.
    """
    root = os.path.realpath(os.fspath(project_root))
    budget = _Budget()
    files: list[TrustFile] = []
    for top, category in candidate_paths():
        files.extend(_discover_top(root, top, category, budget))
    files.sort(key=lambda f: f.path.encode("utf-8", "surrogateescape"))
    return Discovery(Path(root), tuple(files), tuple(budget.problems))
