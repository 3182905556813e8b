"""A session's own process keeps no descriptor per command and none after it closes: a live session or
a shell runs for hours, and a normal user's soft limit is 1,024 descriptors (a suite that leaked three
per session hit it). Real bubblewrap; the commands write, list, talk to the proxy and leave nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from corral.command import Command
from corral.locations import Locations
from corral.opening import compose_session
from sandbox.runner import StdioSpec


def _descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_commands_and_close_leave_no_descriptor_behind(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    out = tmp_path / "out"
    with out.open("wb") as handle:
        before = _descriptors()
        session = compose_session(workspace, locations=Locations.default())
        scripts = [
            "echo x > f$$ && ls >/dev/null",
            "curl -s -m 5 http://denied.example/ >/dev/null; true",
            "sleep 0.05 & wait",
        ]
        counts: list[int] = []
        try:
            for _round in range(4):
                for script in scripts:
                    outcome = session.run(
                        Command.from_argv(["/bin/sh", "-c", script]),
                        stdio=StdioSpec(stdout=handle.fileno(), stderr=handle.fileno()),
                    )
                    assert outcome.exit_code == 0, out.read_text()
                counts.append(len(_descriptors()))
        finally:
            session.close()
        after = _descriptors()
    assert counts[1:] == [counts[0]] * (len(counts) - 1), counts  # nothing kept per command
    left = {
        fd: os.readlink(f"/proc/self/fd/{fd}")
        for fd in after - before
        if Path(f"/proc/self/fd/{fd}").exists()
    }
    assert left == {}, left
