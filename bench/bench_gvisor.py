"""What the gVisor tier costs beside bwrap: the same commands through both backends, interleaved.

    .venv/bin/python bench/bench_gvisor.py [--rounds 10] [--markdown]

Each round runs every row once, in turn (so the machine's load hits all rows alike); the table shows the
median and the min–max of the rounds and each gVisor row's ratio to its bwrap row. Rows, for each backend:

- `true` through a live `Session.run` (the sandbox start and tear-down, no Python start-up);
- `python3 -c pass` through `Session.run` (an interpreter start: many system calls, many files read);
- 1,000 files written in the workspace by one `sh` (captured and applied; removed between rounds);
- `corral run --backend NAME -- true`, a fresh CLI process (what an agent's command costs cold).

It runs in a throwaway workspace with HOME and XDG_* in a temporary directory. Without a usable runsc
(see `sandbox.gvisor.INSTALL_HINT`) it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BACKENDS = ("bwrap", "gvisor")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    from sandbox.gvisor import RunscUnavailable, find_runsc

    try:
        runsc = find_runsc()
    except RunscUnavailable as error:
        print(f"nothing measured: {error}")
        return 1

    base = Path(tempfile.mkdtemp(prefix="corral-bench-gvisor-"))
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

    from corral.backendchoice import BackendRequest
    from corral.command import Command
    from corral.locations import Locations
    from corral.opening import compose_session

    locations = Locations.default()
    sessions = {
        name: compose_session(workspace, locations=locations, backend=BackendRequest(name, "bench"))
        for name in BACKENDS
    }
    corral_cli = str(Path(sys.executable).with_name("corral"))

    def session_row(name: str, argv: list[str]) -> Callable[[], None]:
        def run() -> None:
            outcome = sessions[name].run(Command.from_argv(argv))
            if outcome.exit_code != 0:
                raise RuntimeError(f"{name}: {argv} exited {outcome.exit_code}")

        return run

    def writes_row(name: str) -> Callable[[], None]:
        script = "mkdir w1k && i=0; while [ $i -lt 1000 ]; do echo $i > w1k/f$i; i=$((i+1)); done"

        def run() -> None:
            shutil.rmtree(workspace / "w1k", ignore_errors=True)
            outcome = sessions[name].run(Command.from_argv(["sh", "-c", script]))
            if outcome.exit_code != 0 or not (workspace / "w1k" / "f999").exists():
                raise RuntimeError(f"{name}: the 1,000 files were not applied")

        return run

    def cli_row(name: str) -> Callable[[], None]:
        def run() -> None:
            subprocess.run(
                [corral_cli, "run", "--backend", name, "--on-violation", "deny", "--", "true"],
                check=True,
                cwd=workspace,
                env=env,
                capture_output=True,
            )

        return run

    rows: list[tuple[str, str, Callable[[], None]]] = []
    for what, make in (
        ("`true`, Session.run", lambda n: session_row(n, ["true"])),
        ("`python3 -c pass`, Session.run", lambda n: session_row(n, ["python3", "-c", "pass"])),
        ("1,000 files written, Session.run", writes_row),
        ("`corral run -- true` (CLI, cold)", cli_row),
    ):
        for name in BACKENDS:
            rows.append((what, name, make(name)))

    for _what, _name, action in rows:
        action()  # warm-up: caches, compiled seccomp filters, decoys
    samples: dict[tuple[str, str], list[float]] = {(w, n): [] for w, n, _ in rows}
    load_before = os.getloadavg()[0]
    for _round in range(args.rounds):
        for what, name, action in rows:
            start = time.perf_counter()
            action()
            samples[(what, name)].append((time.perf_counter() - start) * 1000)
    load_after = os.getloadavg()[0]
    for session in sessions.values():
        session.close()
    shutil.rmtree(base, ignore_errors=True)

    header = ("what", "backend", "median ms", "min–max ms", "x bwrap")
    lines: list[tuple[str, ...]] = []
    for what, name, _action in rows:
        values = samples[(what, name)]
        median = statistics.median(values)
        reference = statistics.median(samples[(what, "bwrap")])
        lines.append(
            (what, name, f"{median:.0f}", f"{min(values):.0f}–{max(values):.0f}", f"{median / reference:.2f}")
        )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        print(f"{header[0]:36} {header[1]:8} {header[2]:>10} {header[3]:>14} {header[4]:>8}")
        for line in lines:
            print(f"{line[0]:36} {line[1]:8} {line[2]:>10} {line[3]:>14} {line[4]:>8}")
    print(
        f"{args.rounds} rounds, interleaved; {runsc.version} at {runsc.path}; "
        f"load average {load_before:.1f} before, {load_after:.1f} after; {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
