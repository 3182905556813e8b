"""The commits that touched a project's trust-relevant files since the trust decision, via gitpython.

A cloned repo controls its own `.git/config`, and git obeys it: `core.fsmonitor`, `core.pager`, diff and
textconv drivers, `core.sshCommand`, `gpg.program` with `log.showSignature`, credential helpers, and
`include.path`/`includeIf` pulling in files outside the repo. So corral never lets git read that file.

Each call builds a *shadow git directory* in a private temporary directory: a `HEAD` copied from the
repo, a minimal `config` written by corral, and symlinks to the repo's `objects`, `refs`, `packed-refs`
and `shallow`. git runs with `--git-dir` set to the shadow, a sanitised environment (no system or global
config, no prompts, no pager, no optional locks, HOME pointing into the shadow) and `-c` overrides for
every execution-capable setting, with only `log`/`rev-parse` and `--no-textconv --no-ext-diff`. The repo's
config, hooks, attributes and work tree are never consulted. Reading the `.git` file, `commondir` and
`HEAD` is done in Python with size limits and without following FIFOs.

Any failure (git missing, not a repo, timeout, unknown object format) gives an empty history: history is
information for the person, never a decision.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_SECONDS = 10
MAX_COMMITS = 100
_SMALL_FILE = 4096

_SAFE_OVERRIDES: tuple[str, ...] = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "core.sshCommand=false",
    "core.askPass=",
    "core.editor=false",
    "core.untrackedCache=false",
    "core.attributesFile=/dev/null",
    "diff.external=",
    "credential.helper=",
    "protocol.allow=never",
    "log.showSignature=false",
    "gpg.program=false",
    "pager.log=false",
    "color.ui=false",
)


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """One commit that touched a trust-relevant file (all strings untrusted: escape before display)."""

    sha: str
    time: int
    author: str
    summary: str


def _read_small(path: str) -> str | None:
    """A small regular file's text, without blocking on FIFOs or following a final symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, _SMALL_FILE).decode("utf-8", "replace")
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _GitLayout:
    git_dir: str
    common_dir: str
    top: str


def _find_layout(project_root: str) -> _GitLayout | None:
    """Locate the git directory of the repo containing `project_root` by reading files (no git run)."""
    current = project_root
    while True:
        dot_git = os.path.join(current, ".git")
        try:
            info = os.lstat(dot_git)
        except OSError:
            info = None
        if info is not None:
            if stat.S_ISDIR(info.st_mode):
                git_dir = dot_git
            elif stat.S_ISREG(info.st_mode):
                text = _read_small(dot_git)
                if text is None or not text.startswith("gitdir:"):
                    return None
                git_dir = os.path.join(current, text[len("gitdir:") :].strip())
            else:
                return None
            common_text = _read_small(os.path.join(git_dir, "commondir"))
            common = os.path.join(git_dir, common_text.strip()) if common_text else git_dir
            return _GitLayout(os.path.realpath(git_dir), os.path.realpath(common), current)
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _build_shadow(layout: _GitLayout, shadow: str) -> bool:
    head = _read_small(os.path.join(layout.git_dir, "HEAD"))
    if head is None:
        return False
    with open(os.path.join(shadow, "HEAD"), "w", encoding="utf-8") as handle:
        handle.write(head)
    repo_config = _read_small(os.path.join(layout.common_dir, "config")) or ""
    config = "[core]\n\trepositoryformatversion = 0\n\tbare = true\n"
    if re.search(r"(?im)^\s*objectformat\s*=\s*sha256\s*$", repo_config):
        config = (
            "[core]\n\trepositoryformatversion = 1\n\tbare = true\n[extensions]\n\tobjectformat = sha256\n"
        )
    with open(os.path.join(shadow, "config"), "w", encoding="utf-8") as handle:
        handle.write(config)
    for name in ("objects", "refs", "packed-refs", "shallow"):
        source = os.path.join(layout.common_dir, name)
        if os.path.lexists(source):
            os.symlink(source, os.path.join(shadow, name))
    os.makedirs(os.path.join(shadow, "home"), mode=0o700)
    return os.path.isdir(os.path.join(shadow, "objects"))


def _environment(shadow: str) -> dict[str, str]:
    home = os.path.join(shadow, "home")
    return {
        "GIT_DIR": shadow,
        "GIT_COMMON_DIR": shadow,
        "GIT_OBJECT_DIRECTORY": os.path.join(shadow, "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        "GIT_INDEX_FILE": os.path.join(shadow, "index"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_SYSTEM": "/dev/null",
        "GIT_CONFIG_PARAMETERS": "",
        "GIT_CONFIG_COUNT": "0",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "false",
        "SSH_ASKPASS": "false",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "GIT_EDITOR": "false",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_LITERAL_PATHSPECS": "1",
        "HOME": home,
        "XDG_CONFIG_HOME": home,
    }


def safe_git_executable(project_root: str) -> str | None:
    """The absolute path of git from PATH, skipping relative and empty entries and any entry inside the
    project (a repo-provided `git` shim, e.g. a `bin/` that direnv put on PATH, is never run)."""
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            continue
        real = os.path.realpath(entry)
        if real == project_root or real.startswith(project_root.rstrip("/") + "/"):
            continue
        candidate = os.path.join(real, "git")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _run_git(shadow: str, git_executable: str, arguments: Sequence[str]) -> str | None:
    """Run git on the shadow through gitpython; None on any failure."""
    if "git" not in sys.modules:
        # gitpython runs `git version` when imported: make that the same safe binary, not a PATH lookup
        # from the current directory (which may be the repo).
        os.environ.setdefault("GIT_PYTHON_GIT_EXECUTABLE", git_executable)
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    try:
        import git
    except Exception:  # gitpython refuses to import without a git binary
        return None
    command = [git_executable, f"--git-dir={shadow}", "--no-pager", "--literal-pathspecs"]
    for override in _SAFE_OVERRIDES:
        command += ["-c", override]
    command += list(arguments)
    try:
        runner = git.Git(working_dir=shadow)
        output = runner.execute(
            command,
            env=_environment(shadow),
            kill_after_timeout=GIT_TIMEOUT_SECONDS,
            stdout_as_string=True,
            strip_newline_in_stdout=False,
        )
    except Exception:
        return None
    return output if isinstance(output, str) else None


class _Shadow:
    """A temporary shadow git directory for one repo; a context manager yielding (shadow, layout)."""

    def __init__(self, project_root: Path | str) -> None:
        self.project_root = os.path.realpath(os.fspath(project_root))
        self.path: str | None = None
        self.layout: _GitLayout | None = None
        self.git: str | None = None

    def __enter__(self) -> _Shadow:
        layout = _find_layout(self.project_root)
        self.git = safe_git_executable(self.project_root)
        if layout is None or self.git is None:
            return self
        path = tempfile.mkdtemp(prefix="corral-git-")
        try:
            if _build_shadow(layout, path):
                self.path, self.layout = path, layout
            else:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def head_commit(project_root: Path | str) -> str | None:
    """The commit checked out in the repo containing `project_root`, or None."""
    with _Shadow(project_root) as shadow:
        if shadow.path is None:
            return None
        output = _run_git(
            shadow.path, shadow.git or "git", ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]
        )
    if output is None:
        return None
    sha = output.strip()
    return sha if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha) else None


def _parse_log(output: str) -> list[CommitInfo]:
    commits = []
    for record in output.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) != 4:
            continue
        sha, time_text, author, summary = fields
        if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha) or not time_text.isdigit():
            continue
        commits.append(CommitInfo(sha, int(time_text), author, summary))
    return commits


def commits_since(
    project_root: Path | str, paths: Sequence[str], since_time: float, since_commit: str | None = None
) -> list[CommitInfo]:
    """Commits (newest first, at most `MAX_COMMITS`) that touched `paths` (relative to `project_root`).

    With `since_commit`, the commits reachable from HEAD but not from it (commit dates can be forged);
    otherwise, or when that commit is unknown, those committed after `since_time` (Unix seconds).
    Never raises; returns [] when git is missing, the directory is not in a repo, or git fails.
    """
    with _Shadow(project_root) as shadow:
        if shadow.path is None or shadow.layout is None:
            return []
        prefix = os.path.relpath(shadow.project_root, shadow.layout.top)
        pathspecs = [p if prefix == "." else f"{prefix}/{p}" for p in paths]
        base = [
            "log",
            "--no-textconv",
            "--no-ext-diff",
            "--no-renames",
            "--no-color",
            "--no-show-signature",
            "--no-mailmap",
            f"--max-count={MAX_COMMITS}",
            "--format=%H%x1f%ct%x1f%an%x1f%s%x1e",
        ]
        output = None
        if since_commit is not None and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", since_commit):
            output = _run_git(
                shadow.path, shadow.git or "git", [*base, f"{since_commit}..HEAD", "--", *pathspecs]
            )
        if output is None:
            output = _run_git(
                shadow.path,
                shadow.git or "git",
                [*base, f"--since=@{max(1, int(since_time))}", "HEAD", "--", *pathspecs],
            )
    return [] if output is None else _parse_log(output)
