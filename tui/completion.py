"""Path completion and command history, shared by the Textual input line and the line mode.

`complete_path(line, cwd)` completes the last word of a command line as a path; names that hold
control, bidi or zero-width characters are never offered (they would put invisible text into a command
the person then runs). `History` is an in-memory list with up/down navigation; the line mode keeps its
own file history through prompt-toolkit.
"""

from __future__ import annotations

import os
from pathlib import Path

from boundary.termsafe import needs_escape

MAX_ENTRIES_SCANNED = 2000
MAX_HISTORY = 1000


def _safe_name(name: str) -> bool:
    return not any(needs_escape(char) for char in name) and "\n" not in name


def _candidates(directory: Path, prefix: str) -> list[str]:
    names: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for index, entry in enumerate(entries):
                if index >= MAX_ENTRIES_SCANNED:
                    break
                if not entry.name.startswith(prefix) or not _safe_name(entry.name):
                    continue
                if not prefix.startswith(".") and entry.name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                names.append(entry.name + ("/" if is_dir else ""))
    except OSError:
        return []
    return sorted(names)


def path_completions(word: str, cwd: Path) -> list[str]:
    """Every completion of `word` (a path as typed, `~` allowed), as the full replacement word."""
    head, _, prefix = word.rpartition("/")
    if "/" in word:
        base = head + "/"
        directory = Path(os.path.expanduser(base if base else "/"))
    else:
        base = ""
        directory = Path(".")
    if not directory.is_absolute():
        directory = cwd / directory
    return [base + name for name in _candidates(directory, prefix)]


def complete_path(line: str, cwd: Path) -> str | None:
    """`line` with its last word completed as far as it is unambiguous, or None when nothing to add."""
    if not line or line.endswith(" "):
        return None
    start = line.rfind(" ") + 1
    word = line[start:]
    matches = path_completions(word, cwd)
    if not matches:
        return None
    common = os.path.commonprefix(matches)  # noqa: RUF071 (character prefix is what completion wants)
    if len(common) <= len(word):
        return None
    return line[:start] + common


class History:
    """Commands typed in this shell, newest last, with a cursor for up/down."""

    def __init__(self, entries: list[str] | None = None, limit: int = MAX_HISTORY) -> None:
        self.entries: list[str] = list(entries or [])[-limit:]
        self.limit = limit
        self._cursor = len(self.entries)

    def add(self, line: str) -> None:
        """Remember `line` (not twice in a row) and reset the cursor."""
        if line.strip() and (not self.entries or self.entries[-1] != line):
            self.entries.append(line)
            del self.entries[: max(0, len(self.entries) - self.limit)]
        self._cursor = len(self.entries)

    def previous(self) -> str | None:
        """The entry before the cursor, or None at the start."""
        if self._cursor == 0:
            return None
        self._cursor -= 1
        return self.entries[self._cursor]

    def next(self) -> str:
        """The entry after the cursor; an empty line past the newest."""
        if self._cursor >= len(self.entries) - 1:
            self._cursor = len(self.entries)
            return ""
        self._cursor += 1
        return self.entries[self._cursor]
