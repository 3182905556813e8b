"""The trust dialog: shown on opening an untrusted or changed project, and for inspecting one.

It shows what would load, from `trust.gate.GateResult` (nothing in it was parsed into a policy or run):
the trust-relevant files, the values that widen the boundary (hosts, writable paths) highlighted,
hooks and environment as plain text, a config error if any, and after a change the diff since the last
trusted version and the commits that touched those files. Keys: t trust, u continue untrusted
(default focus, also Escape), q quit. In inspect mode (the review screen) it only closes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import Enum

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Static

from trust.gate import GateResult, TrustState
from tui.changes import human_size
from tui.dialog import DialogScreen
from tui.inert import inert
from tui.project import TRUST_STYLE


class TrustChoice(Enum):
    """What the person chose in the trust dialog."""

    TRUST = "trust"
    UNTRUSTED = "untrusted"
    QUIT = "quit"


_HEADLINE = {
    TrustState.UNTRUSTED: "This project is not trusted yet",
    TrustState.CHANGED: "This project changed since you trusted it",
    TrustState.DENIED: "You denied this project",
    TrustState.TRUSTED: "This project is trusted",
}


def describe_gate(gate: GateResult, brokered: Sequence[str] = ()) -> Text:
    """Everything the person needs to decide, as inert text; `brokered`: the project hosts that would
    receive one of the person's brokered credentials (`corral.trust_report.brokered_lines`)."""
    body = Text(end="")
    if gate.state is TrustState.TRUSTED:
        body.append(
            "You trust this content: corral loads the configuration listed here and runs its hooks "
            "inside the sandbox. Any change to these files withdraws the trust.\n\n"
        )
    else:
        body.append(
            "Until you trust it, corral reads none of the project's configuration and runs none of its "
            "hooks: commands run under your own policy only. Trusting loads what is listed here.\n\n"
        )
    if gate.untrustable:
        body.append("Cannot be trusted: ", style="bold red")
        body.append_text(inert(gate.untrustable, one_line=True))
        body.append("\n\n")
    review = gate.review()
    if review.error:
        body.append(" config error ", style="bold white on red")
        body.append(" ")
        body.append_text(inert(review.error, "bold red", one_line=True))
        body.append("\n\n")
    if review.widening:
        body.append("Widens the sandbox:\n", style="bold")
        for widening in review.widening:
            body.append("  ")
            body.append_text(inert(widening.value, "bold black on yellow", one_line=True, limit=300))
            body.append("  ")
            body.append_text(inert(f"{widening.key}: {widening.reason}", "italic", one_line=True))
            body.append("\n")
        body.append("\n")
    for warning in review.host_warnings:
        body.append(" ! ", style="bold white on red")
        body.append(" ")
        body.append_text(inert(warning, "yellow", one_line=True))
        body.append("\n")
    for notice in brokered:
        body.append(" brokered ", style="bold white on blue")
        body.append(" ")
        body.append_text(inert(notice, "yellow", one_line=True))
        body.append("\n")
    if review.hooks:
        body.append("Hooks (run inside the sandbox):\n", style="bold")
        for hook in review.hooks:
            body.append(f"  {hook.event}: ", style="bold")
            body.append_text(inert(hook.command, "yellow", one_line=True, limit=500))
            body.append("\n")
        body.append("\n")
    if review.env:
        body.append("Environment for commands:\n", style="bold")
        for name, value in review.env:
            body.append("  ")
            body.append_text(inert(f"{name}={value}", one_line=True, limit=300))
            body.append("\n")
        body.append("\n")
    files = gate.discovery.files
    body.append(f"Trust-relevant files ({len(files)}):\n", style="bold")
    if not files:
        body.append("  none: trusting records that the project has no configuration\n", style="dim")
    for found in files:
        body.append(f"  {found.category.value:<7} {human_size(found.size):>9}  ", style="dim")
        body.append_text(inert(found.path, "bold" if found.category.content_shown else "", one_line=True))
        if found.problem:
            body.append("  ")
            body.append_text(inert(found.problem, "bold red", one_line=True))
        body.append("\n")
    for problem in gate.discovery.tree_problems:
        body.append("  problem: ", style="bold red")
        body.append_text(inert(problem, one_line=True))
        body.append("\n")
    if gate.diff:
        body.append("\nChanges since you trusted it:\n", style="bold")
        for line in gate.diff.splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            if line.startswith(("+++", "---")):
                style = "bold"
            body.append("  ")
            body.append_text(inert(line, style, one_line=True))
            body.append("\n")
    if gate.commits:
        body.append("\nCommits since the decision that touched these files:\n", style="bold")
        for commit in gate.commits:
            body.append("  ")
            body.append(
                f"{commit.sha[:10]} {time.strftime('%Y-%m-%d', time.gmtime(commit.time))} ", style="dim"
            )
            body.append_text(inert(f"{commit.author}: {commit.summary}", one_line=True, limit=200))
            body.append("\n")
    shown = [f for f in files if f.category.content_shown and f.content is not None]
    if shown:
        body.append("\nContent (as plain text):\n", style="bold")
        for found in shown:
            body.append("── ", style="dim")
            body.append_text(inert(found.path, "bold", one_line=True))
            body.append(" ──\n", style="dim")
            body.append_text(inert(found.visible_text()))
            body.append("\n")
    return body


class TrustScreen(DialogScreen[TrustChoice]):
    """Trust / continue untrusted / quit for one project; or, with `inspect_only`, just a viewer."""

    BINDINGS = [
        Binding(
            "escape",
            "close",
            "Close",
            tooltip="Use your policy only",
            show=False,
            id="trust.escape",
        ),
        Binding(
            "u",
            "choose('untrusted')",
            "Continue untrusted",
            tooltip="Continue without the project's config",
            id="trust.untrusted",
        ),
        Binding("t", "choose('trust')", "Trust", tooltip="Trust exactly the content shown", id="trust.trust"),
        Binding("q", "choose('quit')", "Quit", tooltip="Leave corral", id="trust.quit"),
    ]

    def __init__(self, gate: GateResult, *, inspect_only: bool = False, brokered: Sequence[str] = ()) -> None:
        super().__init__()
        self.gate = gate
        self.inspect_only = inspect_only
        self.brokered = tuple(brokered)

    def compose(self) -> ComposeResult:
        gate = self.gate
        with Vertical(id="trust-box", classes="dialog wide"):
            title = Text(end="")
            title.append(f" {gate.state.value} ", style=TRUST_STYLE[gate.state])
            title.append(" ")
            title.append(_HEADLINE[gate.state], style="bold")
            title.append("\n")
            title.append_text(inert(str(gate.root), "dim", one_line=True))
            yield Static(title, classes="title")
            yield VerticalScroll(Static(describe_gate(gate, self.brokered)), id="trust-body")
            with Horizontal(classes="buttons"):
                if self.inspect_only:
                    yield Button("Close (Esc)", id="untrusted", variant="primary")
                else:
                    if gate.untrustable is None:
                        yield Button("Trust (t)", id="trust", variant="warning")
                    yield Button("Continue untrusted (u/Esc)", id="untrusted", variant="primary")
                    yield Button("Quit (q)", id="quit")
            yield Footer()

    def on_mount(self) -> None:
        self.query_one("#untrusted", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer names exactly the keys the buttons name: in inspect mode only Esc (Close)."""
        if action == "choose" and self.inspect_only:
            return False
        return not (action == "choose" and parameters == ("trust",) and self.gate.untrustable is not None)

    def action_close(self) -> None:
        """Escape: continue untrusted (in inspect mode: close the viewer)."""
        self.action_choose("untrusted")

    def action_choose(self, choice: str) -> None:
        """Close with `choice` (inspect mode only closes)."""
        chosen = TrustChoice(choice)
        if self.inspect_only:
            self.dismiss(TrustChoice.UNTRUSTED)
            return
        if chosen is TrustChoice.TRUST and self.gate.untrustable is not None:
            self.app.bell()
            return
        self.dismiss(chosen)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id:
            self.action_choose(event.button.id)
