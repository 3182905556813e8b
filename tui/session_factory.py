"""Build the shell's `Session` the same way `corral run` does: trusted project config (if any), the
user's config and host policy. Only core functions are called here; nothing is decided in the front end.

Raises `corral.project.ConfigError`, `UserConfigError` or `PolicyError` (one line naming the file and
key) when a config cannot be used.
"""

from __future__ import annotations

from pathlib import Path

from corral.decision import AskCallback
from corral.locations import Locations
from corral.opening import open_session as open_core_session
from corral.session import Session


def open_session(workspace: Path, locations: Locations, ask: AskCallback | None, frontend: str) -> Session:
    """A Session for `workspace` that asks through `ask` (the core's `corral.opening.open_session`)."""
    session, _warnings = open_core_session(workspace, locations, ask=ask, frontend=frontend)
    return session


def allowed_hosts(session: Session | None) -> list[str]:
    """The host patterns the session's network gate allows (display only)."""
    if session is None:
        return []
    return list(session.summary().allowed_hosts)
