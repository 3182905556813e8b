"""The per-file policy check: microseconds per written file in `Policy.is_protected`.

    .venv/bin/python bench/bench_policy.py [--files N] [--rounds N]

A command that writes N files in the workspace has every one checked against the protected table
(plus corral's protected roots and the configured hooks directories) before anything is applied. This
builds a real policy for a temporary workspace, makes N paths shaped like a build's output (deep
source trees, node_modules, a few protected ones: `.git/hooks/...`, `.mvn/jvm.config`, NFD and
upper-case spellings), and times one pass over them per round, plain and as node replacements
(deletes and symlinks, which also match a protected path's ancestors). Prints min / median / max µs
per file over the rounds; the goal is at most 10 µs per file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.policy import Policy, build_policy


def workload(workspace: Path, count: int) -> list[Path]:
    """`count` absolute paths: mostly ordinary build output, one in fifty protected."""
    protected = (
        ".git/hooks/pre-commit",
        ".GIT/Hooks/post-checkout",
        unicodedata.normalize("NFD", ".git/config"),
        ".mvn/jvm.config",
        "gradle/wrapper/gradle-wrapper.jar",
        "sub/module/.envrc.local",
        ".vscode/tasks.json",
    )
    paths: list[Path] = []
    for index in range(count):
        if index % 50 == 0:
            relative = protected[(index // 50) % len(protected)]
        elif index % 3 == 0:
            relative = f"node_modules/pkg{index % 97}/lib/deep/dir/file{index}.js"
        else:
            relative = f"src/pkg{index % 13}/module{index % 7}/sub/generated_{index}.py"
        paths.append(workspace / relative)
    return paths


def one_round(policy: Policy, paths: list[Path], *, replaces_node: bool) -> float:
    """Microseconds per path for one pass."""
    started = time.perf_counter()
    for path in paths:
        policy.is_protected(path, replaces_node=replaces_node)
    return (time.perf_counter() - started) * 1e6 / len(paths)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        workspace = Path(temp) / "ws"
        (workspace / ".git").mkdir(parents=True)
        home = Path(temp) / "home"
        home.mkdir()
        policy = build_policy(workspace=workspace, cwd=workspace, home=home, environ=dict(os.environ))
        paths = workload(Path(os.path.realpath(workspace)), args.files)
        protected = sum(policy.is_protected(p, replaces_node=False) for p in paths)
        print(f"load before: {os.getloadavg()[0]:.2f}")
        print(f"{args.files} files ({protected} protected), {args.rounds} rounds, µs per file:")
        for label, replaces in (("write", False), ("delete/symlink", True)):
            samples = [one_round(policy, paths, replaces_node=replaces) for _ in range(args.rounds)]
            print(
                f"  {label:<15} min {min(samples):6.2f}  median {statistics.median(samples):6.2f}"
                f"  max {max(samples):6.2f}"
            )
        print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
