"""The base of the F2/F3/F4/F5 views (trust review, rules, stats, background) and the F1 help.

A view is a full screen over the shell; opening another view replaces it (`CorralShell._open_view`).
Its footer names its own keys first and leaves out the shell's keys that do nothing useful there
(`ViewScreen.BINDINGS` shadow them with hidden bindings that still work). The help (`HelpScreen`)
lists every key of the screen it was opened over, with what it does.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

from tui.dialog import DialogScreen
from tui.tables import FitTable, cell


class ViewScreen(Screen[None]):
    """One of the F2/F3/F4 views."""

    IS_VIEW = True
    """Opening another view replaces this one (`CorralShell._open_view`)."""

    BINDINGS = [
        Binding("f2", "app.trust_review", "Trust", show=False, tooltip="The trust review", id="view.trust"),
        Binding("f3", "app.rules", "Rules", show=False, tooltip="This project's rules", id="view.rules"),
        Binding("f4", "app.stats", "Stats", show=False, tooltip="Prompts and decisions", id="view.stats"),
        Binding(
            "f5",
            "app.background",
            "Background",
            show=False,
            tooltip="What runs in the background",
            id="view.bg",
        ),
    ]

    def action_close(self) -> None:
        """Back to the shell."""
        self.dismiss(None)


def key_rows(screen: Screen[object]) -> list[tuple[str, str, str]]:
    """Every corral key active on `screen` (those with a tooltip: the input line's editing keys have
    none) as (key as shown, name, what it does)."""
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not active.enabled or key in seen or not binding.tooltip:
            continue
        seen.add(key)
        rows.append((screen.app.get_key_display(binding), binding.description, binding.tooltip))
    return rows


class HelpScreen(DialogScreen[None]):
    """F1: the keys of the screen underneath."""

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Back to where you were", id="help.close"),
        Binding("f1", "close", "Close", show=False, id="help.close-f1"),
        Binding("q", "close", "Close", show=False, id="help.close-q"),
    ]

    def __init__(self, under: Screen[object], title: str) -> None:
        super().__init__()
        self.rows = key_rows(under)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog wide"):
            yield Static(Text(f"Keys · {self.title_text}", style="bold"), classes="title")
            yield FitTable(2, id="keys", classes="dialog-body", cursor_type="none", show_header=False)
            with Horizontal(classes="buttons"):
                yield Button("Close (Esc)", id="close", variant="primary")
            yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#keys", FitTable)
        table.add_columns("key", "name", "what it does")
        for key, name, tooltip in self.rows:
            table.add_row(cell(key, "bold", justify="right"), cell(name), cell(tooltip, "dim"))
        table.fit()
        self.query_one("#close", Button).focus()

    def action_close(self) -> None:
        """Back to the screen underneath."""
        self.dismiss(None)

    def on_button_pressed(self) -> None:
        self.dismiss(None)
