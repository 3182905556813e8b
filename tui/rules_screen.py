"""The rules screen: the project's stored rules (exact paths, directories, hosts), with revoke.

Rules on sensitive targets are marked. Revoking asks for a y/n confirmation (default: keep).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from corral.locations import Locations
from corral.rules import Rule, RuleStore
from tui.inert import inert
from tui.review import ConfirmRevokeScreen
from tui.tables import FitTable


class RulesScreen(Screen[None]):
    """This project's rules (all projects' with `a`)."""

    IS_VIEW = True
    """One of the F2/F3/F4 views: opening another replaces it (`CorralShell._open_view`)."""

    BINDINGS = [
        Binding("escape", "close", "Back", tooltip="Back to the shell", id="rules.back"),
        Binding("r", "revoke", "Revoke", tooltip="Delete the selected rule", id="rules.revoke"),
        Binding("a", "toggle_all", "All projects", tooltip="Show rules of every project", id="rules.all"),
    ]

    def __init__(self, locations: Locations, project: Path) -> None:
        super().__init__()
        self.locations = locations
        self.project = project
        self.all_projects = False
        self.rules: list[Rule] = []

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="screen-title")
        yield FitTable(id="rules", cursor_type="row", zebra_stripes=True)
        yield Static("", id="rules-note")
        yield Footer()

    def _title(self) -> Text:
        title = Text(" Rules ", style="bold black on cyan", end="")
        title.append(" ")
        if self.all_projects:
            title.append("every project", style="bold")
        else:
            title.append_text(inert(str(self.project), "bold", one_line=True, limit=120))
        return title

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#rules", DataTable).focus()

    def _load(self) -> list[Rule]:
        store = RuleStore.open(self.locations.rules_path)
        try:
            return store.list(None if self.all_projects else self.project)
        finally:
            store.close()

    def reload(self) -> None:
        """Read the rules again."""
        try:
            self.rules = self._load()
            note = Text(
                "no rules: answers with “Project (p)” are stored here" if not self.rules else "", style="dim"
            )
        except Exception as error:
            self.rules = []
            note = inert(f"rules unavailable: {error}", "bold red", one_line=True)
        table = self.query_one("#rules", FitTable)
        table.clear(columns=True)
        table.flexible = frozenset({1, 3} if self.all_projects else {2})  # project, target
        columns = ["id", "kind", "target", "", "created"]
        if self.all_projects:
            columns.insert(1, "project")
        table.add_columns(*columns)
        for rule in self.rules:
            cells = [
                Text(str(rule.id), justify="right"),
                Text(rule.kind.value, style="bold"),
                inert(
                    rule.target + ("/" if rule.is_directory and not rule.target.endswith("/") else ""),
                    one_line=True,
                ),
                Text("sensitive", style="bold white on red") if rule.sensitive else Text(""),
                Text(time.strftime("%Y-%m-%d %H:%M", time.localtime(rule.created_at))),
            ]
            if self.all_projects:
                cells.insert(1, inert(rule.project, "dim", one_line=True, limit=60))
            table.add_row(*cells)
        table.fit()
        self.query_one("#rules-note", Static).update(note)
        self.query_one("#screen-title", Static).update(self._title())

    def action_close(self) -> None:
        """Back to the shell."""
        self.dismiss(None)

    def action_toggle_all(self) -> None:
        """Switch between this project's rules and every project's."""
        self.all_projects = not self.all_projects
        self.reload()

    def action_revoke(self) -> None:
        """Delete the selected rule after a confirmation."""
        if not self.rules:
            return
        table = self.query_one("#rules", DataTable)
        rule = self.rules[min(table.cursor_row, len(self.rules) - 1)]

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            store = RuleStore.open(self.locations.rules_path)
            try:
                store.revoke(rule.id)
            finally:
                store.close()
            self.reload()

        what = Text(f"rule {rule.id} ({rule.kind.value}) ", end="")
        what.append_text(inert(rule.target, "bold", one_line=True))
        self.app.push_screen(ConfirmRevokeScreen(what), answered)
