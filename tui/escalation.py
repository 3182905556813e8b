"""The escalation dialog: one modal per command that crossed the boundary.

Order on screen (A03): the command in full first, then the project, what is sensitive and the keys,
then each violation (kind, operation, target, why it matters), then the buttons. Only the part between
the title and the buttons scrolls (`tui.dialog`); moving the selection scrolls it to the selected row. The captured change set is one key away (`c`); the
full list of violations behind a summary is one key away (`v`); a single item can be denied while the
rest is allowed (`x`). Escape, closing and the default focus all mean deny. A project rule on a
sensitive target needs a second, explicit step (`ConfirmSensitiveScreen`, whose default is cancel).

Answer keys are ignored for `arm_delay_s` after the dialog opens, so keys typed for the command line
just before it appeared cannot answer it (deny is always accepted). Any other printable key denies.

The screen holds no policy: it returns a `Decision` (or one per violation) to the `ask` bridge.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Region
from textual.widgets import Button, DataTable, Footer, Static

from boundary.violations import Violation
from corral.decision import DENY, Decision, PromptAnswer, PromptRequest, Scope
from corral.grouping import deleted_paths, is_deletion
from tui.changes import change_set, describe, diff_for, shows_target_line
from tui.dialog import DialogScreen
from tui.inert import inert
from tui.portlabel import one_port_label
from tui.tables import FitTable, shorten_middle

_MEANINGFUL_KEYS = frozenset(
    {
        "escape",
        "enter",
        "tab",
        "shift+tab",
        "up",
        "down",
        "left",
        "right",
        "pageup",
        "pagedown",
        "d",
        "o",
        "s",
        "p",
        "c",
        "v",
        "x",
        "t",
    }
)
"""Keys with a binding or a focus move here; any other printable key is a deny."""

ARM_DELAY_S = 0.4
"""Answer keys other than deny are ignored this long after the dialog opens."""

_KIND_LABEL = {
    "fs-write": "write outside",
    "fs-protected": "protected path",
    "fs-read": "credential read",
    "net": "network",
}
_DELETE_LABEL = {"fs-write": "delete outside", "fs-protected": "delete protected"}
"""A deletion of existing paths is named as one, with the count of paths, never as a write."""


def _scope_answer(
    request: PromptRequest, scope: Scope, excluded: set[Violation], confirmed: bool
) -> PromptAnswer:
    decision = Decision(scope, confirmed_sensitive=confirmed)
    if not excluded:
        return decision
    return {v: (DENY if v in excluded else decision) for v in request.violations}


class ConfirmSensitiveScreen(DialogScreen[bool]):
    """The explicit second step for a project rule on sensitive targets. Default: cancel."""

    HELP_TITLE = "the sensitive confirmation"

    BINDINGS = [
        Binding("escape", "cancel", "Go back", show=False, id="confirm.cancel"),
        Binding("n", "cancel", "Go back", tooltip="Go back without storing a rule", id="confirm.no"),
        Binding(
            "y",
            "confirm",
            "Store project rules",
            tooltip="Store project rules for these sensitive targets",
            id="confirm.yes",
        ),
    ]

    def __init__(self, sensitive: list[Violation], reasons: dict[str, str]) -> None:
        super().__init__()
        self.sensitive = sensitive
        self.reasons = reasons

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Static(Text("Allow for this project: sensitive targets", style="bold red"), classes="title")
            body = Text(end="")
            body.append("A project rule stays until you revoke it. These targets are sensitive:\n\n")
            for violation in self.sensitive:
                body.append(" ! ", style="bold white on red")
                body.append(" ")
                body.append_text(inert(violation.target, "bold", one_line=True))
                body.append("\n   ")
                body.append_text(inert(self.reasons.get(violation.target, ""), "italic", one_line=True))
                body.append("\n")
            body.append("\nPress y to store the rules, n or Escape to go back.", style="bold")
            yield VerticalScroll(Static(body), classes="dialog-body")
            with Horizontal(classes="buttons"):
                yield Button("Go back (n/Esc)", id="cancel", variant="primary")
                yield Button("Store project rules (y)", id="confirm", variant="error")
            yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_cancel(self) -> None:
        """Go back to the escalation dialog."""
        self.dismiss(False)

    def action_confirm(self) -> None:
        """Confirm the project rules."""
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self) -> None:
        self.dismiss(True)


class ChangesScreen(DialogScreen[None]):
    """The captured change set: file list with sizes and modes, and a diff for text files."""

    HELP_TITLE = "captured changes"

    BINDINGS = [
        Binding("escape", "close", "Back", tooltip="Back to the decision", id="changes.back"),
        Binding("c", "close", "Back", show=False, id="changes.back-c"),
        Binding("q", "close", "Back", show=False, id="changes.back-q"),
    ]

    def __init__(self, violations: tuple[Violation, ...]) -> None:
        super().__init__()
        self.violations = violations

    def compose(self) -> ComposeResult:
        with Vertical(id="changes-box", classes="dialog wide"):
            yield Static(Text("Captured changes (not on the host yet)", style="bold"), classes="title")
            yield VerticalScroll(Static(self._body(), id="changes-text"), id="changes-body")
            yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._fit_paths)

    def _fit_paths(self) -> None:
        """Shorten long paths in the middle to the body's width (a diff line ends in "…")."""
        body = self.query_one("#changes-body", VerticalScroll)
        width = body.content_region.width - body.styles.scrollbar_size_vertical
        self.query_one("#changes-text", Static).update(self._body(width))

    def _body(self, width: int = 10_000) -> Text:
        body = Text(end="", no_wrap=True, overflow="ellipsis")  # nothing wraps: long paths are shortened
        pairs = change_set(self.violations)
        if not pairs:
            body.append("This prompt carries no captured file changes (reads and connections only).")
            return body
        for violation, changes in pairs:
            if shows_target_line(violation, changes):
                body.append_text(
                    shorten_middle(inert(violation.target, "bold underline", one_line=True), width)
                )
                body.append("\n")
            for change in changes:
                row = describe(change)
                prefix = f"  {row.op:<8}{row.size:>10}  {row.mode:>4}  "
                note = inert(row.note, "yellow", one_line=True) if row.note else Text("")
                room = width - len(prefix) - (len(note.plain) + 2 if row.note else 0)
                body.append(f"  {row.op:<8}", style="bold")
                body.append(f"{row.size:>10}  {row.mode:>4}  ", style="dim")
                body.append_text(shorten_middle(inert(row.path, one_line=True), max(room, 12)))
                if row.note:
                    body.append("  ")
                    body.append_text(note)
                body.append("\n")
            for change in changes:
                for line in diff_for(change):
                    style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
                    if line.startswith(("+++", "---")):
                        style = "bold"
                    body.append("    ")
                    body.append_text(inert(line, style, one_line=True))
                    body.append("\n")
            body.append("\n")
        return body

    def action_close(self) -> None:
        """Back to the escalation dialog."""
        self.dismiss(None)


class EscalationScreen(DialogScreen[PromptAnswer]):
    """Ask about one command's violations. Dismisses with a Decision or a per-violation mapping."""

    HELP_TITLE = "the escalation dialog"

    BINDINGS = [
        Binding("escape", "deny", "Deny", tooltip="Deny everything (the default)", id="escalation.escape"),
        Binding("d", "deny", "Deny", tooltip="Deny everything (the default)", id="escalation.deny"),
        Binding(
            "o", "allow('once')", "Allow once", tooltip="Apply for this command only", id="escalation.once"
        ),
        Binding(
            "s",
            "allow('session')",
            "Session",
            tooltip="Allow these targets until the shell ends",
            id="escalation.session",
        ),
        Binding(
            "p",
            "allow('project')",
            "Project",
            tooltip="Store a rule for these exact targets",
            id="escalation.project",
        ),
        Binding(
            "t",
            "allow_port",
            "Port only",
            tooltip="Store a rule for these hosts on this port only (a project rule covers every port)",
            id="escalation.port",
        ),
        Binding(
            "c", "changes", "Changes", tooltip="Show the captured files and diffs", id="escalation.changes"
        ),
        Binding(
            "v",
            "toggle_details",
            "Details",
            tooltip="Every violation instead of the summary",
            id="escalation.details",
        ),
        Binding(
            "x",
            "exclude",
            "Deny item",
            tooltip="Deny the selected item, allow the rest",
            id="escalation.exclude",
        ),
        Binding("up", "cursor(-1)", "Previous", show=False, priority=True, id="escalation.up"),
        Binding("down", "cursor(1)", "Next", show=False, priority=True, id="escalation.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="escalation.page-up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="escalation.page-down"),
    ]

    def __init__(self, request: PromptRequest, *, arm_delay_s: float = ARM_DELAY_S) -> None:
        super().__init__()
        self.request = request
        self.arm_delay_s = arm_delay_s
        self.excluded: set[Violation] = set()
        self.details = len(request.groups) == len(request.violations)
        self._opened_at = time.monotonic()
        self._rows: list[tuple[Violation, ...]] = []

    # --- layout --------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(id="escalation-box", classes="dialog wide"):
            yield Static(Text("This command crossed the sandbox boundary", style="bold"), classes="title")
            command = Text("Command (exactly as run):\n", style="bold", end="")
            command.append_text(inert(request.command, "bold yellow"))
            if request.description:
                command.append("\n\nThe agent says (unverified, not what runs):\n", style="bold red")
                command.append_text(inert(request.description, "italic dim"))
            with VerticalScroll(id="escalation-body", classes="dialog-body"):
                yield VerticalScroll(Static(command), id="command-box")
                where = Text("Project: ", style="dim", end="")
                where.append_text(inert(str(request.project), one_line=True))
                where.append(f"   ·   {request.summary}", style="bold")
                yield Static(where, id="where")
                yield Static(self._notes(), id="notes")
                yield FitTable(2, id="violations", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="buttons"):
                yield Button("Allow once (o)", id="once")
                yield Button("Session (s)", id="session")
                yield Button("Project (p)", id="project")
                yield Button("Deny (d)", id="deny", variant="error")
            yield Footer()

    def _notes(self) -> Text:
        notes = Text(end="")
        if self.request.sensitive:
            notes.append(" ! ", style="bold white on red")
            notes.append(f" {len(self.request.sensitive)} sensitive: a project rule asks you to confirm. ")
        if self.excluded:
            count = len(self.excluded)
            notes.append(f"{count} {'item' if count == 1 else 'items'} marked deny (x). ", style="bold red")
        hints = ["Enter/Esc deny"]
        if change_set(self.request.violations):
            hints.append("c changes")
        hints.append("v details" if not self.details else "v summary")
        if len(self.request.groups) == len(self.request.violations):
            hints.pop()  # nothing is grouped: the summary is the details
        hints.append(f"no answer in {self.request.timeout_s:.0f} s denies")
        notes.append(" · ".join(hints), style="dim")
        return notes

    def on_mount(self) -> None:
        self._opened_at = time.monotonic()
        self._fill_table()
        self.query_one("#deny", Button).focus()

    def _fill_table(self) -> None:
        table = self.query_one("#violations", FitTable)
        table.clear(columns=True)
        table.add_columns("", "kind", "target  ·  why it matters")
        self._rows = []
        if self.details:
            for violation in self.request.violations:
                self._rows.append((violation,))
                table.add_row(
                    *self._cells(violation.kind.value, violation.operation, violation.target, (violation,)),
                    height=2,
                )
        else:
            for group in self.request.groups:
                self._rows.append(group.violations)
                target = group.pattern if group.count == 1 else f"{group.pattern} ({group.count})"
                operation = group.violations[0].operation if group.count == 1 else "…"
                table.add_row(*self._cells(group.kind.value, operation, target, group.violations), height=2)
        table.fit()

    def _cells(self, kind: str, operation: str, target: str, members: tuple[Violation, ...]) -> list[Text]:
        denied = all(v in self.excluded for v in members)
        sensitive = any(v in self.request.sensitive for v in members)
        mark = (
            Text("deny", style="bold white on red")
            if denied
            else (Text("!", style="bold white on red") if sensitive else Text(""))
        )
        reason = self.request.reasons.get(members[0].target, "")
        target_cell = inert(target, "bold" if sensitive else "", one_line=True, limit=4096)
        target_cell.append("\n")
        target_cell.append_text(inert(reason, "italic dim", one_line=True, limit=300))
        label = _KIND_LABEL.get(kind, kind)
        if kind in _DELETE_LABEL and all(is_deletion(v) for v in members):
            deleted = sum(deleted_paths(v) for v in members)
            label = f"{_DELETE_LABEL[kind]} ({deleted})"
        kind_cell = Text(label, style="bold red" if sensitive else "bold", end="")
        kind_cell.append("\n")
        kind_cell.append_text(inert(operation, "dim", one_line=True, limit=20))
        return [mark, kind_cell, target_cell]

    # --- actions -------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`c` (changes) is offered only when the prompt carries captured changes, `v` (details) only
        when a summary groups violations, `x` (deny one item) only when there is more than one."""
        if action == "changes":
            return bool(change_set(self.request.violations))
        if action == "toggle_details":
            return len(self.request.groups) != len(self.request.violations)
        if action == "exclude":
            return len(self.request.violations) > 1  # one item: denying it is the deny
        if action == "allow_port":
            return bool(one_port_label(self.request))  # hosts only: a port means nothing for a path
        return True

    def on_key(self, event: events.Key) -> None:
        """A printable key with no meaning here denies (after the arming delay; before it, nothing):
        an allow takes a deliberate key, never a stray one typed for the command line."""
        if event.key in _MEANINGFUL_KEYS or not event.is_printable:
            return
        event.stop()
        event.prevent_default()
        if self._armed():
            self.action_deny()

    def _armed(self) -> bool:
        return time.monotonic() - self._opened_at >= self.arm_delay_s

    def action_deny(self) -> None:
        """Deny everything."""
        self.dismiss(DENY)

    def action_allow(self, scope_name: str) -> None:
        """Allow at `scope_name` (once / session / project); project on a sensitive target confirms first."""
        if not self._armed():
            self.app.bell()
            return
        scope = Scope(scope_name)
        allowed = [v for v in self.request.violations if v not in self.excluded]
        if not allowed:
            self.dismiss(DENY)
            return
        sensitive = [v for v in allowed if v in self.request.sensitive]
        if scope is Scope.PROJECT and sensitive:

            def confirmed(ok: bool | None) -> None:
                if ok:
                    self.dismiss(_scope_answer(self.request, scope, self.excluded, True))

            self.app.push_screen(ConfirmSensitiveScreen(sensitive, dict(self.request.reasons)), confirmed)
            return
        self.dismiss(_scope_answer(self.request, scope, self.excluded, False))

    def action_allow_port(self) -> None:
        """Allow for this project on the asked port(s) only (hosts only; never a sensitive step: a host
        is not a sensitive target)."""
        if not self._armed():
            self.app.bell()
            return
        if not one_port_label(self.request):
            return
        answer = _scope_answer(self.request, Scope.PROJECT, self.excluded, False)
        port_only = Decision(Scope.PROJECT, one_port=True)
        if isinstance(answer, Decision):
            self.dismiss(port_only)
        else:
            self.dismiss({v: (port_only if d is not DENY else d) for v, d in answer.items()})

    def action_changes(self) -> None:
        """Show the captured change set."""
        self.app.push_screen(ChangesScreen(self.request.violations))

    def action_toggle_details(self) -> None:
        """Switch between the grouped summary and every violation."""
        self.details = not self.details
        self._fill_table()
        self.query_one("#notes", Static).update(self._notes())

    def action_cursor(self, step: int) -> None:
        """Move the selection in the list (focus stays on the deny button)."""
        table = self.query_one("#violations", DataTable)
        table.move_cursor(row=max(0, min(table.cursor_row + step, table.row_count - 1)), animate=False)
        self.call_after_refresh(self._show_selected_row)

    def _show_selected_row(self) -> None:
        """Scroll the dialog body so that the selected row shows (a short terminal cannot show all)."""
        table = self.query_one("#violations", DataTable)
        rows = table.ordered_rows
        if not rows:
            return
        index = min(table.cursor_row, len(rows) - 1)
        top = table.virtual_region.y + (table.header_height if table.show_header else 0)
        top += sum(row.height for row in rows[:index]) - round(table.scroll_y)
        body = self.query_one("#escalation-body", VerticalScroll)
        body.scroll_to_region(Region(0, top, 1, rows[index].height), animate=False, immediate=True)

    def action_page(self, step: int) -> None:
        """Page up/down through the dialog body."""
        body = self.query_one("#escalation-body", VerticalScroll)
        if step < 0:
            body.scroll_page_up(animate=False)
        else:
            body.scroll_page_down(animate=False)

    def action_exclude(self) -> None:
        """Toggle deny for the selected row (a group or one violation)."""
        table = self.query_one("#violations", DataTable)
        if not self._rows:
            return
        members = self._rows[min(table.cursor_row, len(self._rows) - 1)]
        if all(v in self.excluded for v in members):
            self.excluded.difference_update(members)
        else:
            self.excluded.update(members)
        row = table.cursor_row
        self._fill_table()
        table.move_cursor(row=row)
        self.query_one("#notes", Static).update(self._notes())

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        if event.button.id == "deny":
            self.action_deny()
        elif event.button.id in ("once", "session", "project"):
            self.action_allow(event.button.id)

    def cancel(self) -> None:
        """corral stopped waiting (timeout): close without an answer that matters."""
        if self.is_attached:
            self.dismiss(DENY)
