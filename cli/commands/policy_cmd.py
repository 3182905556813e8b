"""`corral policy`: the effective policy for a project, and the exact backend argv."""

from __future__ import annotations

import argparse

from cli.backend_option import add_backend_option, apply_backend_option


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("policy", help="show the effective sandbox policy")
    parser.add_argument(
        "--project", metavar="DIR", help="the workspace (default: git root of the current directory)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--backend-args", action="store_true", help="print the exact backend argv that would run"
    )
    parser.add_argument("--allow-home-workspace", action="store_true", help="allow $HOME as the workspace")
    add_backend_option(parser)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    apply_backend_option(args)
    import json
    import shlex
    import sqlite3
    import sys
    from pathlib import Path

    from corral.errors import SetupError, UsageError, state_error
    from corral.ledger import LedgerError
    from corral.locations import Locations
    from corral.opening import open_session
    from corral.policyview import PolicySources, effective_policy, render_effective
    from corral.project import ConfigError
    from corral.rules import RuleError
    from corral.userconfig import UserConfigError, load_user_config
    from corral.workspace import find_workspace
    from sandbox.bwrap import SandboxSetupError
    from sandbox.egress.hostpolicy import PolicyError

    locations = Locations.default()
    try:
        workspace = find_workspace(
            Path(args.project) if args.project else Path.cwd(),
            explicit=bool(args.project),
            allow_home=args.allow_home_workspace,
        )
        session, warnings = open_session(
            workspace, locations, ask=None, frontend="policy", session_start=False, record=False
        )
        for warning in warnings:
            print(f"corral: {warning}", file=sys.stderr)
        user = load_user_config(locations.user_config_path)
    except (ConfigError, UserConfigError, PolicyError) as error:
        raise UsageError(str(error)) from error
    except (LedgerError, RuleError, sqlite3.DatabaseError) as error:
        raise state_error(error) from error
    try:
        policy = session.policy(Path.cwd())
        if args.backend_args:
            try:
                argv = session.describe(["CMD"], Path.cwd())
            except SandboxSetupError as error:
                raise SetupError(str(error)) from error
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
        from sandbox.cachelayers import project_layers_dir

        layer = project_layers_dir(locations.cache_layers_dir, workspace)
        sources = PolicySources(
            session.project,
            user,
            session.project_rules(),
            cache_layer=layer,
            backend=session.backend.traits,
            backend_reason=session.backend.reason,
        )
        view = effective_policy(policy, sources)
        if args.json:
            print(json.dumps(view, indent=2))
        else:
            sys.stdout.write(render_effective(view))
        return 0
    finally:
        session.close()
