"""Where git will look for hooks in this workspace, read without running git.

A `core.hooksPath` the user configured (`.githooks` is a common setup) makes that directory as
dangerous as `.git/hooks`: whatever a sandboxed command writes there runs at the user's next commit.
corral reads `core.hooksPath` from the repository's `.git/config` and the user's global git config and
protects the directory when it lies inside the workspace. This only ever narrows the sandbox: nothing
read here is executed or loosens anything, so it needs no trust. Every file is read through
`boundary.repofiles` (non-blocking, no final symlink, regular files only): a FIFO at `.git` or
`.git/config` must not hang `corral run`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from boundary.repofiles import read_repo_text

_SECTION = re.compile(r"^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+\"[^\"]*\")?\s*\]\s*(.*)$")
_KEY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$")
_MAX_CONFIG_BYTES = 1 << 20


def _hooks_paths_in(text: str) -> list[str]:
    found: list[str] = []
    section = ""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line[0] in "#;":
            continue
        header = _SECTION.match(line)
        if header:
            section = header.group(1).lower()
            line = header.group(2).strip()
            if not line:
                continue
        key = _KEY.match(line)
        if key and section == "core" and key.group(1).lower() == "hookspath" and key.group(2):
            value = key.group(2).split(" #")[0].split(" ;")[0].strip().strip('"')
            if value:
                found.append(value)
    return found


def _read(path: Path) -> str:
    return read_repo_text(path, _MAX_CONFIG_BYTES) or ""


def _git_dir(workspace: Path) -> Path | None:
    dot_git = workspace / ".git"
    if dot_git.is_dir():
        return dot_git
    text = _read(dot_git)
    if text.startswith("gitdir:"):
        target = Path(text[len("gitdir:") :].strip())
        return target if target.is_absolute() else workspace / target
    return None


def configured_hooks_dirs(workspace: Path, home: Path, environ: dict[str, str] | None = None) -> list[Path]:
    """Every configured hooks directory (repository and global config) that lies inside `workspace`."""
    env = os.environ if environ is None else environ
    sources: list[Path] = [
        home / ".gitconfig",
        Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "git" / "config",
    ]
    git_dir = _git_dir(workspace)
    if git_dir is not None:
        sources.append(git_dir / "config")
        sources.append(git_dir / "config.worktree")
    result: list[Path] = []
    for source in sources:
        for value in _hooks_paths_in(_read(source)):
            if value.startswith("~/"):
                path = home / value[2:]
            elif os.path.isabs(value):
                path = Path(value)
            else:
                path = workspace / value
            real = Path(os.path.realpath(path))
            if real == workspace or workspace in real.parents:
                result.append(real)
    return result
