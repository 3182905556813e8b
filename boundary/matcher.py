"""Protected-path matching compiled once: one regular expression for the whole table.

A command that writes 10,000 files asks for each of them whether it touches a protected location, so
the check must cost microseconds, not a loop over every pattern with the path re-folded each time. The
path relative to the workspace is folded once (NFC, case-folded: `.GIT/Hooks` and NFD spellings are the
same name to corral as to a case-insensitive or normalising tool) and matched against one compiled
alternation anchored at component boundaries.

Semantics (the same for every row):
- a file row matches a path whose last components are the pattern (at any depth, or only at the top
  for a `top` row);
- a subtree row also matches everything below it;
- a change that replaces or removes a node (delete, symlink, a file where a directory was) matches when
  the node is the location *or one of its ancestors*, since it would swap the protected path out.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from boundary.table import Kind, Row, rows


def fold(name: str) -> str:
    """Case-fold and NFC-normalise a path (or one component) for protected-path matching."""
    if name.isascii():
        return name.lower()
    return unicodedata.normalize("NFC", name).casefold()


def _component(pattern: str) -> str:
    """One folded shell-style component as a regex: `*` and `?` never cross a `/`."""
    out: list[str] = []
    for char in fold(pattern):
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _parts(pattern: str) -> list[str]:
    parts = [p for p in pattern.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"invalid protected pattern {pattern!r}")
    return [_component(p) for p in parts]


class ProtectedMatcher:
    """The protected rows, compiled on first use (a command that changes nothing never pays for the
    compilation). `matches(relative, replaces_node=...)` is the hot path."""

    __slots__ = ("_ancestors", "_compiled", "_each", "rows")

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows: tuple[Row, ...] = tuple(rows)
        self._compiled: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]] | None = (
            None
        )
        self._each: list[tuple[Row, ProtectedMatcher]] | None = None
        self._ancestors: tuple[frozenset[str], int] | None = None

    @classmethod
    def compile(cls, rows: Iterable[Row]) -> ProtectedMatcher:
        return cls(rows)

    def _compile(self) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
        files: list[str] = []
        trees: list[str] = []
        top_files: list[str] = []
        top_trees: list[str] = []
        prefixes: list[str] = []
        top_prefixes: list[str] = []
        for row in self.rows:
            parts = _parts(row.pattern)
            full = "/".join(parts)
            if row.top:
                (top_trees if row.subtree else top_files).append(full)
            else:
                (trees if row.subtree else files).append(full)
            for width in range(1, len(parts)):
                (top_prefixes if row.top else prefixes).append("/".join(parts[:width]))

        def alt(items: list[str]) -> str:
            return "(?:" + "|".join(dict.fromkeys(items)) + ")" if items else "(?!)"

        # Searched in "/" + path: every alternative starts with a literal "/", which the regex engine
        # scans for directly, so the cost grows with the number of components, not of rows.
        anywhere = f"/(?:{alt(files)}$|{alt(trees)}(?:/|$))"
        top = f"/(?:{alt(top_files)}$|{alt(top_trees)}(?:/|$))"
        compiled = (
            re.compile(anywhere, re.DOTALL),
            re.compile(f"{anywhere}|/{alt(prefixes)}$", re.DOTALL),
            re.compile(top, re.DOTALL),
            re.compile(f"{top}|/{alt(top_prefixes)}$", re.DOTALL),
        )
        # Ancestors of protected locations are literal in every row today: look them up in a set
        # (a node replacement's extra check is then one dict probe per suffix width, no regex).
        literal = [p.replace("\\", "") for p in prefixes]
        if all(re.escape(p.replace("\\", "")) == p for p in prefixes) and not top_prefixes:
            self._ancestors = (
                frozenset(re.sub(r"\\(.)", r"\1", p) for p in prefixes),
                max((p.count("/") + 1 for p in literal), default=0),
            )
        self._compiled = compiled
        return compiled

    def matches(self, relative: str, *, replaces_node: bool) -> bool:
        """Whether a change at `relative` (a `/`-separated path inside the workspace, no leading `/`)
        touches a protected location."""
        change, replace, top, top_replace = self._compiled or self._compile()
        path = "/" + fold(relative)
        if change.search(path) is not None or top.match(path) is not None:
            return True
        if not replaces_node:
            return False
        if self._ancestors is None:
            return replace.search(path) is not None or top_replace.match(path) is not None
        names, widest = self._ancestors
        parts = path.rsplit("/", widest)
        return any("/".join(parts[-width:]) in names for width in range(1, len(parts)))

    def row_for(self, relative: str) -> Row | None:
        """The first row that protects `relative` (for the prompt's why-it-matters line); slow path."""
        if self._each is None:
            self._each = [(row, ProtectedMatcher((row,))) for row in self.rows]
        for row, single in self._each:
            if single.matches(relative, replaces_node=False):
                return row
        return None


@functools.cache
def default_matcher() -> ProtectedMatcher:
    """Every protected row of `boundary.table`, one matcher per process."""
    return ProtectedMatcher(rows(Kind.PROTECTED))
