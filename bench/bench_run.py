"""Per-command overhead: bare command vs raw bwrap vs corral, medians of several runs, one machine.

    .venv/bin/python bench/bench_run.py [--runs 30]

Rows:
- bare: `true` with no sandbox;
- raw bwrap (minimal): `bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc true`;
- raw bwrap (corral's argv): the exact argv corral builds (overlays, decoys, seccomp), run directly;
- corral Session.run (live session): one long-lived Session, as `corral shell` and the broker use it;
- corral run (CLI, cold): a fresh `corral run -- true` process, Python start-up included.
It runs in a throwaway workspace with HOME and XDG_* in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    home = base / "home"
    workspace = home / "project"
    workspace.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
    )
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    os.environ.update(env)

    from corral.command import Command
    from corral.locations import Locations
    from corral.opening import compose_session
    from sandbox.bwrap import build_argv, prepare_layout, remove_run_dir
    from sandbox.locate import find_bwrap
    from sandbox.seccomp import filter_path

    locations = Locations.default()
    session = compose_session(workspace, locations=locations)
    binary = find_bwrap(workspace=workspace, cache_dir=locations.cache_dir)
    bwrap = str(binary.path)

    def bare() -> None:
        subprocess.run(["true"], check=True)

    def raw_minimal() -> None:
        subprocess.run(
            [bwrap, "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"],
            check=True,
        )

    policy = session.policy(workspace)
    run_dir = locations.runtime_dir / "bench-layout"
    layout = prepare_layout(policy, run_dir, None)
    seccomp = filter_path(locations.cache_dir)

    def raw_corral_argv() -> None:
        fd = os.open(seccomp, os.O_RDONLY)
        try:
            argv = build_argv(binary.path, policy, layout, ["true"], seccomp_fd=fd)
            subprocess.run(argv, check=True, pass_fds=(fd,))
        finally:
            os.close(fd)

    def live_session() -> None:
        session.run(Command.from_argv(["true"]))

    corral_cli = str(Path(sys.executable).with_name("corral"))

    def cli() -> None:
        subprocess.run(
            [corral_cli, "run", "--on-violation", "deny", "--", "true"], check=True, cwd=workspace, env=env
        )

    rows = [
        ("bare `true`", median_ms(bare, args.runs)),
        ("raw bwrap, minimal", median_ms(raw_minimal, args.runs)),
        ("raw bwrap, corral's argv", median_ms(raw_corral_argv, args.runs)),
        ("corral, live Session.run", median_ms(live_session, args.runs)),
        ("corral run (CLI, cold start)", median_ms(cli, args.runs)),
    ]
    remove_run_dir(run_dir)
    session.close()
    reference = rows[1][1]
    print(f"{'what':34} {'median ms':>10} {'x raw bwrap':>12}")
    for name, value in rows:
        print(f"{name:34} {value:10.2f} {value / reference:12.2f}")


if __name__ == "__main__":
    main()
