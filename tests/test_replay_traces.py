"""The replay harness of real sessions (`bench/replay_traces.py`) judges corral against baselines that
behave like a machine of their own: the comparison rules, and a baseline's persistent machine (a
server left in the background reachable by the next command, `ps` listing only the world's processes).
Real namespaces, no corral in between."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from bench.replay_traces import Step, World, judge, normalise, output_diff, run_baseline, same_output
from sandbox.sessionns import SessionNamespace


def _world(root: Path) -> World:
    world = World(root, "/Users/someone/Code/x", "/Users/someone", root / "run")
    for directory in (world.repo, world.home, world.tmp, world.runtime):
        directory.mkdir(parents=True)
    return world


def test_lines_in_another_order_are_the_same_output() -> None:
    assert same_output("a.txt:1:x\nb.txt:2:y\n", "b.txt:2:y\na.txt:1:x\n")
    assert not same_output("a.txt:1:x\n", "a.txt:1:x\na.txt:1:x\n")


def test_a_clients_note_of_the_proxy_variable_is_not_an_outcome(tmp_path: Path) -> None:
    world = _world(tmp_path)
    with_note = (
        b"* Uses proxy env variable no_proxy == 'localhost,127.0.0.1,::1'\n* Trying 127.0.0.1:3000...\n"
    )
    assert normalise(world, with_note) == normalise(world, b"* Trying 127.0.0.1:3000...\n")


def test_only_an_order_difference_is_not_a_breakage() -> None:
    step = Step(0, "rg -n x", background=False, exit_corral=0)
    judge(step, "b:1:x\na:1:x\n", (0, "a:1:x\nb:1:x\n"), (0, "b:1:x\na:1:x\n"), [{}, {}, {}])
    assert step.verdict == "same", step.why
    judge(step, "a:1:x\n", (0, "a:1:x\nb:1:x\n"), (0, "b:1:x\na:1:x\n"), [{}, {}, {}])
    assert step.verdict == "silent"
    assert "+a:1:x" not in step.diff and "-b:1:x" in step.diff
    assert output_diff("same\nnew\n", "same\nold\n").splitlines()[-2:] == ["-old", "+new"]


_ROOT = Path("/")
"""Where the baseline commands run: the world itself lies under /tmp here, which the world's /tmp hides."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_baseline_is_a_machine_of_its_own(tmp_path: Path) -> None:
    world = _world(tmp_path)
    port = _free_port()
    machine = SessionNamespace()
    try:
        started = run_baseline(
            world, machine, f"python3 -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 & echo started",
            _ROOT, 30.0, background=False,
        )  # fmt: skip
        assert started == (0, "started\n")
        reached = run_baseline(
            world, machine,
            f"for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:{port}/ && echo reached && break;"
            " sleep 0.1; done",
            _ROOT, 30.0, background=False,
        )  # fmt: skip
        assert reached == (0, "reached\n"), reached  # the server of the earlier command is still there
        status, listed = run_baseline(world, machine, "ps -e -o pid=,args=", _ROOT, 30.0, False)
        assert status == 0
        assert f"http.server {port}" in listed
        assert str(os.getpid()) not in listed.split()  # this test's own process is another machine's
    finally:
        machine.close()
    with socket.socket() as host_side:
        assert host_side.connect_ex(("127.0.0.1", port)) != 0  # it never listened on the host's loopback
