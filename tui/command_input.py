"""The shell's input line: history on up/down, path completion on Tab (inline suggestion shown)."""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input

from tui.completion import History, complete_path


class PathSuggester(Suggester):
    """Suggests the unambiguous completion of the last word as a path under the shell's cwd."""

    def __init__(self, cwd: Path) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.cwd = cwd

    async def get_suggestion(self, value: str) -> str | None:
        """The completed line, or None."""
        return complete_path(value, self.cwd)


class CommandInput(Input):
    """Input with command history and path completion."""

    BINDINGS = [
        Binding(
            "up", "history_previous", "History", show=False, tooltip="Previous command", id="input.history-up"
        ),
        Binding(
            "down", "history_next", "History", show=False, tooltip="Next command", id="input.history-down"
        ),
        Binding(
            "tab", "complete", "Complete", tooltip="Complete the path under the cursor", id="input.complete"
        ),
    ]

    def __init__(self, cwd: Path, *, id: str | None = None) -> None:
        self.path_suggester = PathSuggester(cwd)
        super().__init__(
            placeholder="type a command (runs sandboxed) · Tab completes paths · ↑↓ history",
            suggester=self.path_suggester,
            id=id,
            select_on_focus=False,
        )
        self.history = History()

    def set_cwd(self, cwd: Path) -> None:
        """Complete paths relative to `cwd` from now on."""
        self.path_suggester.cwd = cwd

    def action_history_previous(self) -> None:
        """Show the previous command."""
        entry = self.history.previous()
        if entry is not None:
            self.value = entry
            self.cursor_position = len(entry)

    def action_history_next(self) -> None:
        """Show the next command (empty past the newest)."""
        self.value = self.history.next()
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        """Complete the last word as a path."""
        completed = complete_path(self.value, self.path_suggester.cwd)
        if completed is not None:
            self.value = completed
            self.cursor_position = len(completed)
