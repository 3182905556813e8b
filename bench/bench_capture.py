"""The capture path of many written files: µs per file to scan a layer, check it and apply it.

    .venv/bin/python bench/bench_capture.py [--files N] [--rounds N]

A command that writes N new files in the workspace leaves them in its capture layer's upper
directory; when it ends corral reads the layer (`sandbox.capture.read_changes`), checks each change
against the protected table (`Policy.is_protected`) and applies it (`sandbox.apply.apply_changes`,
exclusive: a rename of the captured inode). This lays out such a layer on the disk the workspace is
on (plain directories: the upper layer is one once the overlay is unmounted), N files spread over
`dirs` directories, and times each phase per round; bare creation of the same files (open, write,
close) is the reference a command pays anyway. Prints min / median / max CPU µs per file (user and
system time of this process: on a shared machine, wall time mostly measures waiting for a core).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boundary.violations import Change
from sandbox.apply import apply_changes
from sandbox.capture import CaptureLayer, read_changes
from sandbox.policy import Policy, build_policy

T = TypeVar("T")


def check_all(policy: Policy, changes: list[Change]) -> int:
    return sum(policy.is_protected(change.path, replaces_node=False) for change in changes)


def write_files(root: Path, count: int, dirs: int) -> None:
    for index in range(dirs):
        (root / "w10k" / f"d{index}").mkdir(parents=True)
    for index in range(count):
        fd = os.open(root / "w10k" / f"d{index % dirs}" / f"f{index}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x\n")
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--dirs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {"bare create": [], "scan": [], "policy": [], "apply": []}
    with tempfile.TemporaryDirectory(dir="/var/tmp") as temp:
        workspace = Path(temp) / "ws"
        (workspace / ".git").mkdir(parents=True)
        upper = Path(temp) / "upper"
        home = Path(temp) / "home"
        home.mkdir()
        policy = build_policy(workspace=workspace, cwd=workspace, home=home, environ=dict(os.environ))
        layer = CaptureLayer(target=workspace, lower=workspace, upper=upper)

        def per_file(label: str, run: Callable[[], T]) -> T:
            started = time.process_time()
            value = run()
            samples[label].append((time.process_time() - started) * 1e6 / args.files)
            return value

        print(f"load before: {os.getloadavg()[0]:.2f}")
        for _ in range(args.rounds):
            upper.mkdir()
            per_file("bare create", lambda: write_files(upper, args.files, args.dirs))
            changes = per_file("scan", lambda: read_changes(layer))
            assert len(changes) == args.files + args.dirs + 1, len(changes)
            per_file("policy", partial(check_all, policy, changes))
            outcome = per_file("apply", partial(apply_changes, workspace, changes, exclusive=True))
            assert not outcome.refused, outcome.refused[:3]
            shutil.rmtree(upper)
            shutil.rmtree(workspace / "w10k")
        print(f"{args.files} files in {args.dirs} directories, {args.rounds} rounds, CPU µs per file:")
        for label, values in samples.items():
            print(
                f"  {label:<12} min {min(values):7.2f}  median {statistics.median(values):7.2f}"
                f"  max {max(values):7.2f}"
            )
        print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
