"""The background screen (F5): what the session's commands left running, with a key to stop one.

Each row is one kept sandbox (`corral.background`): its command, its processes and the ports they
listen on in the session's network. `s` stops the selected one (every process of it); what it wrote
since its command ended is then decided like a command's writes, and the lines about it are shown
below the table. Everything shown came from the sandbox and is drawn inert.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from corral.background import BackgroundInfo
from corral.broker.execution import outcome_messages
from corral.session import Session
from tui.inert import inert
from tui.tables import FitTable


class BackgroundScreen(Screen[None]):
    """The session's background jobs."""

    IS_VIEW = True
    """One of the function-key views: opening another replaces it (`CorralShell._open_view`)."""

    BINDINGS = [
        Binding("escape", "close", "Back", tooltip="Back to the shell", id="background.back"),
        Binding(
            "s", "stop", "Stop", tooltip="Stop the selected job (all its processes)", id="background.stop"
        ),
        Binding("r", "reload", "Refresh", tooltip="Read the jobs again", id="background.reload"),
    ]

    def __init__(self, session: Callable[[], Session | None]) -> None:
        super().__init__()
        self._session = session
        self.jobs: list[BackgroundInfo] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(" Background ", style="bold black on cyan"), id="screen-title")
        yield FitTable(id="background", cursor_type="row", zebra_stripes=True)
        yield Static("", id="background-note")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#background", DataTable).focus()

    def reload(self, note: Text | None = None) -> None:
        session = self._session()
        self.jobs = session.background() if session is not None else []
        table = self.query_one("#background", FitTable)
        table.clear(columns=True)
        table.flexible = frozenset({2})
        table.add_columns("job", "state", "command", "processes", "ports", "since")
        for job in self.jobs:
            table.add_row(
                Text(str(job.id), justify="right"),
                Text("running" if job.running else "ended", style="bold" if job.running else "dim"),
                inert(job.command, one_line=True, limit=160),
                inert(" ".join(str(p.pid) for p in job.processes[:6]) or "-", one_line=True),
                Text(", ".join(str(p) for p in job.ports) or "-"),
                Text(time.strftime("%H:%M:%S", time.localtime(job.started_at))),
            )
        table.fit()
        if note is None:
            note = Text(
                "nothing of this session runs in the background"
                if not self.jobs
                else "s: stop the selected job",
                style="dim",
            )
        self.query_one("#background-note", Static).update(note)

    def action_reload(self) -> None:
        self.reload()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_stop(self) -> None:
        if not self.jobs:
            return
        table = self.query_one("#background", DataTable)
        job = self.jobs[min(table.cursor_row, len(self.jobs) - 1)]
        self._stop(job.id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="background")
    def _stop(self, job_id: int) -> None:
        session = self._session()
        outcome = session.stop_background(job_id) if session is not None else None
        note = Text(f"stopped job {job_id}" if outcome is not None else f"job {job_id} is gone", style="bold")
        if outcome is not None and session is not None:
            for line in outcome_messages(session.workspace, outcome):
                note.append("\n")
                note.append_text(inert(line, one_line=True, limit=200))
        self.app.call_from_thread(self.reload, note)
