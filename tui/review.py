"""The trust review screen: every project corral knows, with decision, date, fingerprint state and rules.

Fingerprint state: `unchanged` (the files match the decision), `changed` (they differ: trust is
withdrawn until re-approved), `missing` (the directory is gone). Keys: Enter/i inspect, r revoke (with
a confirmation), t re-trust (through the trust dialog, which shows the current content first).
"""

from __future__ import annotations

import os
import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from corral.locations import Locations
from corral.trusting import KnownProject, evaluate_project, grant_shown, known_projects, revoke_project
from tui.dialog import DialogScreen
from tui.inert import inert
from tui.tables import FitTable
from tui.trust_dialog import TrustChoice, TrustScreen

_STATE_STYLE = {"unchanged": "green", "changed": "bold dark_orange", "missing": "bold red", "-": "dim"}
_DECISION_STYLE = {"trusted": "bold green", "denied": "bold red", "none": "dim"}


class ConfirmRevokeScreen(DialogScreen[bool]):
    """y/n confirmation for a revoke (default: no)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Revoke", tooltip="Forget the decision", id="revoke.yes"),
        Binding("n", "answer(False)", "Keep", tooltip="Keep the decision", id="revoke.no"),
        Binding("escape", "answer(False)", "Keep", show=False, id="revoke.escape"),
    ]

    def __init__(self, what: Text) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            body = Text("Revoke ", style="bold", end="")
            body.append_text(self.what)
            body.append("?\n\ny revoke · n / Escape keep", style="bold")
            yield Static(body)
            yield Footer()

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)


class TrustReviewScreen(Screen[None]):
    """All projects corral knows."""

    IS_VIEW = True
    """One of the F2/F3/F4 views: opening another replaces it (`CorralShell._open_view`)."""

    BINDINGS = [
        Binding("escape", "close", "Back", tooltip="Back to the shell", id="review.back"),
        Binding("i", "inspect", "Inspect", tooltip="What the project would load now", id="review.inspect"),
        Binding("r", "revoke", "Revoke", tooltip="Forget the trust decision", id="review.revoke"),
        Binding(
            "t", "retrust", "Re-trust", tooltip="Review the current content and trust it", id="review.retrust"
        ),
    ]

    def __init__(self, locations: Locations) -> None:
        super().__init__()
        self.locations = locations
        self.rows: list[KnownProject] = []

    def compose(self) -> ComposeResult:
        yield Static(
            Text(" Trust review · every project corral knows ", style="bold black on cyan"), id="screen-title"
        )
        yield FitTable(0, id="projects", cursor_type="row", zebra_stripes=True)
        yield Static(Text("", end=""), id="review-note")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#projects", DataTable).focus()

    def reload(self) -> None:
        """Read the trust store and rules again."""
        self.rows = known_projects(self.locations)
        table = self.query_one("#projects", FitTable)
        table.clear(columns=True)
        table.add_columns("project", "decision", "date", "fingerprint", "rules")
        for row in self.rows:
            date = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.decided_at)) if row.decided_at else "-"
            table.add_row(
                inert(row.root, one_line=True, limit=120),
                Text(row.decision, style=_DECISION_STYLE.get(row.decision, "")),
                Text(date),
                Text(row.fingerprint_state, style=_STATE_STYLE.get(row.fingerprint_state, "")),
                Text(str(row.rules), justify="right"),
            )
        table.fit()
        note = "no projects yet: open one with `corral shell`" if not self.rows else ""
        self.query_one("#review-note", Static).update(Text(note, style="dim"))

    def _selected(self) -> KnownProject | None:
        table = self.query_one("#projects", DataTable)
        if not self.rows:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    def action_close(self) -> None:
        """Back to the shell."""
        self.dismiss(None)

    @on(DataTable.RowSelected)
    def _selected_row(self) -> None:
        self.action_inspect()

    def action_inspect(self) -> None:
        """Show what the selected project would load now."""
        row = self._selected()
        if row is None or not os.path.isdir(row.root):
            return
        result = evaluate_project(row.root, self.locations)
        self.app.push_screen(TrustScreen(result, inspect_only=True))

    def action_revoke(self) -> None:
        """Forget the selected project's trust decision (after a confirmation)."""
        row = self._selected()
        if row is None or row.decision == "none":
            return

        def answered(yes: bool | None) -> None:
            if yes:
                revoke_project(row.root, self.locations)
                self.reload()

        self.app.push_screen(ConfirmRevokeScreen(inert(row.root, "bold", one_line=True)), answered)

    def action_retrust(self) -> None:
        """Show the selected project's current content and trust it if the person agrees."""
        row = self._selected()
        if row is None or not os.path.isdir(row.root):
            return
        result = evaluate_project(row.root, self.locations)

        def chosen(choice: TrustChoice | None) -> None:
            if choice is TrustChoice.TRUST:
                try:
                    grant_shown(result, self.locations)
                except Exception as error:
                    self.notify(f"not trusted: {error}", severity="error", markup=False)
            self.reload()

        self.app.push_screen(TrustScreen(result), chosen)
