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


def _workspace(args: argparse.Namespace) -> object:
    from pathlib import Path

    from corral.workspace import WorkspaceError, find_workspace

    try:
        return find_workspace(Path(args.project) if args.project else Path.cwd(), explicit=bool(args.project))
    except WorkspaceError as error:
        print(f"corral: {error}", file=sys.stderr)
        return None


def _path(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from corral.locations import Locations
    from corral.session import Session
    from sandbox.cachelayers import host_path_of, project_layers_dir

    workspace = _workspace(args)
    if not isinstance(workspace, Path):
        return 2
    locations = Locations.default()
    layers = project_layers_dir(locations.cache_layers_dir, workspace)
    if args.path is None:
        print(layers)
        return 0
    session = Session(workspace, locations=locations, record=False)
    try:
        caches = session.policy().cache_dirs
    finally:
        session.close()
    wanted = Path(os.path.abspath(os.path.expanduser(args.path)))
    found = host_path_of(layers, caches, wanted)
    if found is None:
        from trust.display import visible_path

        print(
            f"corral: {visible_path(str(wanted))} is not inside a tool-chain cache directory", file=sys.stderr
        )
        return 1
    print(found)
    return 0


def _clean(args: argparse.Namespace) -> int:
    from pathlib import Path

    from corral.locations import Locations
    from sandbox.cachelayers import CacheLayerBusy, project_layers_dir, remove_project_layers

    workspace = _workspace(args)
    if not isinstance(workspace, Path):
        return 2
    layers_dir = Locations.default().cache_layers_dir
    try:
        removed = remove_project_layers(layers_dir, workspace)
    except CacheLayerBusy as error:
        print(f"corral: {error.strerror}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"corral: cannot remove {project_layers_dir(layers_dir, workspace)}: {error}", file=sys.stderr)
        return 1
    print(f"removed {removed} entries" if removed else "no cache layer to remove")
    return 0
