"""Tables that never scroll sideways: the flexible columns share the width the others leave.

`FitTable` is a `DataTable` whose columns are sized by corral, not by their widest cell: every column
but the flexible ones keeps its natural width (its widest line), and the flexible ones (a path, a
target, a project) share what is left of the table's width, so a long value ends in an ellipsis
("…", at the end: the start of a path stays readable) instead of pushing the other columns out of
view. The sizes are recomputed when the table is resized and whenever `fit` is called after rows
change. Cells must be `rich.text.Text` built with `no_wrap` and `overflow="ellipsis"` (`tui.inert`
with `one_line=True` does that; `cell` does it for any other text).
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import DataTable

MIN_FLEXIBLE_WIDTH = 12
"""The flexible column never gets narrower than this (below it the table scrolls sideways)."""


def cell(text: str, style: str = "", *, justify: str = "left") -> Text:
    """A one-line table cell that ends in an ellipsis when its column is too narrow."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis", justify=justify, end="")  # type: ignore[arg-type]


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

    def on_resize(self, event: events.Resize) -> None:
        self.fit()

    def fit(self) -> None:
        """Size every column: the others at their natural width, the flexible ones to what is left."""
        columns = list(self.columns.values())
        if not columns:
            return
        rows = [self.get_row(row.key) for row in self.ordered_rows]
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
            self._require_update_dimensions = True
            self._clear_caches()
            self.refresh(layout=True)

    def _needs_vertical_scrollbar(self) -> bool:
        rows = sum(row.height for row in self.ordered_rows) + (self.header_height if self.show_header else 0)
        return rows > self.content_region.height
