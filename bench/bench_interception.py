"""What seeing every network attempt costs: interception set-up per namespace, and a command in a session.

    .venv/bin/python bench/bench_interception.py [--runs 30]

Rows (medians and ranges, interleaved, one machine):
- proxy listener only: `open_listener_in` into a fresh user+net namespace (what every namespace paid
  before issue 13);
- interception set-up: `open_interception_in` into a fresh namespace (the helper, its sockets, `nft -f -`
  with the NAT rules, the local default routes) — paid once per network namespace: per command
  without a session namespace, once per session with one;
- Session.run `true`, interception on / off: one live Session, `Interceptor.open` replaced by a no-op
  for "off".
Each fresh namespace is an `unshare --user --map-root-user --net sleep` process made outside the timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def fresh_namespace() -> subprocess.Popen[bytes]:
    """A process in a new user+net namespace whose loopback is up (as bubblewrap leaves it)."""
    child = subprocess.Popen(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "sh",
            "-c",
            "ip link set lo up && echo ready && exec sleep 60",
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    if child.stdout.readline() != b"ready\n":
        raise RuntimeError("the namespace did not come up")
    return child


def timed_in_namespace(action: Callable[[int], object]) -> float:
    child = fresh_namespace()
    try:
        start = time.perf_counter()
        action(child.pid)
        return (time.perf_counter() - start) * 1000
    finally:
        child.kill()
        child.wait()


def summary(samples: list[float]) -> str:
    return f"median {statistics.median(samples):7.2f} ms  (range {min(samples):.2f}-{max(samples):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from sandbox.egress.interception import open_interception_in
    from sandbox.egress.netns import open_listener_in

    def listener_only(pid: int) -> None:
        open_listener_in(pid, 3128).close()

    def interception(pid: int) -> None:
        made = open_interception_in(pid, 3128)
        if made.nat_error:
            raise RuntimeError(made.nat_error)
        made.close()

    base = Path(tempfile.mkdtemp(prefix="corral-bench-net-"))
    home = base / "home"
    workspace = home / "project"
    workspace.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local/state"),
    )
    from corral.command import Command
    from corral.interceptor import Interceptor
    from corral.locations import Locations
    from corral.opening import compose_session
    from sandbox.egress.hostpolicy import HostPolicy

    session = compose_session(
        workspace, locations=Locations.default(), hosts=HostPolicy.from_config(source="bench"), record=False
    )
    real_open = Interceptor.open
    command = Command.from_argv(["true"])

    def run_with(enabled: bool) -> float:
        Interceptor.open = real_open if enabled else (lambda self, pid, port: None)  # type: ignore[method-assign,assignment]
        start = time.perf_counter()
        session.run(command)
        return (time.perf_counter() - start) * 1000

    rows: dict[str, list[float]] = {
        "proxy listener only (fresh netns)": [],
        "interception set-up (fresh netns)": [],
        "Session.run true, interception on": [],
        "Session.run true, interception off": [],
    }
    run_with(True)
    run_with(False)
    for _ in range(args.runs):  # interleaved: every row once per round
        rows["proxy listener only (fresh netns)"].append(timed_in_namespace(listener_only))
        rows["interception set-up (fresh netns)"].append(timed_in_namespace(interception))
        rows["Session.run true, interception on"].append(run_with(True))
        rows["Session.run true, interception off"].append(run_with(False))
    Interceptor.open = real_open  # type: ignore[method-assign]
    session.close()
    load = os.getloadavg()[0]
    print(f"{args.runs} rounds, load average {load:.2f} on {os.cpu_count()} cores")
    for name, samples in rows.items():
        print(f"{name:38s} {summary(samples)}")


if __name__ == "__main__":
    main()
