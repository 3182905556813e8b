"""`corral run` through the project's live session, when there is one.

`run_via_session(args, argv)` returns corral's exit status when a session ran the command, or None
when no session is running (the caller then runs the command standalone, asking on its own terminal
or applying `--on-violation`). Flags that change the run itself (`--allow-host`, `--require-trust`,
`--allow-home-workspace`, `--no-session`) keep the standalone path: a client can never widen a session.

The standalone path prints, once per project until the runtime directory is cleared, how to start a
session so that an agent's prompts reach a person.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from corral.broker import address, client, protocol
from corral.locations import Locations
from corral.workspace import WorkspaceError, find_workspace

EXIT_USAGE = 2


def run_via_session(args: argparse.Namespace, argv: list[str]) -> int | None:
    if (
        args.allow_host
        or args.require_trust
        or args.allow_home_workspace
        or getattr(args, "no_session", False)
    ):
        return None
    locations = Locations.default()
    start = Path(args.project) if args.project else Path.cwd()
    try:
        workspace = find_workspace(start, explicit=bool(args.project))
    except WorkspaceError:
        return None  # the standalone path says why, in its own words
    try:
        sock = client.connect(locations.runtime_dir, workspace)
    except (address.AddressError, OSError) as error:
        print(f"corral: not joining the live session: {error}", file=sys.stderr)
        return None
    if sock is None:
        _hint_once(locations.runtime_dir, workspace)
        return None
    request = protocol.RunRequest(
        argv=None if args.shell_command is not None else tuple(argv),
        text=args.shell_command,
        cwd=os.getcwd(),
        description=args.description,
    )
    try:
        result = client.run(sock, request)
    except client.BrokerError as error:
        print(f"corral: {error}", file=sys.stderr)
        return error.status
    for line in result.messages:
        print(line, file=sys.stderr)
    if args.report:
        try:
            Path(args.report).write_text(json.dumps(result.report, indent=2) + "\n")
        except OSError as error:
            print(f"corral: could not write the report {args.report}: {error.strerror}", file=sys.stderr)
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
