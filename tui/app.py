"""`corral shell`: the Textual app for one project.

Layout: a header (project, trust state, one-line policy summary), the scrolling command log, the input
line, and a footer with the key bindings. Commands run in a thread worker (`_run_command`) that never
touches widgets: it posts `OutputReceived` batches and one `CommandFinished`; `@on` handlers own the
state. Escalation prompts arrive through `DialogAsk` (the Session's `ask` callback) as a modal screen.

Entry point: `run_shell(directory, plain=...) -> int`, imported by `corral shell` (`cli.commands`); the
core never imports this package.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from corral.broker.server import BrokerServer, SessionHost
from corral.decision import PromptRequest
from corral.errors import CorralError, SetupError, Untrusted
from corral.locations import Locations
from corral.session import CommandOutcome, Session
from corral.shell_line import WorkingDirectory, cd_argument, run_typed_line
from corral.trusting import ProjectTrust, open_workspace
from corral.words import Finished, Status, Tone, finished_from
from tui.bridge import DialogAsk
from tui.command_input import CommandInput
from tui.commandlog import CommandEntry, CommandLog
from tui.escalation import EscalationScreen
from tui.inert import inert
from tui.output import OutputReader
from tui.project import header_text
from tui.session_factory import open_session

MAX_HELD_BATCHES = 200
"""Output batches kept while a dialog is open; older ones are counted as dropped lines."""

EXIT_QUIT_AT_TRUST = Untrusted.exit_status
"""`run_shell` status when the person chose quit in the trust dialog."""


class OutputReceived(Message):
    """A batch of a running command's output lines (posted from the reader thread)."""

    def __init__(self, entry: CommandEntry, lines: list[str], dropped: int) -> None:
        super().__init__()
        self.entry = entry
        self.lines = lines
        self.dropped = dropped


class CommandFinished(Message):
    """A command finished (or could not start: `error`)."""

    def __init__(self, entry: CommandEntry, outcome: CommandOutcome | None, error: str | None) -> None:
        super().__init__()
        self.entry = entry
        self.outcome = outcome
        self.error = error


@dataclass
class ShellOptions:
    """How the app behaves; tests shorten the answer arming delay."""

    arm_delay_s: float = 0.4
    show_trust_dialog: bool = True
    serve_agents: bool = True
    """Own the project's live session: agents' `corral run` joins it (see `tui.broker_link`)."""


class CorralShell(App[int]):
    """The agent shell for one project."""

    TITLE = "corral shell"
    CSS_PATH = "shell.tcss"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", tooltip="Leave the shell", id="shell.quit", priority=True),
        Binding(
            "ctrl+c",
            "interrupt",
            "Interrupt",
            tooltip="Send Ctrl-C to the running command",
            id="shell.interrupt",
            priority=True,
        ),
        Binding(
            "f2",
            "trust_review",
            "Trust",
            tooltip="Every project corral knows, with its trust",
            id="shell.trust",
        ),
        Binding("f3", "rules", "Rules", tooltip="This project's stored rules", id="shell.rules"),
        Binding("f4", "stats", "Stats", tooltip="Prompts and decisions from the ledger", id="shell.stats"),
        Binding("ctrl+l", "clear_log", "Clear", tooltip="Clear the command log", id="shell.clear"),
        Binding(
            "f5",
            "background",
            "Background",
            tooltip="What the session's commands left running, with a key to stop each",
            id="shell.background",
            show=False,
        ),
    ]

    def __init__(
        self, project: ProjectTrust, session: Session | None = None, options: ShellOptions | None = None
    ) -> None:
        super().__init__()
        self.project = project
        self.options = options or ShellOptions()
        self.session = session
        self.directory = WorkingDirectory(project.workspace)
        self.running: CommandEntry | None = None
        self.host = SessionHost(lambda: self.session)
        self.broker: BrokerServer | None = None
        self.failure: CorralError | None = None
        self._held_output: list[OutputReceived] = []
        """Output that arrived while a dialog was open: shown after the answer (`_release_output`)."""
        """Why the shell stopped without a Session (a broken config, damaged state), else None."""

    def make_session(self) -> Session:
        """The Session this shell runs commands in, answering prompts through the dialog.

        A config that cannot be used raises (`corral.errors.UsageError`, naming the file and key), as it
        does for `corral run`: the shell never falls back to a policy the person did not write.
        """
        ask = DialogAsk(self, self._escalation_screen)
        return open_session(self.project.workspace, self.project.locations, ask, "textual")

    def _stop(self, error: Exception) -> None:
        """Leave the app because no Session can be opened; `run_shell` raises `failure` at the CLI edge."""
        self.failure = (
            error if isinstance(error, CorralError) else SetupError(f"cannot open the session: {error}")
        )
        self.exit(return_code=self.failure.exit_status)

    def _escalation_screen(self, request: PromptRequest) -> EscalationScreen:
        return EscalationScreen(request, arm_delay_s=self.options.arm_delay_s)

    # --- layout ------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(header_text(self.project, self.session), id="header")
        yield CommandLog(id="log")
        with Horizontal(id="input-row"):
            yield Static(self._prompt_label(), id="prompt")
            yield CommandInput(self.cwd, id="command")
        yield Footer()

    @property
    def cwd(self) -> Path:
        """Where the next command runs (inside the workspace)."""
        return self.directory.cwd

    def _prompt_label(self) -> Text:
        return inert(f"{self.directory.label()} $ ", "bold", one_line=True, limit=60)

    def on_mount(self) -> None:
        if self.session is None:
            try:
                self.session = self.make_session()
            except Exception as error:  # fail closed: no Session means no command runs
                self._stop(error)
                return
        self._refresh_header()
        self.query_one(CommandInput).focus()
        self.set_interval(0.2, self._release_output)
        if self.options.serve_agents:
            from tui.broker_link import serve_shell

            self.broker = serve_shell(self, self.project, self.host)
        if self.options.show_trust_dialog and self.project.needs_question:
            self.open_trust_dialog()

    def _reopen_session(self) -> None:
        """After a trust decision: a new Session that loads (or stops loading) the project config."""
        if self.running is not None:
            return
        old = self.session
        try:
            self.session = self.make_session()
        except Exception as error:  # e.g. the config just trusted cannot be used: stop, like `corral run`
            self.session = None
            self._stop(error)
        finally:
            if old is not None:
                old.close()

    def _refresh_header(self) -> None:
        self.query_one("#header", Static).update(header_text(self.project, self.session))

    # --- trust ------------------------------------------------------------------------------------

    def open_trust_dialog(self) -> None:
        """Ask whether to trust the project (trust / continue untrusted / quit)."""
        from tui.trust_dialog import TrustChoice, TrustScreen

        gate = self.project.gate
        if gate is None:
            return

        def chosen(choice: TrustChoice | None) -> None:
            if choice is TrustChoice.QUIT:
                self.exit(EXIT_QUIT_AT_TRUST)
                return
            if choice is TrustChoice.TRUST:
                try:
                    self.project.grant()
                except Exception as error:
                    self.notify(f"not trusted: {error}", severity="error", markup=False)
                else:
                    self._reopen_session()
            self._refresh_header()

        from corral.trust_report import brokered_lines

        brokered = brokered_lines(gate, self.project.locations.user_config_path)
        self.push_screen(TrustScreen(gate, brokered=brokered), chosen)

    # --- running commands ------------------------------------------------------------------------

    @on(Input.Submitted, "#command")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value
        command_input = self.query_one(CommandInput)
        if not text.strip():
            return
        if self.running is not None:
            self.notify("a command is running (Ctrl-C interrupts it)", severity="warning")
            return
        command_input.history.add(text)
        command_input.value = ""
        if self._builtin(text.strip()):
            return
        entry = CommandEntry(text)
        self.query_one(CommandLog).add_entry(entry)
        self.running = entry
        if self.session is not None:
            self.session.new_turn()  # the person started a new turn
        self._run_command(entry, text, self.cwd)

    def _builtin(self, text: str) -> bool:
        words = text.split()
        if words[0] in ("exit", "quit") and len(words) == 1:
            self.exit(0)
            return True
        if words[0] == "clear" and len(words) == 1:
            self.action_clear_log()
            return True
        where = cd_argument(text)
        if where is not None:
            self._change_directory(where)
            return True
        return False

    def _change_directory(self, where: str) -> None:
        error = self.directory.change(where)
        if error is not None:
            entry = CommandEntry(f"cd {where}")
            self.query_one(CommandLog).add_entry(entry)
            entry.finish(Finished(Status.ERROR, None, 0.0, [(Tone.DENIED, error)]))
            return
        self.query_one(CommandInput).set_cwd(self.cwd)
        self.query_one("#prompt", Static).update(self._prompt_label())

    @work(thread=True, exclusive=True, exit_on_error=False, group="command")
    def _run_command(self, entry: CommandEntry, text: str, cwd: Path) -> None:
        session = self.session
        if session is None:
            self.post_message(CommandFinished(entry, None, "no session"))
            return

        def batch(lines: list[str], dropped: int) -> None:
            self.post_message(OutputReceived(entry, lines, dropped))

        def start_pump(read_end: int) -> OutputReader:
            reader = OutputReader(read_end, batch)
            reader.start()
            return reader

        outcome, error = run_typed_line(session, text, cwd, start_pump)
        self.post_message(CommandFinished(entry, outcome, error))

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        # A worker that died without posting CommandFinished must not leave the shell "running".
        if event.worker.group == "command" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            entry = self.running
            if entry is not None:
                self.running = None
                entry.finish(finished_from(None, f"the command worker stopped: {event.worker.error}"))

    @on(OutputReceived)
    def _output(self, message: OutputReceived) -> None:
        if isinstance(self.screen, ModalScreen):
            # A prompt is open: its output waits (bounded), so nothing changes under the dialog.
            self._held_output.append(message)
            if len(self._held_output) > MAX_HELD_BATCHES:
                oldest = self._held_output.pop(0)
                first = self._held_output[0]
                first.dropped += oldest.dropped + len(oldest.lines)
            return
        self._release_output()
        self._show_output(message)

    def _release_output(self) -> None:
        """Show the output held while a dialog was open, once none is."""
        if not self._held_output or isinstance(self.screen, ModalScreen):
            return
        held, self._held_output = self._held_output, []
        for message in held:
            self._show_output(message)

    def _show_output(self, message: OutputReceived) -> None:
        message.entry.add_output(message.lines, message.dropped)
        log = self.query_one(CommandLog)
        if log.is_vertical_scroll_end or self.running is message.entry:
            log.scroll_end(animate=False)

    @on(CommandFinished)
    def _finished(self, message: CommandFinished) -> None:
        self._release_output()
        message.entry.finish(finished_from(message.outcome, message.error))
        if self.running is message.entry:
            self.running = None
        self.query_one(CommandLog).scroll_end(animate=False)

    def on_unmount(self) -> None:
        if self.broker is not None:
            self.broker.close()
            self.broker = None

    # --- actions ---------------------------------------------------------------------------------

    def action_interrupt(self) -> None:
        """Ctrl-C: interrupt the running command, or clear the input line."""
        if self.running is not None and self.session is not None:
            self.session.interrupt(signal.SIGINT)
            return
        self.query_one(CommandInput).value = ""

    def action_clear_log(self) -> None:
        """Clear the command log."""
        self.query_one(CommandLog).clear()

    def _open_view(self, view: Screen[None], callback: Callable[[None], None] | None = None) -> None:
        """Show one of the F2/F3/F4 views: it replaces a view already open (views never stack); the
        same key again leaves it as it is. Dialogs (escalation, trust) are never replaced."""
        current = self.screen
        if type(current) is type(view):
            return
        if getattr(current, "IS_VIEW", False):
            current.dismiss(None)
        self.push_screen(view, callback)

    def action_trust_review(self) -> None:
        """Open the trust review screen."""
        from tui.review import TrustReviewScreen

        self._open_view(TrustReviewScreen(self.project.locations), lambda _: self._after_review())

    def _after_review(self) -> None:
        before = self.project.state
        self.project.refresh(with_history=False)
        if self.project.state is not before:
            self._reopen_session()
        self._refresh_header()

    def action_rules(self) -> None:
        """Open the rules screen for this project."""
        from tui.rules_screen import RulesScreen

        self._open_view(RulesScreen(self.project.locations, self.project.workspace))

    def action_background(self) -> None:
        """Open the background screen: the session's kept processes, stoppable."""
        from tui.background_screen import BackgroundScreen

        self._open_view(BackgroundScreen(lambda: self.session))

    def action_stats(self) -> None:
        """Open the stats screen."""
        from tui.stats_screen import StatsScreen

        self._open_view(StatsScreen(self.project.locations, self.project.workspace))

    async def action_quit(self) -> None:
        """Leave the shell (interrupting a running command)."""
        if self.running is not None and self.session is not None:
            self.session.interrupt(signal.SIGTERM)
        self.exit(0)


def run_shell(directory: str | None, *, plain: bool = False) -> int:
    """`corral shell [DIR] [--plain]`: the Textual app, or the prompt-toolkit line mode with --plain.
    A directory that cannot be a workspace raises `corral.errors.UsageError` (one line at the CLI edge)."""
    if plain:
        from tui.line.shell import run_plain

        return int(run_plain(directory))
    project = open_workspace(directory, Locations.default())
    app = CorralShell(project)
    app.session = app.make_session()  # a broken config stops here, before the screen is taken over
    try:
        status = app.run()
    finally:
        if app.session is not None:
            app.session.close()
    if app.failure is not None:
        raise app.failure
    return int(status if status is not None else app.return_code or 0)
