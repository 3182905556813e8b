"""Every print path of the CLI goes through the one escaping function: hostile names fed through
`rules add`/`rules list`, denial lines and `not applied` hints of `corral run`, `trust`, `stats` and
`doctor` reach the terminal only as visible labels, never as control sequences."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from boundary.termsafe import visible

CORRAL = str(Path(sys.executable).with_name("corral"))
HOSTILE = "n\x1b[2J\x1b]52;c;aGk=\x07\u202eexe.txt\u200b\x9b1m\u2066"
RAW = ("\x1b", "\x07", "\u202e", "\u200b", "\x9b", "\u2066")


def _corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CORRAL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def _assert_inert(result: subprocess.CompletedProcess[str], *, expect_label: bool = True) -> None:
    shown = result.stdout + result.stderr
    for char in RAW:
        assert char not in shown, f"raw {char!r} reached the terminal: {shown!r}"
    if expect_label:
        assert "^[[2J" in shown and "<U+202E>" in shown and "<U+200B>" in shown, shown


@pytest.fixture
def project(isolated_home: Path) -> Path:
    workspace = isolated_home / f"proj{HOSTILE}"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    return workspace


def test_rules_add_and_list_show_hostile_targets_inert(project: Path, isolated_home: Path) -> None:
    target = isolated_home / f"out{HOSTILE}"
    added = _corral("rules", "add", "--project", str(project), "--path", str(target), cwd=project)
    assert added.returncode == 0, added.stderr
    _assert_inert(added)
    listed = _corral("rules", "list", cwd=project)
    assert listed.returncode == 0
    _assert_inert(listed)
    as_json = _corral("rules", "list", "--json", cwd=project)
    _assert_inert(as_json, expect_label=False)  # JSON escapes itself (\u001b): still parseable


def test_run_denial_lines_and_stats_show_hostile_names_inert(project: Path, isolated_home: Path) -> None:
    outside = isolated_home / f"outside{HOSTILE}"
    script = f"printf data > '{outside}'; echo done"
    ran = _corral("run", "--on-violation", "deny", "-c", script, cwd=project)
    assert not outside.exists()
    assert "denied fs-write" in ran.stderr
    _assert_inert(ran)
    stats = _corral("stats", cwd=project)
    assert stats.returncode == 0, stats.stderr
    _assert_inert(stats, expect_label=False)
    doctor = _corral("doctor", cwd=project)
    _assert_inert(doctor, expect_label=False)


def test_deletion_is_reported_as_a_deletion_with_its_count(project: Path, isolated_home: Path) -> None:
    victims = isolated_home / "victims"
    victims.mkdir()
    for index in range(3):
        (victims / f"f{index}").write_text("keep")
    ran = _corral("run", "--on-violation", "deny", "-c", f"rm -f {victims}/f0", cwd=project)
    assert (victims / "f0").exists()
    assert "deletes 1 path" in ran.stderr, ran.stderr


def test_trust_output_shows_hostile_project_names_inert(project: Path) -> None:
    status = _corral("trust", "status", str(project), cwd=project)
    _assert_inert(status)
    shown = _corral("trust", "show", str(project), cwd=project)
    _assert_inert(shown)
    listing = _corral("trust", "deny", str(project), cwd=project)
    _assert_inert(listing)
    records = _corral("trust", "list", cwd=project)
    _assert_inert(records)


def test_the_cli_edge_escapes_whatever_a_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from corral.termsafe import inert_stdio, raw_stream

    with inert_stdio():
        print(f"corral: not applied: {HOSTILE}: refused")
        print(HOSTILE, file=sys.stderr)
        raw_stream(sys.stderr).write("\r")  # corral's own progress-bar return stays a return
    captured = capsys.readouterr()
    assert captured.out == f"corral: not applied: {visible(HOSTILE)}: refused\n"
    assert captured.err == visible(HOSTILE) + "\n\r"
