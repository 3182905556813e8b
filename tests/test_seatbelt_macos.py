"""The generated Seatbelt profile and the Seatbelt runner under the real /usr/bin/sandbox-exec and the
real unified log (macOS only; skipped elsewhere, visibly). Each probe runs in a fresh sandbox and the
host is checked afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from boundary.violations import ViolationKind
from sandbox import seatbelt
from sandbox.backend import BackendParams
from sandbox.policy import Policy, build_policy
from sandbox.seatbelt import ProtectedLocation, SeatbeltParams
from sandbox.seatbelt_backend import SeatbeltBackend

pytestmark = pytest.mark.skipif(
    sys.platform != "darwin" or not seatbelt.SANDBOX_EXEC.exists(),
    reason="Seatbelt runs only on macOS (this is not macOS, or /usr/bin/sandbox-exec is missing)",
)


def run_under(params: SeatbeltParams, script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile.sb"
    profile.write_text(seatbelt.generate_profile(params))
    argv = seatbelt.sandbox_exec_argv(profile, ["/bin/sh", "-c", script])
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, cwd=params.workspace)


@pytest.fixture
def params(tmp_path: Path) -> SeatbeltParams:
    real = tmp_path.resolve()
    (real / "ws" / ".git" / "hooks").mkdir(parents=True)
    (real / "secret").mkdir()
    (real / "secret" / "key").write_text("SECRET")
    (real / "tmp").mkdir()
    return SeatbeltParams(
        tag="test",
        workspace=real / "ws",
        temp_dir=real / "tmp",
        hidden=(real / "secret",),
        protected=(ProtectedLocation((".git", "hooks"), True),),
    )


def test_workspace_writes_pass_and_writes_outside_are_refused(params: SeatbeltParams, tmp_path: Path) -> None:
    outside = tmp_path.resolve() / "outside"
    done = run_under(params, f"echo ok > made && echo x > {outside}", tmp_path)
    assert (params.workspace / "made").read_text() == "ok\n"
    assert not outside.exists()
    assert done.returncode != 0


def test_hidden_paths_are_unreadable(params: SeatbeltParams, tmp_path: Path) -> None:
    done = run_under(params, f"cat {params.hidden[0]}/key", tmp_path)
    assert "SECRET" not in done.stdout
    assert done.returncode != 0


def test_protected_paths_and_renaming_their_parent_are_refused(
    params: SeatbeltParams, tmp_path: Path
) -> None:
    run_under(
        params, "echo evil > .git/hooks/pre-commit; mv .git .git-moved; mv .git/hooks .git/h2", tmp_path
    )
    assert not (params.workspace / ".git" / "hooks" / "pre-commit").exists()
    assert (params.workspace / ".git" / "hooks").is_dir()
    assert not (params.workspace / ".git-moved").exists()


def test_no_network_without_a_proxy(params: SeatbeltParams, tmp_path: Path) -> None:
    done = run_under(params, "curl -sS --max-time 5 http://127.0.0.1:9/ 2>&1; echo status=$?", tmp_path)
    assert "status=0" not in done.stdout


# The runner itself (sandbox.seatbelt_backend): sandbox-exec, the unified log, re-run on approve.


@pytest.fixture
def runner_setup(tmp_path: Path) -> tuple[SeatbeltBackend, Policy, Path, Path]:
    real = tmp_path.resolve()
    home = real / "home"
    workspace = home / "project"
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("SECRET-KEY\n")
    policy = build_policy(
        workspace=workspace, cwd=workspace, home=home, environ={"PATH": "/usr/bin:/bin", "HOME": str(home)}
    )
    backend = SeatbeltBackend(BackendParams(runtime_dir=real / "run", cache_dir=real / "cache"))
    return backend, policy, workspace, home


def test_the_runner_reports_tagged_denials_with_the_linux_kinds(
    runner_setup: tuple[SeatbeltBackend, Policy, Path, Path],
) -> None:
    backend, policy, workspace, home = runner_setup
    script = (
        f"echo ok > made; echo x > {home}/outside.txt; echo hook > .git/hooks/pre-commit; "
        f"cat {home}/.ssh/id_rsa; exit 3"
    )
    result = backend.run(["/bin/sh", "-c", script], policy)
    assert result.exit_code == 3
    assert (workspace / "made").read_text() == "ok\n"
    assert not (home / "outside.txt").exists() and not (workspace / ".git/hooks/pre-commit").exists()
    kinds = {(v.kind, v.target) for v in result.violations}
    assert (ViolationKind.FS_WRITE, f"{home}/outside.txt") in kinds, result.violations
    assert (ViolationKind.FS_PROTECTED, f"{workspace}/.git/hooks/pre-commit") in kinds, result.violations
    assert (ViolationKind.FS_READ, f"{home}/.ssh/id_rsa") in kinds, result.violations
    backend.settle(result, [])  # denied: nothing re-runs
    assert not (home / "outside.txt").exists()


def test_an_approved_write_re_runs_the_command_with_that_path_writable(
    runner_setup: tuple[SeatbeltBackend, Policy, Path, Path],
) -> None:
    backend, policy, workspace, home = runner_setup
    script = f"echo run >> {workspace}/runs.log; echo x > {home}/outside.txt && exit 0; exit 9"
    result = backend.run(["/bin/sh", "-c", script], policy)
    assert result.exit_code == 9
    allowed = [v for v in result.violations if v.kind is ViolationKind.FS_WRITE]
    assert allowed and "re-runs the whole command" in allowed[0].detail  # said before the answer
    outcome = backend.settle(result, allowed)
    assert (home / "outside.txt").read_text() == "x\n"
    assert result.exit_code == 0  # the re-run's status
    assert (workspace / "runs.log").read_text() == "run\nrun\n"  # it really ran twice
    assert any(c.path == home / "outside.txt" for c in outcome.applied)
    assert any("re-running the command" in line for line in result.notices)
