"""The line-mode prompt: `make_ask() -> AskCallback` for `corral run` on a terminal and `corral shell
--plain`.

It writes the prompt to the controlling terminal (`/dev/tty`), never to stdout, and reads the answer
from it with a prompt-toolkit choice list. The command comes first and in full (A03), then every
violation with its why-it-matters line; all of it passes through `tui.inert.plain`, so escape
sequences, bidi and zero-width characters are shown as visible escapes. `c` shows the captured change
set, `v` every violation behind a summary. The default (Enter), Escape, any key without a meaning here,
Ctrl-C, Ctrl-D, end of input, no terminal, a timeout and every error mean deny: an allow takes a
deliberate key (`o`, `s`, `p`, or moving to it and pressing Enter).

When the prompt opens, input the terminal holds but nobody read yet is discarded (`tcflush`), keys
typed during a short arming delay are discarded too, so keys typed ahead for the command line can
never answer it. The caller holds the command's output back meanwhile (`corral.termsafe.OutputHold`).
A project rule on a sensitive target needs a second choice whose default is "go back".

Imports are lazy: `corral run` loads this module only when it is interactive, and prompt-toolkit only
when a prompt is actually shown.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO, TypeVar

from corral.decision import DENY, Decision, PromptAnswer, PromptRequest, Scope
from corral.grouping import deleted_paths, is_deletion
from corral.termsafe import ARMING_DELAY, arm_prompt
from tui.portlabel import one_port_label

if TYPE_CHECKING:
    from boundary.violations import Violation
    from corral.decision import AskCallback

TTY_PATH = "/dev/tty"
_T = TypeVar("_T")
_KIND_WORDS = {
    "fs-write": "write outside the workspace",
    "fs-protected": "write to a protected path",
    "fs-read": "credential read",
    "net": "connection",
}
_DELETE_WORDS = {"fs-write": "deletion outside the workspace", "fs-protected": "deletion of a protected path"}


def _kind_words(violation: Violation) -> str:
    if is_deletion(violation) and violation.kind.value in _DELETE_WORDS:
        count = deleted_paths(violation)
        return f"{_DELETE_WORDS[violation.kind.value]} ({count} path{'' if count == 1 else 's'})"
    return _KIND_WORDS.get(violation.kind.value, violation.kind.value)


def render_request(request: PromptRequest, *, details: bool = False) -> str:
    """The prompt text (plain, inert): command first, then the violations with their reasons."""
    from tui.inert import plain

    lines = ["", "━━ corral: this command crossed the sandbox boundary ━━", "command (exactly as run):"]
    lines.extend("  " + line for line in plain(request.command).split("\n"))
    if request.description:
        lines.append("the agent says (unverified, not what runs):")
        lines.extend("  " + line for line in plain(request.description).split("\n"))
    lines.append(f"project: {plain(str(request.project), one_line=True)}")
    lines.append(f"{request.summary}:")
    show_all = details or len(request.groups) == len(request.violations)
    if show_all:
        for violation in request.violations:
            mark = "!" if violation in request.sensitive else " "
            lines.append(
                f" {mark} {_kind_words(violation)}"
                f" ({plain(violation.operation, one_line=True, limit=20)}):"
                f" {plain(violation.target, one_line=True, limit=300)}"
            )
            lines.append(
                f"      {plain(request.reasons.get(violation.target, ''), one_line=True, limit=300)}"
            )
    else:
        for group in request.groups:
            mark = "!" if any(v in request.sensitive for v in group.violations) else " "
            count = f" ({group.count})" if group.count > 1 else ""
            lines.append(
                f" {mark} {_KIND_WORDS.get(group.kind.value, group.kind.value)}:"
                f" {plain(group.pattern, one_line=True, limit=300)}{count}"
            )
            reason = request.reasons.get(group.violations[0].target, "")
            lines.append(f"      {plain(reason, one_line=True, limit=300)}")
        lines.append("  (v: every violation)")
    if request.sensitive:
        lines.append(f" ! {len(request.sensitive)} sensitive: a project rule needs a second confirmation")
    return "\n".join(lines) + "\n"


def render_changes(request: PromptRequest) -> str:
    """The captured change set as plain, inert text."""
    from tui.changes import change_set, describe, diff_for, shows_target_line
    from tui.inert import plain

    pairs = change_set(request.violations)
    if not pairs:
        return "no captured file changes (reads and connections only)\n"
    lines: list[str] = []
    for violation, changes in pairs:
        if shows_target_line(violation, changes):
            lines.append(plain(violation.target, one_line=True))
        for change in changes:
            row = describe(change)
            note = f"  {plain(row.note, one_line=True)}" if row.note else ""
            lines.append(
                f"  {row.op:<8}{row.size:>10}  {row.mode:>4}  {plain(row.path, one_line=True)}{note}"
            )
        for change in changes:
            lines.extend("    " + plain(line, one_line=True) for line in diff_for(change))
    return "\n".join(lines) + "\n"


Chooser = Callable[[str, list[tuple[str, str]], str], str | None]
"""(question, [(value, label)], default) -> chosen value, or None for deny/cancel."""


class LineAsk:
    """An `AskCallback` that asks on the controlling terminal. Every failure is a denial."""

    def __init__(
        self, tty_path: str = TTY_PATH, chooser: Chooser | None = None, *, arm_delay_s: float = ARMING_DELAY
    ) -> None:
        self.tty_path = tty_path
        self.arm_delay_s = arm_delay_s
        self._chooser = chooser

    def __call__(self, request: PromptRequest) -> PromptAnswer:
        try:
            return self._with_tty(lambda tty, tty_in: self._ask(request, tty, tty_in))
        except Exception:
            return DENY  # Fail closed: no terminal, a broken prompt or an interrupt is deny.

    def choose_once(self, question: str, options: list[tuple[str, str]], default: str) -> str | None:
        """One choice list on the terminal (the trust question); None on any failure or refusal."""

        def ask(tty: TextIO, tty_in: TextIO) -> str | None:
            choose = self._chooser or _prompt_toolkit_chooser(tty, tty_in, None)
            return choose(question, options, default)

        try:
            return self._with_tty(ask)
        except Exception:
            return None

    def _with_tty(self, body: Callable[[TextIO, TextIO], _T]) -> _T:
        fd = os.open(self.tty_path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            with (
                open(fd, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False) as tty,
                open(fd, encoding="utf-8", errors="replace", closefd=False) as tty_in,
            ):
                return body(tty, tty_in)
        finally:
            os.close(fd)

    def _ask(self, request: PromptRequest, tty: TextIO, tty_in: TextIO | None = None) -> PromptAnswer:
        choose = self._chooser or _prompt_toolkit_chooser(tty, tty_in or tty, request)
        tty.write(render_request(request))
        tty.flush()
        self._arm(tty)
        options = [
            ("deny", "deny (default)"),
            ("once", "allow once"),
            ("session", "allow for this session"),
            ("project", "allow for this project (stores a rule)"),
        ]
        ports = one_port_label(request)
        if ports:
            options.append(("port", f"allow for this project, {ports} only"))
        if any(violation.changes for violation in request.violations):
            options.append(("changes", "show the captured changes"))
        if len(request.groups) != len(request.violations):
            options.append(("details", "show every violation"))
        while not request.cancelled.is_set():
            picked = choose("Allow?", options, "deny")
            if picked in (None, "deny"):
                return DENY
            if picked == "changes":
                tty.write(render_changes(request))
                continue
            if picked == "details":
                tty.write(render_request(request, details=True))
                continue
            if picked == "port":
                return Decision(Scope.PROJECT, one_port=True)
            scope = Scope(picked)
            if scope is Scope.PROJECT and request.sensitive:
                tty.write(_sensitive_warning(request))
                confirm = choose(
                    "Store project rules for these sensitive targets?",
                    [("back", "no, go back (default)"), ("confirm", "yes, store the rules")],
                    "back",
                )
                if confirm != "confirm":
                    continue
                return Decision(scope, confirmed_sensitive=True)
            return Decision(scope)
        return DENY

    def _arm(self, tty: TextIO) -> None:
        """Discard keys typed before the prompt and during the arming delay (they cannot answer it)."""
        try:
            fd = tty.fileno()
        except (OSError, ValueError):
            return  # not a terminal (an injected chooser in tests): nothing is queued
        arm_prompt(fd, self.arm_delay_s)


def _sensitive_warning(request: PromptRequest) -> str:
    from tui.inert import plain

    lines = ["sensitive targets (a project rule stays until you revoke it):"]
    for violation in sorted(request.sensitive, key=lambda v: v.target):
        lines.append(f" ! {plain(violation.target, one_line=True)}")
        lines.append(f"      {plain(request.reasons.get(violation.target, ''), one_line=True)}")
    return "\n".join(lines) + "\n"


_LETTERS = {
    "deny": "d",
    "once": "o",
    "session": "s",
    "project": "p",
    "port": "1",
    "changes": "c",
    "details": "v",
    "back": "n",
    "confirm": "y",
    "trust": "t",
    "untrusted": "u",
    "quit": "q",
}


def _prompt_toolkit_chooser(tty: TextIO, tty_in: TextIO, request: PromptRequest | None) -> Chooser:
    """A choice list on `tty`: each option's letter picks it, Up/Down move the mark and Enter picks the
    marked option (the default first). Escape, Ctrl-C, Ctrl-D, a paste and every other key return None,
    so only a deliberate key answers; nothing is chosen by typing ahead a word that starts with "a"."""

    def choose(question: str, options: list[tuple[str, str]], default: str) -> str | None:
        import asyncio

        from prompt_toolkit.application import Application, create_app_session
        from prompt_toolkit.formatted_text import StyleAndTextTuples
        from prompt_toolkit.input import create_input
        from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
        from prompt_toolkit.layout import FormattedTextControl, HSplit, Layout, Window
        from prompt_toolkit.output import create_output

        values = [value for value, _label in options]
        marked = [values.index(default) if default in values else 0]

        def lines() -> StyleAndTextTuples:
            out: StyleAndTextTuples = [("bold", f"{question}\n")]
            for index, (value, label) in enumerate(options):
                here = index == marked[0]
                out.append(
                    ("reverse bold" if here else "", f"{'>' if here else ' '} {label} [{_LETTERS[value]}]")
                )
                out.append(("", "\n"))
            out.append(("fg:ansigray", "letter or Enter on the marked line; Escape or any other key denies"))
            return out

        bindings = KeyBindings()
        for value in values:

            def pick(event: KeyPressEvent, value: str = value) -> None:
                event.app.exit(result=value)

            bindings.add(_LETTERS[value])(pick)

        @bindings.add("up")
        def up(event: KeyPressEvent) -> None:
            marked[0] = max(0, marked[0] - 1)

        @bindings.add("down")
        def down(event: KeyPressEvent) -> None:
            marked[0] = min(len(values) - 1, marked[0] + 1)

        @bindings.add("enter")
        def enter(event: KeyPressEvent) -> None:
            event.app.exit(result=values[marked[0]])

        @bindings.add("escape", eager=True)
        @bindings.add("c-c")
        @bindings.add("c-d")
        @bindings.add("<sigint>")
        @bindings.add("<any>")  # any key with no meaning here: a deny, never a silent no-op
        def refuse(event: KeyPressEvent) -> None:
            event.app.exit(result=None)

        def build() -> Application[str | None]:
            control = FormattedTextControl(lines, focusable=True, show_cursor=False)
            return Application(
                layout=Layout(HSplit([Window(control, dont_extend_height=True)])),
                key_bindings=bindings,
                full_screen=False,
                erase_when_done=False,
            )

        async def run() -> str | None:
            task = asyncio.ensure_future(build().run_async())
            while not task.done():
                if request is not None and request.cancelled.is_set():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    return None  # corral stopped waiting: the answer would be ignored anyway
                await asyncio.wait({task}, timeout=0.1)
            result = task.result()
            return result if isinstance(result, str) else None

        with create_app_session(input=create_input(tty_in), output=create_output(stdout=tty)):
            try:
                return asyncio.run(run())
            except (KeyboardInterrupt, EOFError):
                return None

    return choose


def make_ask() -> AskCallback:
    """The line-mode `ask` callback (imported by `corral run` on a terminal, `cli.commands.run_cmd`)."""
    return LineAsk()


__all__ = ["LineAsk", "make_ask", "render_changes", "render_request"]
