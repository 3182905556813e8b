"""Links a sandboxed command left in the workspace, re-checked across commands.

A symlink that the host later follows is only as safe as what it resolves to *when the host follows
it*. Checking it once, when it is applied, misses a link whose target can still change: one that goes
through another link in the workspace (`a -> sub/x`, and a later command turns `sub` into a link to
`.git/hooks`), or that lands in corral's own cache layers or a hidden path. So every link corral
applied is remembered per project, and at each command's apply every remembered link is checked again;
a link is withdrawn (removed from the host, reported as `fs-protected`) when

- it resolves, through any chain, into a hidden path (credentials, corral's state and cache layers) or
  into a protected location of the workspace (a host tool writing through it would write there), or
- its target passes, inside the workspace, through another symlink (which a later command can
  retarget).

Links that existed before corral ran are the person's own and are never touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

MAX_REMEMBERED = 4096


def passes_through_link(link: Path, workspace: Path) -> bool:
    """Whether `link`'s target, read lexically from the link's directory, names a symlink inside the
    workspace at any step (the final one included)."""
    try:
        target = os.readlink(link)
    except OSError:
        return False
    path = Path(os.path.normpath(link.parent / target))
    prefix = str(workspace).rstrip("/") + "/"
    current = Path(path.parts[0])
    for part in path.parts[1:]:
        current = current / part
        if str(current).startswith(prefix) and os.path.islink(current):
            return True
    return False


class LinkRegistry:
    """The workspace links corral applied for one project, in a JSON list corral owns."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def _load(self) -> list[str]:
        if self.path is None:
            return []
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [item for item in data if isinstance(item, str)] if isinstance(data, list) else []

    def _save(self, links: list[str]) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temp = self.path.with_suffix(f".{os.getpid()}.tmp")
            temp.write_text(json.dumps(links[-MAX_REMEMBERED:]))
            os.replace(temp, self.path)
        except OSError:
            pass

    def recheck(self, applied: Iterable[Path], workspace: Path, unsafe: Callable[[Path], bool]) -> list[Path]:
        """Remember `applied` links, then return every remembered link that is now unsafe (the caller
        withdraws them); links gone or no longer symlinks are forgotten."""
        links = list(dict.fromkeys([*self._load(), *(str(p) for p in applied)]))
        keep: list[str] = []
        risky: list[Path] = []
        for text in links:
            link = Path(text)
            if not os.path.islink(link):
                continue
            if unsafe(link) or passes_through_link(link, workspace):
                risky.append(link)
            else:
                keep.append(text)
        self._save(keep)
        return risky
