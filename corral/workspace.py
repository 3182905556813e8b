"""Find the workspace for a directory, without running anything from the repository.

The workspace is the git root of the directory (found by looking for a `.git` entry while walking up;
git is never run), else the directory itself. `/` and `$HOME` are refused unless the caller allows the
home explicitly.
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
    return root


def _git_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None
