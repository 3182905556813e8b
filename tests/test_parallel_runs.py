"""Parallel commands in one project: each gets its own slot and capture, and two that change the same
file (or a file the host changed meanwhile) report a conflict instead of silently losing one side.
Real bubblewrap, as root and as a normal user."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import CORRAL, Actor

PARALLEL = 16


def test_C01_sixteen_parallel_runs_all_succeed(actor: Actor) -> None:
    """16 at once, twice (the second round reuses slots whose throwaway cache layers exist already)."""
    for round_ in range(2):

        def one(index: int, round_: int = round_) -> subprocess.CompletedProcess[str]:
            return actor.sandboxed(
                f"echo {round_}-{index} > out-{round_}-{index}.txt; mkdir -p ~/.cache/x; "
                f"echo c > ~/.cache/x/{index}; sleep 0.3",
            )

        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            results = list(pool.map(one, range(PARALLEL)))
        failures = [(r.returncode, r.stderr) for r in results if r.returncode != 0]
        assert failures == [], failures
        for index in range(PARALLEL):
            out = actor.workspace / f"out-{round_}-{index}.txt"
            assert out.read_text() == f"{round_}-{index}\n"


def test_C02_two_commands_changing_one_file_report_a_conflict(actor: Actor) -> None:
    """The slow command started first and wrote README.md; the quick one wrote it too and finished
    first. The slow one's version is not applied over it: a conflict line and report entry."""
    report = actor.base / "slow-report.json"
    slow: dict[str, subprocess.CompletedProcess[str]] = {}

    def run_slow() -> None:
        slow["result"] = actor.run(
            "run",
            "--on-violation",
            "deny",
            "--report",
            str(report),
            "-c",
            "echo slow > README.md; sleep 2.5; echo done",
        )

    thread = threading.Thread(target=run_slow)
    thread.start()
    time.sleep(1.0)
    quick = actor.sandboxed("echo quick > README.md")
    assert quick.returncode == 0, quick.stderr
    assert (actor.workspace / "README.md").read_text() == "quick\n"
    thread.join(60)
    result = slow["result"]
    assert "done" in result.stdout, result.stderr
    assert (actor.workspace / "README.md").read_text() == "quick\n"
    lines = [line for line in result.stderr.splitlines() if "conflict" in line]
    assert len(lines) == 1 and "README.md" in lines[0], result.stderr
    refused = json.loads(report.read_text())["refused"]
    assert [r["reason"].split(":")[0] for r in refused] == ["conflict"]


_C03_SCRIPT = "echo started; sleep 1.5; echo cmd > README.md; echo other > o.txt"


def test_C03_a_file_the_host_changed_meanwhile_is_a_conflict(actor: Actor) -> None:
    readme = actor.workspace / "README.md"
    process = subprocess.Popen(
        [CORRAL, "run", "--on-violation", "deny", "-c", _C03_SCRIPT]
        if actor.uid == os.geteuid()  # the suite run by a normal user: that user is the actor
        else [
            "setpriv",
            f"--reuid={actor.uid}",
            f"--regid={actor.gid}",
            "--init-groups",
            "--",
            CORRAL,
            "run",
            "--on-violation",
            "deny",
            "-c",
            _C03_SCRIPT,
        ],
        cwd=actor.workspace,
        env=actor.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "started\n"  # the command runs: its overlay is mounted
    readme.write_text("edited by the person\n")
    _out, err = process.communicate(timeout=60)
    assert readme.read_text() == "edited by the person\n"
    assert (actor.workspace / "o.txt").read_text() == "other\n"  # the rest is applied
    assert any("conflict" in line and "README.md" in line for line in err.splitlines()), err


def test_C04_no_conflict_for_sequential_commands(actor: Actor) -> None:
    for word in ("one", "two", "three"):
        result = actor.sandboxed(f"echo {word} >> log.txt")
        assert result.returncode == 0 and "conflict" not in result.stderr, result.stderr
    assert (actor.workspace / "log.txt").read_text() == "one\ntwo\nthree\n"
