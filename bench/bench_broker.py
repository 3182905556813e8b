"""What the session broker adds per command: interleaved rounds, medians and ranges, one machine.

    .venv/bin/python bench/bench_broker.py [--rounds 30]

Each round runs every row once, in turn, so load on the machine hits all rows alike:
- raw bwrap (minimal): `bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc true`;
- raw bwrap (corral's argv): the exact argv a live session builds (overlays, decoys, seccomp);
- Session.run (in the owner): the live session's own run of `true`, no broker;
- broker round trip (in process): connect, hello, run request, frames, exit frame, through the real
  server into the same Session (what the broker adds, without Python start-up);
- `corral run -- true` through the live session: a new client process, as an agent runs it;
- `corral run --no-session -- true`: the same command standalone (cold Session in a new process).
Runs in a throwaway workspace with HOME and XDG_* in a temporary directory; the session lives in this
process (a BrokerServer over a Session, as `corral session` does).
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    home = base / "home"
    workspace = home / "project"
    workspace.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime),
    )
    os.environ.update(env)

    from corral.broker import client, protocol
    from corral.broker.server import BrokerServer, SessionHost
    from corral.command import Command
    from corral.locations import Locations
    from corral.opening import compose_session
    from sandbox.bwrap import build_argv, prepare_layout, remove_run_dir
    from sandbox.locate import find_bwrap
    from sandbox.seccomp import filter_path

    locations = Locations.default()
    session = compose_session(workspace, locations=locations)
    host = SessionHost(lambda: session)
    server = BrokerServer(workspace, locations.runtime_dir, host, frontend="bench")
    server.start()
    bwrap = str(find_bwrap(workspace=workspace, cache_dir=locations.cache_dir).path)
    policy = session.policy(workspace)
    run_dir = locations.runtime_dir / "bench-layout"
    layout = prepare_layout(policy, run_dir, None)
    seccomp = filter_path(locations.cache_dir)
    corral = str(Path(sys.executable).with_name("corral"))

    def raw_minimal() -> None:
        subprocess.run(
            [bwrap, "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"],
            check=True,
        )

    def raw_corral_argv() -> None:
        fd = os.open(seccomp, os.O_RDONLY)
        try:
            argv = build_argv(Path(bwrap), policy, layout, ["true"], seccomp_fd=fd)
            subprocess.run(argv, check=True, pass_fds=(fd,))
        finally:
            os.close(fd)

    def owner_run() -> None:
        with host.lock:
            session.run(Command.from_argv(["true"]))

    def broker_in_process() -> None:
        sock = client.connect(locations.runtime_dir, workspace)
        assert sock is not None
        result = client.run(sock, protocol.RunRequest(argv=("true",)), on_output=lambda _s, _d: None)
        assert result.status == 0

    def cli_through_session() -> None:
        subprocess.run([corral, "run", "--", "true"], check=True, cwd=workspace, env=env)

    def cli_standalone() -> None:
        subprocess.run(
            [corral, "run", "--no-session", "--on-violation", "deny", "--", "true"],
            check=True,
            cwd=workspace,
            env=env,
        )

    rows: list[tuple[str, Callable[[], None]]] = [
        ("raw bwrap, minimal", raw_minimal),
        ("raw bwrap, corral's argv", raw_corral_argv),
        ("Session.run in the owner", owner_run),
        ("broker round trip, in process", broker_in_process),
        ("`corral run -- true` via the session", cli_through_session),
        ("`corral run --no-session -- true`", cli_standalone),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _ in rows}
    for _name, action in rows:
        action()  # warm-up
    for _ in range(args.rounds):
        for name, action in rows:
            start = time.perf_counter()
            action()
            samples[name].append((time.perf_counter() - start) * 1000)
    server.close()
    remove_run_dir(run_dir)
    session.close()
    reference = statistics.median(samples["raw bwrap, minimal"])
    owner = statistics.median(samples["Session.run in the owner"])
    print(f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs, uid {os.getuid()}")
    print(f"{'what':40} {'median ms':>10} {'min-max ms':>16} {'x raw bwrap':>12} {'+ over owner':>13}")
    for name, _action in rows:
        values = samples[name]
        median = statistics.median(values)
        spread = f"{min(values):.1f}-{max(values):.1f}"
        print(f"{name:40} {median:10.2f} {spread:>16} {median / reference:12.2f} {median - owner:13.2f}")


if __name__ == "__main__":
    main()
