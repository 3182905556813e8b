"""Per-command cost of each sandbox backend, beside bwrap: interleaved rounds, medians and ranges.

    .venv/bin/python bench/bench_backends.py [--runs 40]

Rows (each a live `Session.run` of `true`, one long-lived Session per row, as `corral shell` and the
broker run commands; the rows take turns, one command each per round, so load on the machine hits all
of them alike):
- bwrap: the default backend;
- bwrap + Landlock layer: `sandbox.landlock_layer = true` (the launcher inside the sandbox);
- landlock: the fallback backend (`--backend landlock`).
- the Landlock launcher alone (`sandbox.landlock_exec` through the system interpreter, then `true`) beside
  a bare `true`, outside any sandbox: the layer's own cost, with the CPU time it takes (wall times on a
  loaded machine mostly measure the wait for a core; CPU time does not).
A backend that cannot run here is listed with the reason. It runs in a throwaway workspace with HOME and
XDG_* in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    try:
        _bench(base, args.runs)
    finally:
        shutil.rmtree(base, ignore_errors=True)  # the throwaway home and workspace


def _bench(base: Path, runs: int) -> None:
    home = base / "home"
    workspace = home / "project"
    workspace.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime),
    )

    from corral.backendchoice import BackendRequest
    from corral.command import Command
    from corral.errors import SetupError
    from corral.locations import Locations
    from corral.opening import compose_session
    from corral.session import Session

    locations = Locations.default()
    configurations = (
        ("bwrap", BackendRequest("bwrap", "bench")),
        ("bwrap + Landlock layer", BackendRequest("bwrap", "bench", landlock_layer=True)),
        ("landlock", BackendRequest("landlock", "bench")),
    )
    sessions: list[tuple[str, Session]] = []
    for name, request in configurations:
        try:
            sessions.append(
                (name, compose_session(workspace, locations=locations, backend=request, record=False))
            )
        except SetupError as error:
            print(f"{name}: cannot run here: {error}")
    command = Command.from_argv(["true"])
    samples: dict[str, list[float]] = {name: [] for name, _ in sessions}
    for _name, session in sessions:
        session.run(command)  # warm caches (seccomp filters, probes)
    for _round in range(runs):
        for name, session in sessions:
            start = time.perf_counter()
            outcome = session.run(command)
            samples[name].append((time.perf_counter() - start) * 1000)
            assert outcome.status == 0, (name, outcome.status)
    for _name, session in sessions:
        session.close()
    launcher_rows = _launcher_rows(runs)
    reference = statistics.median(samples["bwrap"]) if samples.get("bwrap") else None
    print(f"{runs} interleaved rounds, `true` per backend, live Session.run")
    print(f"{'backend':26} {'median ms':>10} {'range ms':>17} {'x bwrap':>8}")
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = f"{median / reference:8.2f}" if reference else "       -"
        print(f"{name:26} {median:10.1f} {min(values):8.1f}-{max(values):<8.1f} {ratio}")
    print(f"{'outside any sandbox':26} {'median ms':>10} {'range ms':>17} {'CPU ms':>8}")
    for name, values, cpu in launcher_rows:
        print(
            f"{name:26} {statistics.median(values):10.1f} {min(values):8.1f}-{max(values):<8.1f} {cpu:8.1f}"
        )


def _launcher_rows(runs: int) -> list[tuple[str, list[float], float]]:
    """`true` bare and through the Landlock launcher, interleaved: (name, wall ms, median CPU ms)."""
    from sandbox.landlock_launch import Launch, system_python

    python = system_python()
    if python is None:
        return []

    def bare() -> None:
        subprocess.run(["true"], check=True)

    def launched() -> None:
        launch = Launch.open()
        try:
            process = subprocess.Popen(launch.argv(python, ["true"]), pass_fds=launch.child_fds)
            launch.close_child_ends()
            launch.send({"readable": ["/"], "writable": ["/tmp", "/dev"], "connect_ports": None})
            launch.status()
            assert process.wait() == 0
        finally:
            launch.close()

    rows: dict[str, tuple[list[float], list[float]]] = {
        "bare `true`": ([], []),
        "launcher + `true`": ([], []),
    }
    actions = {"bare `true`": bare, "launcher + `true`": launched}
    for _round in range(runs):
        for name, action in actions.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            action()
            wall = (time.perf_counter() - start) * 1000
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
            rows[name][0].append(wall)
            rows[name][1].append(cpu)
    return [(name, wall, statistics.median(cpu)) for name, (wall, cpu) in rows.items()]


if __name__ == "__main__":
    main()
