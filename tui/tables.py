"""Tables that never scroll sideways: the flexible columns share the width the others leave.

`FitTable` is a `DataTable` whose columns are sized by corral, not by their widest cell: every column
but the flexible ones keeps its natural width (its widest line), and the flexible ones (a path, a
target, a project) share what is left of the table's width, so a long value is shortened instead
of pushing the other columns out of view. A flexible cell's first line (the path, host or project)
is shortened in the middle (`shorten_middle`: "/tmp/corral-demo/…/hooks/pre-commit"), so both where it
starts and the file it names stay readable; any further line (a reason) ends in "…". Every path corral
shows in a width it does not fit (tables, the captured changes) is shortened this one way. The sizes
are recomputed when the table is resized and whenever `fit` is called after rows change. Cells must be
`rich.text.Text` built with `no_wrap` and `overflow="ellipsis"` (`tui.inert` with `one_line=True` does
that; `cell` does it for any other text).
"""

from __future__ import annotations

from typing import Self

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

MIN_FLEXIBLE_WIDTH = 12
"""The flexible column never gets narrower than this (below it the table scrolls sideways)."""


def cell(text: str, style: str = "", *, justify: str = "left") -> Text:
    """A one-line table cell that ends in an ellipsis when its column is too narrow."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis", justify=justify, end="")  # type: ignore[arg-type]


def shorten_middle(line: Text, width: int) -> Text:
    """`line` in at most `width` cells: when too long, its start and its end with "…" between. The end
    starts at a "/" and is the longest run of whole path components that fits in two thirds of the
    width (or just the last two thirds of the width when the last component alone is longer)."""
    plain = line.plain
    if cell_len(plain) <= width or width < 5:
        return line
    keep = width - 1
    most = keep * 2 // 3
    starts = [index for index, char in enumerate(plain) if char == "/" and 0 < len(plain) - index <= most]
    tail = len(plain) - starts[0] if starts else most
    shortened = line[: keep - tail]
    shortened.append("…", style="dim")
    shortened.append_text(line[len(plain) - tail :])
    shortened.no_wrap, shortened.overflow, shortened.end = True, "ellipsis", ""
    return shortened


def _shorten_cell(value: Text, width: int) -> Text:
    lines = value.split("\n", allow_blank=True)
    if not lines or cell_len(lines[0].plain) <= width:
        return value
    result = shorten_middle(lines[0], width)
    for line in lines[1:]:
        result.append("\n")
        result.append_text(line)
    result.no_wrap, result.overflow, result.end = True, "ellipsis", ""
    return result


def _natural_width(value: object) -> int:
    plain = value.plain if isinstance(value, Text) else str(value)
    return max((cell_len(line) for line in plain.split("\n")), default=0)


def share(room: int, wants: list[int], keys: list[int]) -> dict[int, int]:
    """Split `room` cells between columns that want `wants` cells: one that wants less than an equal
    share gets what it wants, the rest is split equally; nobody gets less than `MIN_FLEXIBLE_WIDTH`."""
    result: dict[int, int] = {}
    pending = sorted(zip(wants, keys, strict=True))
    while pending:
        fair = room // len(pending)
        want, key = pending[0]
        if want <= fair:
            result[key] = want
            room -= want
            pending.pop(0)
            continue
        for want, key in pending:
            result[key] = max(MIN_FLEXIBLE_WIDTH, min(want, fair))
        break
    return result


class FitTable(DataTable[Text]):
    """A DataTable whose flexible column shrinks (its cells end in "…") so that no row is wider than
    the table."""

    def __init__(self, *flexible: int, id: str | None = None, **options: object) -> None:
        super().__init__(id=id, **options)  # type: ignore[arg-type]
        self.flexible = frozenset(flexible)
        """Indices of the columns that share the width the other columns leave."""
        self._originals: dict[tuple[RowKey, ColumnKey], Text] = {}

    def on_resize(self, event: events.Resize) -> None:
        self.fit()

    def fit(self) -> None:
        """Size every column: the others at their natural width, the flexible ones to what is left."""
        columns = list(self.columns.values())
        if not columns:
            return
        keys = [list(self.columns)[index] for index in range(len(columns))]
        rows = [[self._original(row.key, key) for key in keys] for row in self.ordered_rows]
        natural = [
            max(
                [
                    cell_len(column.label.plain),
                    *(_natural_width(row[index]) for row in rows if index < len(row)),
                ]
            )
            for index, column in enumerate(columns)
        ]
        padding = 2 * self.cell_padding
        available = self.content_region.width
        if self._needs_vertical_scrollbar():
            available -= self.styles.scrollbar_size_vertical
        flexible = [index for index in range(len(columns)) if index in self.flexible]
        fixed = sum(natural[index] + padding for index in range(len(columns)) if index not in self.flexible)
        widths = dict(enumerate(natural))
        widths.update(
            share(available - fixed - padding * len(flexible), [natural[i] for i in flexible], flexible)
        )
        changed = False
        for index, column in enumerate(columns):
            if column.auto_width or column.width != widths[index]:
                column.auto_width = False
                column.width = widths[index]
                changed = True
        if changed:
            for row, values in zip(self.ordered_rows, rows, strict=True):
                for index in flexible:
                    value = values[index]
                    if isinstance(value, Text):
                        self.update_cell(row.key, keys[index], _shorten_cell(value, widths[index]))
            self._require_update_dimensions = True
            self._clear_caches()
            self.refresh(layout=True)

    def _original(self, row: RowKey, column: ColumnKey) -> Text:
        """The cell as it was added (before any shortening)."""
        found = self._originals.get((row, column))
        if found is None:
            found = self._originals[(row, column)] = self.get_cell(row, column)
        return found

    def clear(self, columns: bool = False) -> Self:
        self._originals.clear()
        return super().clear(columns)

    def _needs_vertical_scrollbar(self) -> bool:
        rows = sum(row.height for row in self.ordered_rows) + (self.header_height if self.show_header else 0)
        return rows > self.content_region.height
