"""`corral cache path|clean`: find and remove a project's tool-chain cache layer.

    corral cache path [--project DIR] [PATH]   where the layer lives; with PATH (as a command saw it,
                                               e.g. npm's "log written to ~/.npm/_logs/…"), where
                                               that file is on the host
    corral cache clean [--project DIR]         remove the project's layer (not while a command runs)

Exit status: 0 on success; 1 when PATH is not inside a cache directory or the layer is in use;
2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `corral cache` and its sub-commands."""
    parser = subparsers.add_parser(
        "cache",
        help="find or remove the project's tool-chain cache layer",
        description="Sandboxed commands write ~/.cache, ~/.npm, ~/.cargo/registry, ... into a "
        "per-project layer corral owns, never into your home.",
    )
    actions = parser.add_subparsers(dest="cache_action", metavar="ACTION", parser_class=type(parser))
    path = actions.add_parser("path", help="print where the layer (or one file in it) is on the host")
    path.add_argument("path", nargs="?", metavar="PATH", help="a path under a cache directory")
    path.set_defaults(handler=_path)
    clean = actions.add_parser("clean", help="remove the project's cache layer")
    clean.set_defaults(handler=_clean)
    for action in (path, clean):
        action.add_argument("--project", metavar="DIR", help="the workspace (default: git root of cwd)")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        return 2

    parser.set_defaults(handler=usage)


def _workspace(args: argparse.Namespace) -> Path:
    from corral.workspace import find_workspace

    return find_workspace(Path(args.project) if args.project else Path.cwd(), explicit=bool(args.project))


def _path(args: argparse.Namespace) -> int:
    import os

    from corral.locations import Locations
    from corral.opening import compose_session
    from sandbox.cachelayers import host_path_of, project_layers_dir

    workspace = _workspace(args)
    locations = Locations.default()
    layers = project_layers_dir(locations.cache_layers_dir, workspace)
    if args.path is None:
        print(layers)
        return 0
    session = compose_session(workspace, locations=locations, record=False)
    try:
        caches = session.policy().cache_dirs
    finally:
        session.close()
    wanted = Path(os.path.abspath(os.path.expanduser(args.path)))
    found = host_path_of(layers, caches, wanted)
    if found is None:
        from corral.errors import Refused

        raise Refused(f"{wanted} is not inside a tool-chain cache directory")
    print(found)
    return 0


def _clean(args: argparse.Namespace) -> int:
    from corral.errors import Refused
    from corral.locations import Locations
    from sandbox.cachelayers import CacheLayerBusy, project_layers_dir, remove_project_layers

    workspace = _workspace(args)
    layers_dir = Locations.default().cache_layers_dir
    try:
        removed = remove_project_layers(layers_dir, workspace)
    except CacheLayerBusy as error:
        raise Refused(str(error.strerror)) from error
    except OSError as error:
        raise Refused(f"cannot remove {project_layers_dir(layers_dir, workspace)}: {error}") from error
    print(f"removed {removed} entries" if removed else "no cache layer to remove")
    return 0
