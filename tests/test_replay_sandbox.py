"""`corral replay` through the real sandbox: a short slice of the workload, two rounds, and the ledger."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.fatigue.replay import load_workload, replay
from corral.fatigue.stats import compute_stats
from corral.locations import Locations

DATA = Path(__file__).resolve().parent / "data"

SLICE = [
    {"command": "ls -la", "category": "read"},
    {"command": "cat README.md | wc -l", "category": "read"},
    {"command": "pwd", "cwd": "src", "category": "read"},
    {"command": "python3 -m unittest discover -s tests -t . -q", "category": "test"},
    {"command": "printf 'x\\n' > notes.txt", "category": "edit"},
    {"command": "git status --short", "category": "git"},
    {"command": "echo scratch > /tmp/agent-notes.txt && cat /tmp/agent-notes.txt", "category": "tmp"},
    {"command": "mkdir -p ~/.cache/sample-tool && date > ~/.cache/sample-tool/stamp", "category": "install"},
    {"command": "touch ~/agent-was-here", "category": "outside"},
    {"command": "cat ~/.aws/credentials", "category": "credential"},
]
SECRET = "REPLAY-TEST-SECRET-41c7"


def _sample_repo(path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_workload", DATA / "make_workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    repo: Path = module.make_sample_repo(path)
    return Path(os.path.realpath(repo))


@pytest.fixture
def home_outside_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home outside /tmp (the sandbox gives commands a private /tmp, so writes to a home there would
    never cross the boundary), with planted credentials; XDG_RUNTIME_DIR stays the conftest one."""
    if not os.access("/var/tmp", os.W_OK):
        pytest.skip("/var/tmp is not writable: no place for a home outside /tmp")
    base = Path(tempfile.mkdtemp(prefix="corral-replay-test-", dir="/var/tmp"))
    home = base / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(f"[default]\naws_secret_access_key={SECRET}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    try:
        yield home
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_two_rounds_of_a_workload_slice(tmp_path: Path, home_outside_tmp: Path) -> None:
    from sandbox.bwrap import SandboxSetupError

    home = home_outside_tmp
    repo = _sample_repo(home.parent / "repo")
    workload = tmp_path / "slice.jsonl"
    workload.write_text("".join(json.dumps(line) + "\n" for line in SLICE))
    lines = load_workload(workload)

    try:
        first = replay(workload, lines, repo, on_violation="allow", timeout_s=60)
    except SandboxSetupError as error:
        pytest.skip(f"the sandbox cannot start here: {error}")
    by_category = {r.line.category: r for r in first.results}
    assert all(r.ran and r.error is None for r in first.results)
    assert by_category["test"].exit_code == 0
    assert (repo / "notes.txt").read_text() == "x\n"  # workspace writes apply with no prompt
    assert not by_category["tmp"].prompted  # private /tmp
    assert not by_category["install"].prompted  # tool-chain cache
    assert not (home / ".cache" / "sample-tool").exists()  # ...which never leaks back to the host
    assert by_category["outside"].prompted
    assert by_category["outside"].violations[0]["decision"] == "project"
    assert (home / "agent-was-here").exists()  # allowed: applied without a re-run
    # A credential read already failed inside the sandbox: reported and recorded, never asked.
    assert not by_category["credential"].prompted
    assert by_category["credential"].violations[0]["kind"] == "fs-read"
    assert by_category["credential"].violations[0]["decision"] == "deny"

    summary = first.summary()
    assert (summary.commands, summary.prompts) == (10, 1)
    assert summary.classic_prompts == 5  # unittest, printf >, echo >, mkdir, touch

    (home / "agent-was-here").unlink()
    second = replay(workload, lines, repo, on_violation="allow", timeout_s=60)
    prompted = [r.line.category for r in second.results if r.prompted]
    assert prompted == []  # the project rule answers `touch ~/x`
    assert (home / "agent-was-here").exists()

    # `corral stats` reads the same numbers back from the ledger.
    ledger = Locations.default().ledger_path
    for report in (first, second):
        assert report.session_id is not None
        stats = compute_stats(ledger, session_id=report.session_id).total
        mine = report.summary()
        assert (stats.commands, stats.prompts, stats.classic_prompts) == (
            mine.commands,
            mine.prompts,
            mine.classic_prompts,
        )
    both = compute_stats(ledger, project=str(repo)).total
    assert (both.commands, both.prompts) == (20, 1)


def test_cli_replay_prints_the_fatigue_report(tmp_path: Path, home_outside_tmp: Path) -> None:
    repo = _sample_repo(home_outside_tmp.parent / "repo")
    workload = tmp_path / "slice.jsonl"
    workload.write_text("".join(json.dumps(line) + "\n" for line in SLICE[:3] + SLICE[-2:]))
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "replay", str(workload), "--project", str(repo)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode == 125:
        pytest.skip(f"the sandbox cannot start here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "classic approval would ask       1" in result.stdout
    assert (
        "corral asked                     1" in result.stdout
    )  # denied: touch ~/x (reads are reported, not asked)
    assert not (home_outside_tmp / "agent-was-here").exists()  # --on-violation deny (default)
    assert SECRET not in result.stdout + result.stderr
