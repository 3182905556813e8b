"""Find the workspace for a directory, without running anything from the repository.

The workspace is the git root of the directory (found by looking for a `.git` entry while walking up;
git is never run), else the directory itself. `/` and `$HOME` are refused unless the caller allows the
home explicitly. A credential or configuration directory (`~/.ssh`, `~/.config`, `~/.aws`, any
directory at the top of the home whose name starts with a dot, and anything inside one) is refused
outright: the workspace is writable and readable in full, which would undo the home's read allow-list.
"""

from __future__ import annotations

import os
from pathlib import Path

from corral.errors import UsageError


class WorkspaceError(UsageError):
    """A directory cannot be a workspace; the message is one line for the user."""


def find_workspace(
    start: Path, *, explicit: bool = False, allow_home: bool = False, home: Path | None = None
) -> Path:
    """The canonical workspace for `start`. With `explicit` (from --project) `start` itself is the root."""
    try:
        real = Path(os.path.realpath(start))
        if not os.path.lexists(real):
            raise WorkspaceError(f"{start}: no such directory")
        if not real.is_dir():
            raise WorkspaceError(f"{start}: not a directory")
        os.listdir(real)
    except PermissionError as error:
        raise WorkspaceError(f"{start}: not readable") from error
    except FileNotFoundError as error:
        raise WorkspaceError(f"{start}: no such directory") from error
    home_real = Path(os.path.realpath(home or Path.home()))
    root = real
    if not explicit:
        git_root = _git_root(real)
        # A dotfiles repository in $HOME (or a .git at /) must not turn the home into the workspace.
        if git_root is not None and git_root not in (home_real, Path("/")):
            root = git_root
    if root == Path("/"):
        raise WorkspaceError("refusing to use / as the workspace")
    if root == home_real and not allow_home:
        raise WorkspaceError(
            f"refusing to use your home directory {root} as the workspace (pass --allow-home-workspace to insist)"
        )
    if root in home_real.parents:
        raise WorkspaceError(f"refusing to use {root}, which contains your home directory, as the workspace")
    for each_home in _homes(home_real):
        store = _config_store(root, each_home)
        if store is not None:
            where = "it is" if store == root else f"it is inside {store},"
            raise WorkspaceError(
                f"refusing to use {root} as the workspace: {where} a credential or configuration directory"
            )
    return root


def _homes(home: Path) -> list[Path]:
    """`$HOME` and the password database's home (both hold credentials when they differ)."""
    import pwd

    found = [home]
    try:
        other = Path(os.path.realpath(pwd.getpwuid(os.geteuid()).pw_dir))
    except KeyError:
        return found
    if other not in found and other != Path("/"):
        found.append(other)
    return found


def _config_store(root: Path, home: Path) -> Path | None:
    """The credential or configuration directory `root` is, or lies in, if any: every credential store
    of `boundary.table` is a dot-directory (or lies in one) at the top of the home, and so is every
    tool's config (`~/.config`, `~/.local`, `~/.ssh`, `~/.aws`, ...). Kept free of imports: the thin
    `corral run` client finds its workspace without loading the sandbox."""
    if home in root.parents:
        top = home / root.relative_to(home).parts[0]
        if top.name.startswith("."):
            return top
    return None


def _git_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None
