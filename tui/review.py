"""The trust review screen: every project corral knows, with decision, date, fingerprint state and rules.

Fingerprint state: `unchanged` (the files match the decision), `changed` (they differ: trust is
withdrawn until re-approved), `missing` (the directory is gone). Keys: Enter/i inspect, r revoke (with
a confirmation), t re-trust (through the trust dialog, which shows the current content first).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Static

from corral import __version__
from corral.locations import Locations
from corral.rules import RuleStore
from trust.gate import evaluate, grant, revoke
from trust.store import TrustRecord, TrustStore
from tui.inert import inert
from tui.trust_dialog import TrustChoice, TrustScreen


@dataclass(frozen=True, slots=True)
class ProjectRow:
    """One known project, as the review lists it."""

    root: str
    decision: str
    decided_at: float
    fingerprint_state: str
    rules: int


def _fingerprint_state(record: TrustRecord, store: TrustStore) -> str:
    if not os.path.isdir(record.root):
        return "missing"
    try:
        result = evaluate(record.root, store, with_history=False)
    except Exception:
        return "missing"
    if result.fingerprint == record.fingerprint and not result.discovery.problems:
        return "unchanged"
    return "changed"


def project_rows(locations: Locations) -> list[ProjectRow]:
    """Every project in the trust store, plus projects that only have rules."""
    store = TrustStore(locations.trust_dir)
    try:
        rules = RuleStore.open(locations.rules_path)
    except Exception:
        rules = None
    counts: dict[str, int] = {}
    if rules is not None:
        try:
            for rule in rules.list():
                counts[rule.project] = counts.get(rule.project, 0) + 1
        finally:
            rules.close()
    rows: list[ProjectRow] = []
    seen: set[str] = set()
    for record in store.records():
        seen.add(record.root)
        rows.append(
            ProjectRow(
                record.root,
                record.decision.value,
                record.decided_at,
                _fingerprint_state(record, store),
                counts.get(record.root, 0),
            )
        )
    for root, count in sorted(counts.items()):
        if root not in seen:
            state = "missing" if not os.path.isdir(root) else "-"
            rows.append(ProjectRow(root, "none", 0.0, state, count))
    return rows


_STATE_STYLE = {"unchanged": "green", "changed": "bold dark_orange", "missing": "bold red", "-": "dim"}
_DECISION_STYLE = {"trusted": "bold green", "denied": "bold red", "none": "dim"}


class ConfirmRevokeScreen(ModalScreen[bool]):
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
        self.rows: list[ProjectRow] = []

    def compose(self) -> ComposeResult:
        yield Static(
            Text(" Trust review · every project corral knows ", style="bold black on cyan"), id="screen-title"
        )
        table: DataTable[Text] = DataTable(id="projects", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(Text("", end=""), id="review-note")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#projects", DataTable).focus()

    def reload(self) -> None:
        """Read the trust store and rules again."""
        self.rows = project_rows(self.locations)
        table = self.query_one("#projects", DataTable)
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
        note = "no projects yet: open one with `corral shell`" if not self.rows else ""
        self.query_one("#review-note", Static).update(Text(note, style="dim"))

    def _selected(self) -> ProjectRow | None:
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
        result = evaluate(row.root, TrustStore(self.locations.trust_dir))
        self.app.push_screen(TrustScreen(result, inspect_only=True))

    def action_revoke(self) -> None:
        """Forget the selected project's trust decision (after a confirmation)."""
        row = self._selected()
        if row is None or row.decision == "none":
            return

        def answered(yes: bool | None) -> None:
            if yes:
                revoke(row.root, TrustStore(self.locations.trust_dir))
                self.reload()

        self.app.push_screen(ConfirmRevokeScreen(inert(row.root, "bold", one_line=True)), answered)

    def action_retrust(self) -> None:
        """Show the selected project's current content and trust it if the person agrees."""
        row = self._selected()
        if row is None or not os.path.isdir(row.root):
            return
        store = TrustStore(self.locations.trust_dir)
        result = evaluate(row.root, store)

        def chosen(choice: TrustChoice | None) -> None:
            if choice is TrustChoice.TRUST:
                try:
                    grant(row.root, store, __version__, expected_fingerprint=result.fingerprint)
                except Exception as error:
                    self.notify(f"not trusted: {error}", severity="error", markup=False)
            self.reload()

        self.app.push_screen(TrustScreen(result), chosen)
