"""`corral session [DIR]`: a live session with no UI, for use beside an agent.

It opens the project's Session the way every front end does (`corral.opening.open_session`), serves
it on the project's socket, and asks on its own terminal, inline like `corral run` (the line-mode
prompt on `/dev/tty`). Each agent command is announced on stderr with the process that asked. With
no terminal (or `--on-violation deny`) every crossing that no rule or earlier session answer covers
is denied. SIGINT, SIGTERM or SIGHUP ends the session (a running command is interrupted first).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from corral.broker.address import AddressError, Peer
from corral.broker.server import AlreadyServed, BrokerServer, SessionHost
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import open_session
from corral.session import CommandOutcome
from corral.termsafe import neutralise
from corral.workspace import WorkspaceError, find_workspace

EXIT_USAGE = 2
EXIT_BUSY = 1


class _Announcer:
    """Prints one line per agent command on stderr (inert: escapes shown, never interpreted)."""

    def command_started(self, peer: Peer, text: str) -> object:
        first = text.splitlines()[0] if text else ""
        more = " …" if "\n" in text else ""
        print(f"corral session: {neutralise(peer.label())}: {neutralise(first[:200])}{more}", file=sys.stderr)
        return text

    def command_finished(self, token: object, outcome: CommandOutcome | None, error: str | None) -> None:
        if outcome is None:
            print(f"corral session:   not run: {neutralise(error or '')}", file=sys.stderr)
            return
        crossed = f", {len(outcome.outcomes)} crossing(s)" if outcome.outcomes else ""
        print(f"corral session:   exit {outcome.status}{crossed}", file=sys.stderr)


def run_session(args: argparse.Namespace) -> int:
    locations = Locations.default()
    start = Path(args.dir) if args.dir else Path.cwd()
    try:
        workspace = find_workspace(start, explicit=bool(args.dir))
    except WorkspaceError as error:
        print(f"corral: {error}", file=sys.stderr)
        return EXIT_USAGE
    interactive = _has_tty() and args.on_violation != "deny"
    ask = None
    if interactive:
        from corral.run import _line_mode_ask

        ask = _line_mode_ask()
    try:
        session, warnings = open_session(
            workspace,
            locations,
            ask=ask,
            frontend="session" if ask else "session-deny",
            on_violation=OnViolation.ASK if ask else OnViolation.DENY,
        )
    except Exception as error:
        print(f"corral: {neutralise(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    for warning in warnings:
        print(f"corral: warning: {neutralise(warning)}", file=sys.stderr)
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
        print(f"corral: {error}", file=sys.stderr)
        return EXIT_BUSY
    stop = threading.Event()

    def ending(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, ending)
    how = "asking here" if ask else "denying every crossing (no terminal to ask on)"
    print(
        f"corral session: serving {neutralise(str(workspace))} ({how}); agents' `corral run` joins it;"
        " Ctrl-C ends it",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        session.runner.interrupt(signal.SIGTERM)
        with host.lock:  # let a running command finish deciding before the ledger closes
            session.close()
    print("corral session: ended", file=sys.stderr)
    return 0


def _has_tty() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True
