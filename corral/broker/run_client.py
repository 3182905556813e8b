"""`corral run` through the project's live session, when there is one.

`run_via_session(request)` returns corral's exit status when a session ran the command, or None
when no session is running (the caller then runs the command standalone, asking on its own terminal
or applying `--on-violation`). Flags that change the run itself (`--allow-host`, `--require-trust`,
`--allow-home-workspace`, `--no-session`) keep the standalone path: a client can never widen a session.

Without a session and without an explicit `--on-violation`, it prints, once per project until the
runtime directory is cleared, how to start a session so that an agent's prompts reach a person.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from corral.broker import address, client, protocol
from corral.command import RunRequest
from corral.locations import Locations
from corral.workspace import WorkspaceError, find_workspace

EXIT_USAGE = 2


def run_via_session(run: RunRequest, *, hint: bool = True) -> int | None:
    """`hint`: say how to start a session when there is none (False when the caller chose
    `--on-violation` explicitly: then denial is a choice, not the default)."""
    if run.allow_hosts or run.require_trust or run.allow_home_workspace or run.no_session:
        return None
    locations = Locations.default()
    start = run.project if run.project is not None else Path.cwd()
    try:
        workspace = find_workspace(start, explicit=run.project is not None)
    except WorkspaceError:
        return None  # the standalone path says why, in its own words
    try:
        sock = client.connect(locations.runtime_dir, workspace)
    except (address.AddressError, OSError) as error:
        print(f"corral: not joining the live session: {error}", file=sys.stderr)
        return None
    if sock is None:
        if hint:
            _hint_once(locations.runtime_dir, workspace)
        return None
    request = protocol.RunRequest(
        argv=None if run.command.from_shell_string else run.command.argv,
        text=run.command.text if run.command.from_shell_string else None,
        cwd=os.getcwd(),
        description=run.command.description,
    )
    try:
        result = client.run(sock, request)
    except client.BrokerError as error:
        print(f"corral: {error}", file=sys.stderr)
        return error.status
    for line in result.messages:
        print(line, file=sys.stderr)
    if run.report is not None:
        try:
            run.report.write_text(json.dumps(result.report, indent=2) + "\n")
        except OSError as error:
            print(f"corral: could not write the report {run.report}: {error.strerror}", file=sys.stderr)
    return result.status


def _hint_once(runtime_dir: Path, workspace: Path) -> None:
    """Say how to start a session, the first time a command runs without one in this project."""
    if sys.stdin.isatty() and sys.stderr.isatty():
        return  # a person is here to be asked
    marker = address.sessions_dir(runtime_dir) / f"{address.project_key(workspace)}.hinted"
    try:
        address.ensure_private_dir(marker.parent)
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
    except (OSError, address.AddressError):
        return
    print(
        "corral: no live session for this project, so crossings are denied without asking;"
        f" to be asked, run `corral session {workspace}` (or `corral shell`) in a terminal",
        file=sys.stderr,
    )
