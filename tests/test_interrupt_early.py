"""A Ctrl-C that arrives before the sandboxed command's own process exists (the sandbox is still being
set up) is delivered as soon as it does, with the real bubblewrap: it is never lost, so `sleep 30` ends
at once instead of running to its end."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from corral.command import Command
from corral.locations import Locations
from corral.opening import compose_session


def test_an_interrupt_during_set_up_is_not_lost(isolated_home: Path) -> None:
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    session = compose_session(workspace, locations=Locations.default(), frontend="test")
    try:
        for delay in (0.02, 0.05, 0.1):
            timer = threading.Timer(delay, session.interrupt, (signal.SIGINT,))
            started = time.monotonic()
            timer.start()
            outcome = session.run(Command.from_argv(["sleep", "30"]))
            timer.join()
            assert time.monotonic() - started < 10, f"interrupt after {delay}s was lost"
            assert outcome.exit_code != 0
        # Nothing is left pending for the next command.
        assert session.run(Command.from_argv(["true"])).exit_code == 0
    finally:
        session.close()


def test_an_interrupt_reaches_the_command_when_corral_ignores_sigint(isolated_home: Path) -> None:
    """corral started in the background (`&`, `nohup`) inherits SIGINT ignored; its sandboxed command
    must not, or the forwarded Ctrl-C does nothing."""
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    session = compose_session(workspace, locations=Locations.default(), frontend="test")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        timer = threading.Timer(0.5, session.interrupt, (signal.SIGINT,))
        started = time.monotonic()
        timer.start()
        outcome = session.run(Command.from_argv(["sleep", "30"]))
        timer.join()
        assert time.monotonic() - started < 10
        assert outcome.exit_code != 0
    finally:
        signal.signal(signal.SIGINT, previous)
        session.close()
