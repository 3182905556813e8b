"""Open a Session for a workspace the one way every front end does it (`corral run`, both shells, the
coming broker and MCP server): the trust gate first, then the user's config and host policy.

Raises `corral.project.ConfigError`, `corral.userconfig.UserConfigError` or
`sandbox.egress.hostpolicy.PolicyError` — each one line naming the file and key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from corral.decision import AskCallback
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.project import ProjectContext, open_project
from corral.session import Session
from corral.userconfig import load_user_config
from sandbox.egress.hostpolicy import HostPolicy


def open_session(
    workspace: Path,
    locations: Locations,
    *,
    ask: AskCallback | None,
    frontend: str,
    on_violation: OnViolation = OnViolation.ASK,
    allow_hosts: Sequence[str] = (),
    project: ProjectContext | None = None,
    environ: Mapping[str, str] | None = None,
    session_start: bool = True,
    record: bool = True,
) -> tuple[Session, list[str]]:
    """The Session for `workspace`, and the warnings to show (e.g. user-content hosts allowed).

    `session_start=False` for a Session that is not a session (one standalone `corral run`): the
    project's `session_start` hook then never runs (see `Session.start`)."""
    if project is None:
        project = open_project(workspace, locations)
    user = load_user_config(locations.user_config_path)
    hosts = HostPolicy.from_config(
        source=user.source, allow=user.network_allow, deny=user.network_deny, presets=user.network_presets
    )
    if allow_hosts:
        hosts.extend(source="--allow-host", allow=allow_hosts, allow_key="--allow-host")
    session = Session(
        workspace,
        locations=locations,
        ask=ask,
        frontend=frontend,
        on_violation=on_violation,
        ask_timeout_s=user.prompt_timeout_s,
        project=project,
        hosts=hosts,
        environ=environ,
        session_start=session_start,
        record=record,
        extra_readable=user.filesystem_readable,
    )
    return session, list(hosts.warnings)
