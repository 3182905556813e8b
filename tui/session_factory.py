"""Build the shell's `Session` the same way `corral run` does: trusted project config (if any), the
user's config and host policy. Only core functions are called here; nothing is decided in the front end.

Raises `corral.project.ConfigError`, `UserConfigError` or `PolicyError` (one line naming the file and
key) when a config cannot be used.
"""

from __future__ import annotations

from pathlib import Path

from corral.decision import AskCallback
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.project import open_project
from corral.session import Session
from corral.userconfig import load_user_config
from sandbox.egress.hostpolicy import HostPolicy


def open_session(workspace: Path, locations: Locations, ask: AskCallback | None, frontend: str) -> Session:
    """A Session for `workspace` that asks through `ask`."""
    project = open_project(workspace, locations)
    user = load_user_config(locations.user_config_path)
    hosts = HostPolicy.from_config(
        source=user.source, allow=user.network_allow, deny=user.network_deny, presets=user.network_presets
    )
    return Session(
        workspace,
        locations=locations,
        ask=ask,
        frontend=frontend,
        on_violation=OnViolation.ASK,
        ask_timeout_s=user.prompt_timeout_s,
        project=project,
        hosts=hosts,
    )


def allowed_hosts(session: Session | None) -> list[str]:
    """The host patterns the session's network gate allows (display only)."""
    if session is None or session.gate is None:
        return []
    return [str(pattern) for pattern in session.gate.hosts.allow]
