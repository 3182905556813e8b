"""`corral shell --plain`: the line-mode shell, for terminals where a full-screen app is unwelcome.

The same flows as the Textual app, inline: a trust question on opening an untrusted or changed project,
a prompt-toolkit input line with file history and path completion, each command run in the sandbox
with its output passed through `corral.termsafe.TerminalFilter` (colours kept, every other control
made visible), escalation prompts from `tui.line.LineAsk`, and a status line after each command.
Built-ins: `cd DIR` (inside the workspace), `rules`, `trust`, `stats`, `exit`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from corral.background import background_lines, stop_argument
from corral.broker.execution import outcome_messages
from corral.broker.server import SessionHost
from corral.errors import Untrusted
from corral.locations import Locations
from corral.piping import filtered_pump
from corral.session import CommandOutcome, Session
from corral.shell_line import WorkingDirectory, cd_argument, run_typed_line
from corral.termsafe import OutputHold
from corral.trusting import ProjectTrust, open_workspace
from corral.words import Finished, Status, Tone, finished_from, format_duration
from tui.completion import path_completions
from tui.inert import plain
from tui.line.ask import LineAsk
from tui.line.broker_link import ASK_PENDING, PromptGate, serve_line_shell
from tui.session_factory import open_session

if TYPE_CHECKING:
    from prompt_toolkit.completion import CompleteEvent, Completer
    from prompt_toolkit.document import Document
else:  # prompt-toolkit is imported only when the line mode runs
    Completer = object

EXIT_QUIT_AT_TRUST = Untrusted.exit_status
_CHIP_STYLE = {
    Status.SANDBOXED: "bg:ansigreen fg:ansiblack bold",
    Status.ALLOWED: "bg:ansiyellow fg:ansiblack bold",
    Status.DENIED: "bg:ansired fg:ansiwhite bold",
    Status.FAILED: "bg:ansired fg:ansiwhite",
    Status.ERROR: "bg:ansimagenta fg:ansiwhite bold",
    Status.RUNNING: "reverse",
}
_TONE_STYLE = {
    Tone.ALLOWED: "fg:ansigreen",
    Tone.DENIED: "fg:ansired bold",
    Tone.NOTICE: "fg:ansiyellow",
    Tone.QUIET: "fg:ansigray",
}


def _print(fragments: Iterable[tuple[str, str]]) -> None:
    from prompt_toolkit import print_formatted_text
    from prompt_toolkit.formatted_text import FormattedText

    print_formatted_text(FormattedText(list(fragments)))


def status_fragments(command: str, finished: Finished) -> list[tuple[str, str]]:
    """The status line after a command, then its detail lines (all untrusted text made inert)."""
    label = finished.label
    fragments = [
        (_CHIP_STYLE[finished.status], f" {label} "),
        ("", " "),
        ("fg:ansigray", format_duration(finished.duration_ms)),
        ("", "  "),
        ("bold", plain(command, one_line=True, limit=200)),
        ("", "\n"),
    ]
    for tone, line in finished.details:
        fragments.append((_TONE_STYLE[tone], "  " + plain(line, one_line=True, limit=500) + "\n"))
    return fragments


def _path_completer(shell: PlainShell) -> Completer:
    """prompt-toolkit completion of the word before the cursor as a path under the shell's cwd."""
    from prompt_toolkit.completion import Completion

    class PathWordCompleter(Completer):
        def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
            word = document.get_word_before_cursor(WORD=True)
            for candidate in path_completions(word, shell.cwd)[:200]:
                yield Completion(candidate, start_position=-len(word))

    return PathWordCompleter()


class PlainShell:
    """The line-mode loop for one project."""

    def __init__(
        self,
        project: ProjectTrust,
        session: Session,
        hold: OutputHold | None = None,
        gate: PromptGate | None = None,
    ) -> None:
        self.project = project
        self.session = session
        self.directory = WorkingDirectory(project.workspace)
        self.hold = hold or OutputHold()
        """Holds the command's output back while a prompt is on screen (shared with the `ask`)."""
        self.gate = gate
        self.host = SessionHost(lambda: self.session)

    @property
    def cwd(self) -> Path:
        """Where the next command runs (inside the workspace)."""
        return self.directory.cwd

    def prompt_text(self) -> str:
        """`./sub $ ` relative to the workspace."""
        return f"corral {plain(self.directory.label(), one_line=True, limit=60)} $ "

    def run(self) -> int:
        """Read and run commands until `exit` or end of input."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        self.project.locations.ensure(self.project.locations.data_dir)
        history = FileHistory(str(self.project.locations.data_dir / "shell_history"))
        prompt: PromptSession[str] = PromptSession(
            history=history, completer=_path_completer(self), complete_while_typing=False
        )
        typed = ""
        while True:
            try:
                with self.gate.prompting(prompt.app) if self.gate else contextlib.nullcontext():
                    line = prompt.prompt(self.prompt_text(), default=typed)
                typed = ""
            except KeyboardInterrupt:
                continue
            except EOFError:
                return 0
            if line is ASK_PENDING:  # an agent's command is waiting for an answer (asked above)
                typed = prompt.app.current_buffer.text
                continue
            text = line.strip()
            if not text:
                continue
            if text in ("exit", "quit"):
                return 0
            if self._builtin(text):
                continue
            self.session.new_turn()  # the person started a new turn
            outcome, error = self.run_command(line)
            _print(status_fragments(line, finished_from(outcome, error)))

    def _builtin(self, text: str) -> bool:
        where = cd_argument(text)
        if where is not None:
            error = self.directory.change(where)
            if error is not None:
                print(error, file=sys.stderr)
            return True
        if text == "rules":
            self._print_rules()
            return True
        if text == "trust":
            self._print_trust()
            return True
        if text == "stats":
            self._print_stats()
            return True
        if text == "jobs":
            for line in background_lines(self.session.background()):
                print(line)
            return True
        job = stop_argument(text)
        if job is not None:
            self._stop_job(job)
            return True
        return False

    def _stop_job(self, job: int) -> None:
        """`stop N`: stop a background job; what it wrote since its command ended is decided now."""
        with self.host.lock:
            outcome = self.session.stop_background(job)
        if outcome is None:
            print(f"no background job {job} (see: jobs)", file=sys.stderr)
            return
        print(f"stopped [{job}]")
        for line in outcome_messages(self.project.workspace, outcome):
            print(plain(line, one_line=True), file=sys.stderr)

    def run_command(self, text: str) -> tuple[CommandOutcome | None, str | None]:
        """Run one command; its output goes to stdout through the terminal filter."""

        pump = filtered_pump(sys.stdout.fileno(), self.hold)
        if self.gate is not None:
            self.gate.acquire(self.host.lock)
        else:
            self.host.lock.acquire()
        try:  # one command at a time in the Session, typed or from an agent
            return run_typed_line(self.session, text, self.cwd, pump, interrupt_on_sigint=True)
        finally:
            self.host.lock.release()

    def _print_rules(self) -> None:
        from corral.rules import RuleStore

        store = RuleStore.open(self.project.locations.rules_path)
        try:
            rules = store.list(self.project.workspace)
        finally:
            store.close()
        if not rules:
            print("no rules for this project")
        for rule in rules:
            flag = "  (sensitive)" if rule.sensitive else ""
            print(f"{rule.id:>5}  {rule.kind.value:<12} {plain(rule.target, one_line=True)}{flag}")
        print("revoke one with: corral rules revoke ID")

    def _print_trust(self) -> None:
        from corral.trusting import known_projects

        for row in known_projects(self.project.locations):
            print(
                f"{row.decision:<8} {row.fingerprint_state:<9} rules {row.rules:<3} {plain(row.root, one_line=True)}"
            )

    def _print_stats(self) -> None:
        from corral.fatigue.stats import compute_stats, render_text
        from corral.rules import canonical_project

        report = compute_stats(
            self.project.locations.ledger_path, project=canonical_project(self.project.workspace)
        )
        print(render_text(report, max_sessions=5), end="")


def ask_trust(project: ProjectTrust, chooser: LineAsk | None = None) -> str:
    """The trust question on the terminal: `trust`, `untrusted` or `quit` (anything else: untrusted)."""
    from corral.trust_report import brokered_lines, report_text

    gate = project.gate
    if gate is None:
        return "untrusted"
    print(f"\n━━ corral: project {plain(str(gate.root), one_line=True)} is {gate.state.value} ━━")
    print("Until you trust it, corral reads none of the project's configuration and runs none of its hooks:")
    print("commands run under your own policy only. Trusting loads what is listed here.\n")
    print(report_text(gate, brokered_lines(gate, project.locations.user_config_path)))
    ask = chooser or LineAsk()
    options = [
        ("untrusted", "continue untrusted (default)"),
        ("trust", "trust this content"),
        ("quit", "quit"),
    ]
    return ask.choose_once("Trust this project?", options, "untrusted") or "untrusted"


def run_plain(directory: str | None) -> int:
    """`corral shell --plain [DIR]`. A directory that cannot be a workspace raises
    `corral.errors.UsageError` (one line at the CLI edge)."""
    locations = Locations.default()
    project = open_workspace(directory, locations)
    workspace = project.workspace
    if project.needs_question:
        choice = ask_trust(project)
        if choice == "quit":
            return EXIT_QUIT_AT_TRUST
        if choice == "trust":
            try:
                project.grant()
                print("trusted.")
            except Exception as error:
                print(f"corral: not trusted: {plain(str(error), one_line=True)}", file=sys.stderr)
    # A config that cannot be used raises `corral.errors.UsageError` (one line at the CLI edge, exit 2),
    # exactly as for `corral run`: no fallback policy.
    hold = OutputHold()  # the command's output waits while a prompt is on screen
    gate = PromptGate(hold.around(LineAsk()))
    session = open_session(workspace, locations, gate, "line")
    print(
        f"corral shell (line mode) in {plain(str(workspace), one_line=True)} · trust: {project.state.value}"
    )
    print("commands run sandboxed; built-ins: cd, rules, trust, stats, jobs, stop N, exit")
    shell = PlainShell(project, session, hold, gate)
    broker = serve_line_shell(workspace, locations, shell.host)
    try:
        with _patched_stdout():
            return shell.run()
    finally:
        if broker is not None:
            broker.close()
        with shell.host.lock:
            for ended in session.end_background():
                for line in outcome_messages(workspace, ended):
                    print(plain(line, one_line=True), file=sys.stderr)
            session.close()


@contextlib.contextmanager
def _patched_stdout() -> Iterator[None]:
    """Lines printed by other threads (agent commands) appear above the prompt, not inside it."""
    from prompt_toolkit.patch_stdout import patch_stdout

    with patch_stdout(raw=True):
        yield
