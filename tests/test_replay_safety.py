"""`corral replay` is safe by default: it needs `--project`, never runs in the real home (commands see a
throwaway one, seeded with placeholders), `allow` allows nothing outside the project and that home, and
`--dry-run` works anywhere (a clone of corral included) without touching it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from boundary.violations import Violation, ViolationKind
from corral.decision import Decision, PromptRequest, Scope
from corral.fatigue.replay import ReplayAnswers
from corral.fatigue.replayhome import PLACEHOLDERS, ReplayHomeError, check_replay_home, seed_home
from tests.conftest import CORRAL

REPO = Path(__file__).resolve().parent.parent
WORKLOAD = REPO / "tests" / "data" / "workload.jsonl"


def _replay(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CORRAL, "replay", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _git_repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README.md").write_text("sample\n")
    return Path(os.path.realpath(path))


def test_running_needs_a_project(tmp_path: Path, isolated_home: Path) -> None:
    clone = _git_repo(tmp_path / "clone")
    result = _replay(str(WORKLOAD), cwd=clone)
    assert result.returncode == 2
    assert result.stderr == "corral: replay needs --project DIR (the project the workload runs in)\n"
    assert not (isolated_home / ".local/share/corral/ledger.sqlite3").exists(), "something ran"


def test_dry_run_works_in_a_clone_and_changes_nothing(tmp_path: Path) -> None:
    clone = _git_repo(tmp_path / "clone")
    status = ["git", "-C", str(clone), "status", "--porcelain", "--untracked-files=all"]
    before = subprocess.run(status, capture_output=True, text=True, check=True).stdout
    result = _replay(str(WORKLOAD), "--dry-run", "--json", cwd=clone)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["commands"] == 300 and report["dry_run"] is True
    assert subprocess.run(status, capture_output=True, text=True, check=True).stdout == before
    assert not (clone / ".git" / "index").exists(), "the dry run staged files"


def test_commands_see_a_throwaway_home_never_the_real_one(tmp_path: Path, isolated_home: Path) -> None:
    project = _git_repo(tmp_path / "project")
    real_bashrc = isolated_home / ".bashrc"
    real_bashrc.write_text("# mine\n")
    workload = tmp_path / "w.jsonl"
    lines = [
        "echo 'export EVIL=1' >> ~/.bashrc",
        "touch ~/agent-was-here",
        "echo $HOME > home.txt",
        "git add -A",
    ]
    workload.write_text("".join(json.dumps({"command": line}) + "\n" for line in lines))
    kept = tmp_path / "replay-home"
    result = _replay(
        str(workload), "--project", str(project), "--on-violation", "allow", "--home", str(kept), cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert real_bashrc.read_text() == "# mine\n"
    assert not (isolated_home / "agent-was-here").exists()
    assert (project / "home.txt").read_text().strip() == str(kept.resolve())
    assert (kept / "agent-was-here").exists()  # allowed, applied in the throwaway home
    # An append to a shell start-up file is captured against the file and, allowed, applied after
    # its content: in the throwaway home only, never in the real one (checked above).
    kept_bashrc = (kept / ".bashrc").read_text()
    assert kept_bashrc.endswith("export EVIL=1\n"), kept_bashrc
    assert kept_bashrc.count("export EVIL=1") == 1

    fresh = _replay(str(workload), "--project", str(project), "--on-violation", "allow", cwd=project)
    assert fresh.returncode == 0, fresh.stderr
    temporary = Path((project / "home.txt").read_text().strip())
    assert temporary != kept.resolve() and temporary.name.startswith("corral-replay-home-")
    assert not temporary.exists(), "the temporary home was left behind"
    assert real_bashrc.read_text() == "# mine\n"


@pytest.mark.parametrize("where", ["home", "inside-home", "above-home", "project"])
def test_home_may_not_be_the_real_home_or_the_project(
    tmp_path: Path, isolated_home: Path, where: str
) -> None:
    project = _git_repo(tmp_path / "project")
    home = {
        "home": isolated_home,
        "inside-home": isolated_home / "replay",
        "above-home": isolated_home.parent,
        "project": project / "home",
    }[where]
    result = _replay(str(WORKLOAD), "--project", str(project), "--home", str(home), cwd=project)
    assert result.returncode == 2
    assert result.stderr.startswith(f"corral: --home {home}: ")
    with pytest.raises(ReplayHomeError):
        check_replay_home(home, isolated_home, project)


def _request(*violations: Violation) -> PromptRequest:
    return PromptRequest(
        command="x", project=Path("/p"), violations=violations, groups=(), sensitive=frozenset(),
        reasons={}, summary="", timeout_s=1.0,
    )  # fmt: skip


def test_allow_denies_files_outside_the_project_and_the_replay_home(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    answers = ReplayAnswers("allow", confine=(project, home))
    inside = Violation(ViolationKind.FS_WRITE, str(home / "notes.txt"), "create")
    outside = Violation(ViolationKind.FS_WRITE, "/etc/cron.d/x", "create")
    host = Violation(ViolationKind.NET, "pypi.org:443", "connect")
    answer = answers(_request(inside, outside, host))
    assert isinstance(answer, dict)
    assert answer[inside] == Decision(Scope.PROJECT)
    assert answer[outside] == Decision(Scope.DENY)
    assert answer[host] == Decision(Scope.PROJECT)
    assert answers.prompts == 1


def test_seeded_home_holds_placeholders_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_home(home)
    (home / ".bashrc").write_text("kept\n")
    seed_home(home)  # a kept home keeps what earlier runs left
    assert (home / ".bashrc").read_text() == "kept\n"
    for relative in PLACEHOLDERS:
        assert (home / relative).is_file()
    assert "placeholder" in (home / ".ssh" / "id_rsa").read_text()
