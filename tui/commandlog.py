"""The scrolling log of commands: one entry per command with a status chip, duration and its output.

Everything shown is built with `tui.inert`, so a command's text and output cannot carry markup or
terminal control into the screen. Memory is bounded twice: each entry keeps its last `MAX_LINES` lines
(`BoundedLines`), and the log keeps its last `MAX_ENTRIES` entries.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from corral.words import Finished, Status, Tone, format_duration
from tui.inert import inert
from tui.output import MAX_LINES, BoundedLines

MAX_ENTRIES = 100
"""Commands kept in the log (older ones are removed from the screen and from memory)."""


_STATUS_STYLE = {
    Status.RUNNING: "bold black on grey70",
    Status.SANDBOXED: "bold black on green",
    Status.ALLOWED: "bold black on dark_orange",
    Status.DENIED: "bold white on red",
    Status.FAILED: "bold white on dark_red",
    Status.ERROR: "bold white on magenta",
}
TONE_STYLE = {Tone.ALLOWED: "green", Tone.DENIED: "bold red", Tone.NOTICE: "yellow", Tone.QUIET: "dim"}
"""How the log colours a detail line of each tone."""


class CommandEntry(Vertical):
    """One command in the log."""

    DEFAULT_CSS = """
    CommandEntry { height: auto; margin: 0 0 1 0; }
    CommandEntry > .entry-header { height: auto; }
    CommandEntry > .entry-output { height: auto; padding: 0 0 0 2; color: $text; }
    CommandEntry > .entry-details { height: auto; padding: 0 0 0 2; }
    """

    def __init__(self, command: str, cwd_label: str = "", max_lines: int = MAX_LINES) -> None:
        super().__init__()
        self.command = command
        self.cwd_label = cwd_label
        self.output = BoundedLines(max_lines)
        self.finished: Finished | None = None
        self._header = Static(self._header_text(), classes="entry-header")
        self._body = Static("", classes="entry-output")
        self._details = Static("", classes="entry-details")
        self._body.display = False
        self._details.display = False

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._header
        yield self._body
        yield self._details

    def _header_text(self) -> Text:
        status = self.finished.status if self.finished else Status.RUNNING
        label = self.finished.label if self.finished is not None else status.value
        style = _STATUS_STYLE[status]
        header = Text(end="")
        header.append(f" {label} ", style=style)
        header.append(" ")
        if self.finished is not None:
            header.append(format_duration(self.finished.duration_ms), style="dim")
            header.append(" ")
        header.append("$ ", style="bold")
        header.append_text(inert(self.command, "bold", one_line=True))
        return header

    def _output_text(self) -> Text:
        text = Text(end="")
        if self.output.dropped:
            text.append(f"⟪{self.output.dropped:,} earlier lines not kept⟫\n", style="italic dim")
        text.append_text(inert("\n".join(self.output.lines)))
        return text

    def add_output(self, lines: list[str], dropped: int) -> None:
        """Append a batch of output lines (already bounded by the reader)."""
        self.output.extend(lines, dropped)
        self._body.display = True
        self._body.update(self._output_text())

    def finish(self, finished: Finished) -> None:
        """Set the chip, duration and detail lines."""
        self.finished = finished
        self._header.update(self._header_text())
        if finished.details:
            details = Text(end="")
            for index, (tone, line) in enumerate(finished.details):
                if index:
                    details.append("\n")
                details.append_text(inert(line, TONE_STYLE[tone], one_line=True))
            self._details.update(details)
            self._details.display = True


class CommandLog(VerticalScroll):
    """The scrolling list of `CommandEntry`, newest last, at most `MAX_ENTRIES`."""

    DEFAULT_CSS = """
    CommandLog { height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, max_entries: int = MAX_ENTRIES, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_entries = max_entries
        self.can_focus = False

    def add_entry(self, entry: CommandEntry) -> CommandEntry:
        """Mount `entry` at the end, dropping the oldest entries past the bound."""
        entries = list(self.query(CommandEntry))
        for old in entries[: max(0, len(entries) + 1 - self.max_entries)]:
            old.remove()
        self.mount(entry)
        self.scroll_end(animate=False)
        return entry

    def clear(self) -> None:
        """Remove every entry."""
        self.remove_children(CommandEntry)
