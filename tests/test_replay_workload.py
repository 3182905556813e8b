"""`corral replay` without the sandbox: workload parsing, cwd checks, dry runs and the workload's mix."""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from corral.fatigue.classic import would_prompt
from corral.fatigue.replay import WorkloadError, load_workload, render_report, replay, resolve_cwd

DATA = Path(__file__).resolve().parent / "data"
WORKLOAD = DATA / "workload.jsonl"


def _make_workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_workload", DATA / "make_workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "replay", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(DATA.parent.parent)},
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"command": "ls"}\nnot json\n', ":2: not valid JSON"),
        ('["ls"]\n', ":1: expected a JSON object"),
        ('{"cmd": "ls"}\n', ":1: unknown key 'cmd'"),
        ('{"cwd": "src"}\n', ":1: key 'command' must be a non-empty string"),
        ('{"command": "   "}\n', ":1: key 'command' must be a non-empty string"),
        ('{"command": "ls", "cwd": 3}\n', ":1: key 'cwd' must be a string"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text(text)
    with pytest.raises(WorkloadError, match=message):
        load_workload(path)


def test_blank_lines_are_skipped_and_numbers_kept(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('\n{"command": "ls", "category": "read"}\n\n{"command": "pwd", "cwd": "src"}\n')
    lines = load_workload(path)
    assert [(line.number, line.command, line.cwd, line.category) for line in lines] == [
        (2, "ls", None, "read"),
        (4, "pwd", "src", None),
    ]


def test_cwd_never_leaves_the_project(tmp_path: Path) -> None:
    """M02: a cwd from the input never widens policy."""
    project = tmp_path / "p"
    (project / "src").mkdir(parents=True)
    (project / "out").symlink_to(tmp_path)
    real = Path(os.path.realpath(project))
    assert resolve_cwd(real, None) == real
    assert resolve_cwd(real, ".") == real
    assert resolve_cwd(real, "src") == real / "src"
    for bad in ("..", "../p/../..", "/", str(real), "out", "missing", "src/../../x"):
        with pytest.raises(ValueError):
            resolve_cwd(real, bad)


def test_dry_run_classifies_every_line_and_flags_bad_cwds(tmp_path: Path) -> None:
    project = Path(os.path.realpath(tmp_path))
    (project / "src").mkdir()
    path = tmp_path / "w.jsonl"
    rows = [
        {"command": "ls", "category": "read"},
        {"command": "touch x", "category": "edit"},
        {"command": "cat README.md", "cwd": "src", "category": "read"},
        {"command": "rm -rf /", "cwd": "../..", "category": "edit"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = replay(path, load_workload(path), project, dry_run=True)
    summary = report.summary()
    assert (summary.commands, summary.classic_prompts, summary.prompts) == (3, 1, 0)
    assert [r.line.number for r in report.errors()] == [4]
    assert not any(r.ran for r in report.results)
    text = render_report(report)
    assert "classic approval would ask       1" in text
    assert "corral asked" not in text
    assert "w.jsonl:4: cwd '../..' is outside the project" in text


def test_cli_dry_run_on_the_workload(tmp_path: Path) -> None:
    result = _cli(str(WORKLOAD), "--project", str(tmp_path), "--dry-run", "--json")
    assert result.returncode in (0, 1), result.stderr  # 1: the sub-directory cwds do not exist here
    data = json.loads(result.stdout)
    expected = sum(would_prompt(json.loads(line)["command"]) for line in WORKLOAD.read_text().splitlines())
    ran = [line for line in data["lines"] if line["error"] is None]
    assert data["summary"]["classic_prompts"] == sum(line["classic_prompt"] for line in ran)
    assert sum(line["classic_prompt"] for line in data["lines"]) == expected
    assert result.stderr == ""  # no progress bar without a terminal


def test_cli_malformed_workload_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"command": "ls"}\n{"command": \n')
    result = _cli(str(path), "--dry-run")
    assert result.returncode == 2
    assert result.stderr.strip() == f"corral: {path}:2: not valid JSON (Expecting value)"
    missing = _cli(str(tmp_path / "absent.jsonl"), "--dry-run")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert _cli(str(path), "--on-violation", "maybe").returncode == 2


def test_workload_has_the_issue_7_mix() -> None:
    lines = load_workload(WORKLOAD)
    assert 250 <= len(lines) <= 500
    counts = collections.Counter(line.category for line in lines)
    share = {k: v / len(lines) for k, v in counts.items()}
    assert 0.37 <= share["read"] <= 0.43
    assert 0.13 <= share["test"] <= 0.17
    assert 0.13 <= share["build"] <= 0.17
    assert 0.08 <= share["edit"] <= 0.12
    assert 0.08 <= share["git"] <= 0.12
    for category in ("install", "fetch", "tmp", "outside", "credential"):
        assert counts[category] >= 3, category
    assert set(counts) == {
        "read",
        "test",
        "build",
        "edit",
        "git",
        "install",
        "fetch",
        "tmp",
        "outside",
        "credential",
    }


def test_workload_file_is_what_the_generator_writes(tmp_path: Path) -> None:
    module = _make_workload()
    generated = "".join(json.dumps(line) + "\n" for line in module.build_workload())
    assert WORKLOAD.read_text() == generated


def test_sample_repo_builds(tmp_path: Path) -> None:
    repo = _make_workload().make_sample_repo(tmp_path / "repo")
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo, capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 3
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
    for cwd in {line.cwd for line in load_workload(WORKLOAD) if line.cwd}:
        assert (repo / cwd).is_dir()
