"""`corral policy`: the effective policy for a project, and the exact backend argv."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("policy", help="show the effective sandbox policy")
    parser.add_argument(
        "--project", metavar="DIR", help="the workspace (default: git root of the current directory)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--backend-args", action="store_true", help="print the exact bwrap argv that would run"
    )
    parser.add_argument("--allow-home-workspace", action="store_true", help="allow $HOME as the workspace")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    import json
    import shlex
    import sys
    from pathlib import Path

    from corral.locations import Locations
    from corral.policyview import policy_summary
    from corral.session import Session
    from corral.workspace import WorkspaceError, find_workspace
    from sandbox.bwrap import SandboxSetupError

    try:
        workspace = find_workspace(
            Path(args.project) if args.project else Path.cwd(),
            explicit=bool(args.project),
            allow_home=args.allow_home_workspace,
        )
    except WorkspaceError as error:
        print(f"corral: {error}", file=sys.stderr)
        return 2
    session = Session(workspace, locations=Locations.default(), record=False)
    try:
        policy = session.policy(Path.cwd())
        if args.backend_args:
            try:
                argv = session.runner.describe(policy, ["CMD"])
            except SandboxSetupError as error:
                print(f"corral: {error}", file=sys.stderr)
                return 125
            if args.json:
                print(json.dumps(argv, indent=2))
            else:
                lines: list[list[str]] = []
                for arg in argv:
                    if arg.startswith("--") or not lines:
                        lines.append([])
                    lines[-1].append(shlex.quote(arg))
                print(" \\\n  ".join(" ".join(words) for words in lines))
            return 0
        summary = policy_summary(policy)
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            for key, value in summary.items():
                if isinstance(value, list):
                    print(f"{key}:")
                    for item in value:
                        print(f"  {item}")
                else:
                    print(f"{key}: {value}")
        return 0
    finally:
        session.close()
