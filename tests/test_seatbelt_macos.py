"""The generated Seatbelt profile under the real /usr/bin/sandbox-exec (macOS only; skipped elsewhere,
visibly). Each probe runs in a fresh sandbox and the host is checked afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import seatbelt
from sandbox.seatbelt import ProtectedLocation, SeatbeltParams

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
