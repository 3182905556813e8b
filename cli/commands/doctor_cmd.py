"""`corral doctor`: which backend would run and what is missing, with fixes."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("doctor", help="check the sandbox backend on this machine")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from corral.doctor import euid_note, format_checks, run_checks
    from corral.locations import Locations

    checks = run_checks(Locations.default())
    print(format_checks(checks))
    note = euid_note()
    if note:
        print(note)
    return 0 if all(c.ok for c in checks if c.name != "landlock") else 1
