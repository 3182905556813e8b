"""What the shell shows about its project: trust state and a one-line policy summary.

Display only: the policy itself is composed by `corral.session.Session`; the trust state and every
trust decision come from `corral.trusting`. Nothing here widens or narrows what a command may do.
"""

from __future__ import annotations

from rich.text import Text

from corral.session import Session
from corral.trusting import ProjectTrust
from trust.gate import TrustState
from tui.inert import inert
from tui.session_factory import allowed_hosts

TRUST_STYLE = {
    TrustState.TRUSTED: "bold black on green",
    TrustState.UNTRUSTED: "bold black on yellow",
    TrustState.CHANGED: "bold white on dark_orange",
    TrustState.DENIED: "bold white on red",
}


def header_text(project: ProjectTrust, session: Session | None) -> Text:
    """Two lines: project and trust state; writable roots, allowed hosts and network. A line too long
    for the terminal ends in an ellipsis; it never wraps into the next line or cuts a word silently."""
    text = Text(end="", no_wrap=True, overflow="ellipsis")
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
    text.append("proxied, new hosts ask" if network else "off", style="bold" if network else "")
    return text
