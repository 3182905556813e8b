"""The stats screen: prompts per session over time (a bar chart with labelled axes), approval rate,
median decision time and the reduction against classic approval, from `corral.fatigue.stats` over the
ledger.

`a` switches between this project and every project.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from corral.fatigue.stats import FatigueStats, StatsReport, compute_stats
from corral.locations import Locations
from corral.rules import canonical_project
from tui.inert import inert
from tui.tables import shorten_middle
from tui.views import ViewScreen

MAX_SESSIONS_CHARTED = 60
CHART_ROWS = 5
_BAR_STYLE = "on #2f81f7"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def bar_chart(values: list[int], rows: int = CHART_ROWS) -> Text:
    """Prompts per session as vertical bars: a y axis labelled with its scale, an x axis labelled
    oldest -> newest. Bars are coloured cells (background), not block glyphs, so no stripes show
    between rows."""
    text = Text(end="", no_wrap=True, overflow="crop")
    top = max(values, default=0)
    width = 2 if len(values) <= 30 else 1
    label_width = max(len(str(top)), 1) + 1
    text.append("prompts\n", style="dim")
    for row in range(rows, 0, -1):
        threshold = top * (row - 0.5) / rows
        label = str(top) if row == rows else ("0" if row == 1 and top == 0 else "")
        text.append(f"{label:>{label_width}}┤", style="dim")
        for value in values:
            filled = value > 0 and (row == 1 or value >= threshold)
            text.append(" " * width, style=_BAR_STYLE if filled else "")
        text.append("\n")
    span = max(len(values) * width, 1)
    text.append(f"{'0':>{label_width}}└" + "─" * span + "\n", style="dim")
    sessions = _plural(len(values), "session")
    axis = f"{sessions}, oldest → newest"
    text.append(" " * (label_width + 1) + axis, style="dim")
    return text


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def _latency(value_ms: float | None) -> str:
    if value_ms is None:
        return "—"
    return f"{value_ms / 1000:.1f} s" if value_ms >= 1000 else f"{value_ms:.0f} ms"


def summary_text(stats: FatigueStats, sessions: list[FatigueStats], width: int = 10_000) -> Text:
    """The figures under the chart in `width` cells (a session's project path is shortened in the
    middle; any other line too long for the screen ends in an ellipsis)."""
    text = Text(end="", no_wrap=True, overflow="ellipsis")
    rows = [
        ("commands", f"{stats.commands:,}"),
        (
            "prompts (commands where you were asked)",
            f"{stats.prompts:,}  ({stats.prompts_per_100:.1f} per 100 commands)",
        ),
        ("approval rate (your answers that allowed)", _pct(stats.approval_rate)),
        ("median decision time", _latency(stats.median_latency_ms)),
        (
            "classic approval would have asked",
            f"{stats.classic_prompts:,}  ({stats.classic_per_100:.1f} per 100 commands)"
            if stats.classic_known
            else "—",
        ),
        (
            "reduction against classic",
            "—" if stats.reduction_pct is None else f"{stats.reduction_pct:.0f} % fewer prompts",
        ),
    ]
    for label, value in rows:
        text.append(f"{label:<44}", style="dim")
        text.append(value + "\n", style="bold")
    if stats.asked_by_kind:
        text.append(f"{'asked, by kind':<44}", style="dim")
        text.append(
            ", ".join(f"{kind} {count}" for kind, count in sorted(stats.asked_by_kind.items())) + "\n"
        )
    if sessions:
        text.append("\nRecent sessions\n", style="bold")
        for session in sessions[-8:]:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(session.started_at or 0))
            text.append(f"  #{session.session_id or 0:<5} {started}  ", style="dim")
            text.append(
                f"{_plural(session.commands, 'command'):>13}  {_plural(session.prompts, 'prompt'):>11}  "
            )
            used = 2 + 7 + 16 + 2 + 13 + 2 + 11 + 2  # id, start, commands, prompts and their gaps
            project = inert(session.project or "", "dim", one_line=True, limit=300)
            text.append_text(shorten_middle(project, max(width - used, 12)))
            text.append("\n")
    return text


class StatsScreen(ViewScreen):
    """Prompts and decisions from the ledger."""

    HELP_TITLE = "stats"

    BINDINGS = [
        Binding("escape", "close", "Back", tooltip="Back to the shell", id="stats.back"),
        Binding("a", "toggle_all", "All projects", tooltip="Every project or this one", id="stats.all"),
    ]

    def __init__(self, locations: Locations, project: Path) -> None:
        super().__init__()
        self.locations = locations
        self.project = project
        self.all_projects = False
        self._shown: tuple[FatigueStats, list[FatigueStats]] | None = None
        """The figures last read from the ledger (a resize shows them again without reading)."""

    def compose(self) -> ComposeResult:
        yield Static(id="screen-title")
        yield Static(id="stats-chart")
        yield VerticalScroll(Static(id="stats-figures"), id="stats-body")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def _report(self) -> StatsReport:
        project = None if self.all_projects else canonical_project(self.project)
        return compute_stats(self.locations.ledger_path, project=project)

    def reload(self) -> None:
        """Read the ledger again."""
        title = Text(" Stats ", style="bold black on cyan", end="")
        title.append(" ")
        if self.all_projects:
            title.append("every project", style="bold")
        else:
            title.append_text(inert(str(self.project), "bold", one_line=True, limit=120))
        self.query_one("#screen-title", Static).update(title)
        try:
            report = self._report()
        except Exception as error:
            self.query_one("#stats-figures", Static).update(
                inert(f"the ledger could not be read: {error}", "bold red", one_line=True)
            )
            return
        sessions = sorted(report.sessions, key=lambda s: (s.started_at or 0, s.session_id or 0))
        chart = [s.prompts for s in sessions[-MAX_SESSIONS_CHARTED:]]
        self.query_one("#stats-chart", Static).update(bar_chart(chart))
        self._shown = (report.total, sessions)
        self._show_figures()

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._show_figures)

    def _show_figures(self) -> None:
        if self._shown is None:
            return
        body = self.query_one("#stats-body", VerticalScroll)
        width = body.content_region.width - body.styles.scrollbar_size_vertical
        self.query_one("#stats-figures", Static).update(summary_text(*self._shown, width=width))

    def action_close(self) -> None:
        """Back to the shell."""
        self.dismiss(None)

    def action_toggle_all(self) -> None:
        """Switch between this project and every project."""
        self.all_projects = not self.all_projects
        self.reload()
