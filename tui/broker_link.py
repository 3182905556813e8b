"""The Textual shell as the owner of its project's live session: agents' `corral run` joins it.

`serve_shell(app)` starts a `corral.broker.server.BrokerServer` for the app's project, sharing the
app's `SessionHost` lock so an agent's command and a typed one never run at once in the Session.
Escalations from agent commands arrive through the Session's `ask` callback — the app's `DialogAsk` —
so they open the same dialog as typed commands. Each agent command gets an entry in the log, labelled
with the process that asked; its output goes back to the agent, not to the screen.
"""

from __future__ import annotations

from typing import Any

from textual.app import App

from corral.broker.address import AddressError, Peer
from corral.broker.server import AlreadyServed, BrokerServer, SessionHost
from corral.session import CommandOutcome
from corral.trusting import ProjectTrust
from corral.words import finished_from
from tui.commandlog import CommandEntry, CommandLog


class _LogObserver:
    def __init__(self, app: App[Any]) -> None:
        self.app = app

    def command_started(self, peer: Peer, text: str) -> object:
        def add() -> CommandEntry:
            entry = CommandEntry(text, cwd_label=f"agent {peer.label()}")
            log = self.app.query_one(CommandLog)
            log.add_entry(entry)
            log.scroll_end(animate=False)
            return entry

        return self.app.call_from_thread(add)

    def command_finished(self, token: object, outcome: CommandOutcome | None, error: str | None) -> None:
        if not isinstance(token, CommandEntry):
            return
        entry = token

        def finish() -> None:
            entry.finish(finished_from(outcome, error))
            self.app.query_one(CommandLog).scroll_end(animate=False)

        self.app.call_from_thread(finish)


def serve_shell(app: App[Any], project: ProjectTrust, host: SessionHost) -> BrokerServer | None:
    """Serve the app's session for `project` to agents; None (with a notice) when it cannot.

    `app` is the shell whose log shows agents' commands (any app with a `CommandLog`): taking it as a
    plain `App` keeps this module below `tui.app`, which imports it.
    """
    server = BrokerServer(
        project.workspace,
        project.locations.runtime_dir,
        host,
        frontend="textual",
        observer=_LogObserver(app),
        ledger_path=project.locations.ledger_path,
    )
    try:
        server.start()
    except AlreadyServed as error:
        app.notify(f"{error}: agents' commands go there, not here", severity="warning", markup=False)
        return None
    except (AddressError, OSError) as error:
        app.notify(f"agents cannot join this session: {error}", severity="error", markup=False)
        return None
    return server
