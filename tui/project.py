"""What the shell shows about its project: trust state and a one-line policy summary.

Display only: the policy itself is composed by `corral.session.Session`; the trust state comes from
`trust.gate.evaluate`. Nothing here widens or narrows what a command may do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from corral import __version__
from corral.locations import Locations
from corral.session import Session
from trust.gate import GateResult, TrustState, evaluate, grant
from trust.store import TrustStore
from tui.inert import inert
from tui.session_factory import allowed_hosts

TRUST_STYLE = {
    TrustState.TRUSTED: "bold black on green",
    TrustState.UNTRUSTED: "bold black on yellow",
    TrustState.CHANGED: "bold white on dark_orange",
    TrustState.DENIED: "bold white on red",
}


@dataclass
class ProjectView:
    """The project a shell runs in, and its trust evaluation (None when it could not be evaluated)."""

    workspace: Path
    locations: Locations
    gate: GateResult | None = None
    gate_error: str | None = None

    def store(self) -> TrustStore:
        """The user's trust store."""
        return TrustStore(self.locations.trust_dir)

    def refresh(self, *, with_history: bool = True) -> None:
        """Evaluate trust again (after a decision, or on demand)."""
        try:
            self.gate = evaluate(self.workspace, self.store(), with_history=with_history)
            self.gate_error = None
        except Exception as error:  # an unreadable project is shown as untrusted
            self.gate = None
            self.gate_error = str(error)

    @property
    def state(self) -> TrustState:
        """Where the project stands; anything unknown counts as untrusted."""
        return self.gate.state if self.gate is not None else TrustState.UNTRUSTED

    @property
    def needs_trust_dialog(self) -> bool:
        """Untrusted or changed, and trustable at all: ask the person on opening."""
        gate = self.gate
        return (
            gate is not None
            and gate.untrustable is None
            and gate.state in (TrustState.UNTRUSTED, TrustState.CHANGED)
        )

    def grant(self) -> None:
        """Trust the content that was shown (TrustError when it changed since)."""
        if self.gate is None:
            raise ValueError("nothing was shown")
        grant(self.workspace, self.store(), __version__, expected_fingerprint=self.gate.fingerprint)
        self.refresh()


def header_text(project: ProjectView, session: Session | None) -> Text:
    """Two lines: project and trust state; writable roots, allowed hosts and network."""
    text = Text(end="")
    text.append(" corral ", style="bold black on cyan")
    text.append(" ")
    text.append_text(inert(str(project.workspace), "bold", one_line=True, limit=200))
    text.append("  ")
    state = project.state
    text.append(f" {state.value} ", style=TRUST_STYLE[state])
    if project.gate is not None and project.gate.untrustable:
        text.append("  (cannot be trusted: ", style="dim")
        text.append_text(inert(project.gate.untrustable, "dim", one_line=True, limit=120))
        text.append(")", style="dim")
    text.append("\n")
    writable = [str(project.workspace), *(str(p) for p in (session.extra_writable if session else ()))]
    text.append("writable: ", style="dim")
    text.append_text(inert(", ".join(writable), one_line=True, limit=200))
    hosts = allowed_hosts(session)
    text.append("  ·  hosts: ", style="dim")
    text.append_text(inert(", ".join(hosts) if hosts else "none", one_line=True, limit=200))
    network = session is not None and session.network is not None
    text.append("  ·  network: ", style="dim")
    text.append(
        "through corral's proxy (other hosts ask)" if network else "off", style="bold" if network else ""
    )
    return text
