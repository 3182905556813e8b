"""`corral session [DIR]`: a live session with no UI, for use beside an agent.

It opens the project's Session the way every front end does (`corral.opening.open_session`), serves
it on the project's socket, and asks on its own terminal, inline like `corral run` (the line-mode
prompt on `/dev/tty`). Each agent command is announced on stderr with the process that asked. With
no terminal (or `--on-violation deny`) every crossing that no rule or earlier session answer covers
is denied. SIGINT, SIGTERM or SIGHUP ends the session (a running command is interrupted first).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from boundary.termsafe import visible
from corral.broker.address import AddressError, Peer
from corral.broker.execution import outcome_messages
from corral.broker.server import AlreadyServed, BrokerServer, SessionHost
from corral.decision import AskCallback
from corral.errors import Refused
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.network import preload_proxy
from corral.opening import open_session
from corral.session import CommandOutcome
from corral.workspace import find_workspace


class _Announcer:
    """Prints one line per agent command on stderr (inert: escapes shown, never interpreted)."""

    def command_started(self, peer: Peer, text: str) -> object:
        first = text.splitlines()[0] if text else ""
        more = " …" if "\n" in text else ""
        print(f"corral session: {visible(peer.label())}: {visible(first[:200])}{more}", file=sys.stderr)
        return text

    def command_finished(self, token: object, outcome: CommandOutcome | None, error: str | None) -> None:
        if outcome is None:
            print(f"corral session:   not run: {visible(error or '')}", file=sys.stderr)
            return
        crossed = f", {len(outcome.outcomes)} crossing(s)" if outcome.outcomes else ""
        print(f"corral session:   exit {outcome.status}{crossed}", file=sys.stderr)


def run_session(directory: str | None, ask: AskCallback | None) -> int:
    """Serve the project's live session; `ask` is the prompt on this terminal (None: deny every
    crossing no rule allows). A directory that cannot be a workspace raises `UsageError`."""
    locations = Locations.default()
    start = Path(directory) if directory else Path.cwd()
    workspace = find_workspace(start, explicit=bool(directory))
    session, warnings = open_session(  # a config or state error is a CorralError, one line at the CLI
        workspace,
        locations,
        ask=ask,
        frontend="session" if ask else "session-deny",
        on_violation=OnViolation.ASK if ask else OnViolation.DENY,
    )
    for warning in warnings:
        print(f"corral: warning: {visible(warning)}", file=sys.stderr)
    notice = session.project.notice() if session.project is not None else None
    if notice:
        print(notice, file=sys.stderr)
    host = SessionHost(lambda: session)
    server = BrokerServer(
        workspace,
        locations.runtime_dir,
        host,
        frontend="session",
        observer=_Announcer(),
        ledger_path=locations.ledger_path,
    )
    try:
        server.start()
    except (AlreadyServed, AddressError, OSError) as error:
        session.close()
        raise Refused(str(error)) from error  # exit 1: another session serves it, or the socket is unsafe
    preload_proxy()
    stop = threading.Event()

    def ending(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, ending)
    how = "asking here" if ask else "denying every crossing (no terminal to ask on)"
    print(
        f"corral session: serving {visible(str(workspace))} ({how}); agents' `corral run` joins it;"
        " Ctrl-C ends it",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        session.interrupt(signal.SIGTERM)
        with host.lock:  # let a running command finish deciding before the ledger closes
            for ended in session.end_background():
                for line in outcome_messages(workspace, ended):
                    print(visible(line), file=sys.stderr)
            session.close()
    print("corral session: ended", file=sys.stderr)
    return 0


def has_terminal() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True
