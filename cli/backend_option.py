"""`--backend NAME`, the same on every command that opens a session or reports on one."""

from __future__ import annotations

import argparse

from boundary.backends import BACKEND_NAMES as KNOWN_NAMES


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=KNOWN_NAMES,
        default=None,
        metavar="NAME",
        help=(
            f"sandbox backend ({'|'.join(KNOWN_NAMES)}; default: the config's sandbox.backend, else auto). "
            "One that cannot run here refuses with exit 125"
        ),
    )


def apply_backend_option(args: argparse.Namespace) -> None:
    """Hand `--backend` to the core before any session is opened."""
    from corral.backendchoice import request_backend

    request_backend(getattr(args, "backend", None))
