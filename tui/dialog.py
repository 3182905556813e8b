"""The base of every dialog: a modal screen whose buttons stay in view at any terminal size.

A dialog (`.dialog`) sits between the shell's header and its input row (its margin in `shell.tcss`)
and is as tall as its content, at most that gap. Its `.dialog-body` is the one part that scrolls: on
every resize it is given what the dialog's other parts (title, buttons, footer) leave, so those are
never pushed out of view. A terminal under `SHORT_ROWS` rows also gets the `short` class and compact
(one-row) buttons, and `shell.tcss` spends no row on spacing there, so the content keeps them.
"""

from __future__ import annotations

from typing import TypeVar

from textual import events
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button

SHORT_ROWS = 30
"""Terminals with fewer rows than this are short: dialogs drop their spacing rows."""

MIN_BODY_ROWS = 3
"""A body never shrinks below this, however small the terminal."""

ResultType = TypeVar("ResultType")


class DialogScreen(ModalScreen[ResultType]):
    """A modal dialog whose body scrolls and whose other parts always show."""

    def on_mount(self) -> None:
        self._fit(self.app.size.height)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.height)

    def _fit(self, rows: int) -> None:
        short = rows < SHORT_ROWS
        self.set_class(short, "short")
        for button in self.query(".buttons Button").results(Button):
            button.compact = short
        self.call_after_refresh(self.fit_body)

    def fit_body(self) -> None:
        """Give each dialog body the rows its dialog's other parts leave (at least `MIN_BODY_ROWS`)."""
        for body in self.query(".dialog-body"):
            dialog = body.parent
            if not isinstance(dialog, Widget):
                continue
            room = self.size.height - dialog.styles.margin.height - dialog.styles.gutter.height
            others = sum(
                child.outer_size.height for child in dialog.children if child is not body and child.display
            )
            body.styles.max_height = max(MIN_BODY_ROWS, room - others)
