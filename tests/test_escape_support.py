"""Helpers shared by the escape tests (`tests/test_escape_*.py`); holds no tests itself.

Everything here acts on the host: plant files as the actor, run host programs as the actor (the
"later, unsandboxed" phase of an attack), and read corral's one-line denials.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import Actor

_DENIED = re.compile(r"^corral: denied (\S+) (.+?) \(", re.MULTILINE)


def denials(stderr: str) -> list[tuple[str, str]]:
    """(kind, target) of every `corral: denied KIND TARGET (...)` line."""
    return [(kind, target) for kind, target in _DENIED.findall(stderr)]


def denied_kinds(stderr: str) -> set[str]:
    return {kind for kind, _target in denials(stderr)}


def assert_denied_under(stderr: str, kind: str, path: Path, home: Path | None = None) -> None:
    """Some denial of `kind` names `path` or a path inside it (a new directory carries its content).
    Targets that corral prints as `~/...` are expanded with `home`."""
    targets = [_expand(target, home) for k, target in denials(stderr) if k == kind]
    assert any(t == path or path in t.parents or t in path.parents for t in targets), (
        f"no {kind} denial for {path}; denials: {denials(stderr)}; stderr: {stderr[-2000:]}"
    )


def _expand(target: str, home: Path | None) -> Path:
    if home is not None and (target == "~" or target.startswith("~/")):
        return home / target[2:]
    return Path(target)


def plant(actor: Actor, path: Path, content: str = "", mode: int | None = None) -> Path:
    """Create `path` on the host (parents too), owned by the actor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    if mode is not None:
        path.chmod(mode)
    actor.chown_path(path)
    return path


def host_run(
    actor: Actor, *argv: str, cwd: Path | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a host program unsandboxed as the actor: the later, trusted phase an attack aims at."""
    command = list(argv)
    if actor.uid != os.geteuid():
        command = ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]
    env = dict(actor.env)
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    return subprocess.run(
        command,
        cwd=cwd or actor.workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def initial_commit(actor: Actor) -> None:
    """Give the actor's workspace repository a first commit (as the actor, so ownership is right)."""
    result = host_run(actor, "git", "add", "-A")
    assert result.returncode == 0, result.stderr
    result = host_run(actor, "git", "commit", "-q", "-m", "init")
    assert result.returncode == 0, result.stderr


CORRAL_STATE = (
    ".local/share/corral",
    ".cache/corral",
    ".config/corral",
    ".local/state/corral",
    ".corral-tests",
)
"""corral's own state under a home: it changes with every run (ledger, caches), so snapshots skip it;
and the per-test directories other test runs keep in a shared real home."""


def snapshot(root: Path, skip: tuple[str, ...] = CORRAL_STATE) -> dict[str, bytes | str]:
    """Path -> content (files) or link target (symlinks) or "<dir>", for comparing trees; paths under
    `skip` (relative to `root`) are left out."""
    tree: dict[str, bytes | str] = {}
    for current, dirs, files in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if str((Path(current) / d).relative_to(root)) not in skip
            and not (Path(current) == root and d.startswith("corral-"))  # other tests' runs in a shared home
        ]
        for name in dirs:
            full = Path(current) / name
            tree[str(full.relative_to(root))] = (
                f"<link {os.readlink(full)}>" if full.is_symlink() else "<dir>"
            )
        for name in files:
            full = Path(current) / name
            rel = str(full.relative_to(root))
            if full.is_symlink():
                tree[rel] = f"<link {os.readlink(full)}>"
            elif full.is_file():
                tree[rel] = full.read_bytes()
            else:
                tree[rel] = "<special>"
    return tree


def file_state(path: Path) -> bytes | str | None:
    """What is at `path` now (content, `<dir>`, or None): for before/after checks in a shared real home,
    where a file such as `~/.profile` may exist from the start."""
    if path.is_symlink():
        return f"<link {os.readlink(path)}>"
    if path.is_dir():
        return "<dir>"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
