"""What a sandboxed command sees of the home: an allow-list, not a deny-list.

A deny-list of credential files trails the tools people install (`.pgpass`, rclone, pulumi, a token
under `~/.cache`, a credential created while the command runs...). So the home is shown through an
overlay whose lower layer is a skeleton corral builds (`sandbox.bwrap`), holding nothing but mount
points: only the allow-listed entries (`boundary.table` READABLE rows, the person's own
`[filesystem] readable`, fs-read rules) are bound in read-only, tool-chain caches get their layers, and
the workspace its overlay. Anything else that exists when the policy is built gets an empty decoy (so a
read is reported, see `sandbox.readwatch`); anything created later is simply absent inside the sandbox.

Writes anywhere in the home still land in the overlay's upper layer and are captured and asked about
as before: the capture compares them against the real home, not the skeleton.

`root_only_secrets()` applies the same rule outside the home for a root caller: a root process in the
sandbox keeps the host uid 0's ownership of root's files (user-namespace root maps to host root), so
every file that only its owner may read (`/etc/shadow`, host keys, `/etc/ssl/private`) is hidden.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

MAX_HIDDEN_HOME_ENTRIES = 512
"""At most this many decoys for a home; entries beyond it are still invisible, only their reads are not
reported."""

_ROOT_SECRET_ROOTS: tuple[tuple[str, int], ...] = (
    ("/etc", 4),
    ("/var/lib", 2),
    ("/var/log", 2),
    ("/var/backups", 1),
    ("/var/mail", 1),
    ("/var/spool", 2),
    ("/boot", 1),
    ("/opt", 2),
    ("/srv", 2),
)
MAX_ROOT_SECRET_ENTRIES = 8192


def _within(path: Path | str, root: Path | str) -> bool:
    """String-prefix containment (both canonical): no `Path.parents` walk in these loops."""
    p, r = str(path), str(root)
    return p == r or p.startswith(r if r.endswith("/") else r + "/")


def password_home() -> Path | None:
    """The caller's home according to the password database (may differ from `$HOME`)."""
    try:
        entry = pwd.getpwuid(os.geteuid())
    except KeyError:
        return None
    if not entry.pw_dir or entry.pw_dir == "/":
        return None
    real = Path(os.path.realpath(entry.pw_dir))
    return real if real.is_dir() else None


def homes_of(home: Path) -> tuple[Path, ...]:
    """`$HOME` and the password database's home, both protected when they differ."""
    found = [Path(os.path.realpath(home))]
    other = password_home()
    if other is not None and other not in found and other != Path("/"):
        found.append(other)
    return tuple(found)


def hidden_home_entries(home: Path, visible: Iterable[Path]) -> list[Path]:
    """Every existing entry of `home` that is neither allow-listed (`visible`, or inside it) nor on the
    way to something allow-listed: those are walked into. Symlinks are entries like any other: they are
    hidden at their own path, never followed."""
    shown = tuple(str(v) for v in visible)
    result: list[Path] = []
    stack = [home]
    while stack and len(result) < MAX_HIDDEN_HOME_ENTRIES:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            text = entry.path
            if any(_within(text, v) for v in shown):
                continue
            if any(v.startswith(text + "/") for v in shown) and entry.is_dir(follow_symlinks=False):
                stack.append(Path(text))
                continue
            result.append(Path(text))
            if len(result) >= MAX_HIDDEN_HOME_ENTRIES:
                break
    return result


def readable_sources(
    readable: Sequence[Path], stores: Sequence[Path], homes: Sequence[Path]
) -> list[tuple[Path, Path]]:
    """(source on the host, target in the home) for each allow-listed path that exists. A link is
    shown with its target's content, except a link into a credential store (`~/.gitconfig ->
    ~/.ssh/config`) or one whose target holds a store or a whole home (`~/.local/bin -> ~`): those
    show nothing."""
    pairs: list[tuple[Path, Path]] = []
    for target in readable:
        if not os.path.lexists(target):
            continue
        source = Path(os.path.realpath(target))
        if not os.path.exists(source):
            continue
        if any(_within(source, store) for store in stores):
            continue
        if any(_within(inner, source) for inner in (*stores, *homes)):
            continue
        pairs.append((source, target))
    return pairs


def root_only_secrets(keep: Iterable[Path] = ()) -> list[Path]:
    """For a root caller: files and directories outside the home only their owner may read."""
    if os.geteuid() != 0:
        return []
    kept = tuple(str(k) for k in keep)
    found: list[Path] = []
    budget = [MAX_ROOT_SECRET_ENTRIES]

    def walk(directory: str, depth: int, max_depth: int) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            budget[0] -= 1
            if budget[0] < 0:
                return
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            path = entry.path
            if any(_within(k, path) or _within(path, k) for k in kept):
                if stat.S_ISDIR(st.st_mode) and depth < max_depth:
                    walk(entry.path, depth + 1, max_depth)
                continue
            if not st.st_mode & stat.S_IROTH and (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                found.append(Path(path))
            elif stat.S_ISDIR(st.st_mode) and depth < max_depth:
                walk(entry.path, depth + 1, max_depth)

    for root, max_depth in _ROOT_SECRET_ROOTS:
        if os.path.isdir(root) and not os.path.islink(root):
            walk(root, 1, max_depth)
    return found
