"""The generated Seatbelt profile and the Seatbelt runner under the real /usr/bin/sandbox-exec and the
real unified log (macOS only; skipped elsewhere, visibly). Each probe runs in a fresh sandbox and the
host is checked afterwards."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from boundary.violations import ViolationKind
from sandbox import seatbelt
from sandbox.backend import BackendParams
from sandbox.egress.environment import proxy_environment
from sandbox.policy import NetworkAccess, Policy, build_policy
from sandbox.runner import StdioSpec
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


class _OneAnswerProxy:
    """A network hook that answers every connection on the runner's listener with one HTTP response."""

    def __init__(self) -> None:
        self.connections = 0
        self._threads: list[threading.Thread] = []

    def attach(self, child_pid: int) -> None:
        raise AssertionError("a Seatbelt command has no network namespace to attach to")

    def serve_on(self, listener: socket.socket) -> None:
        def answer() -> None:
            listener.settimeout(20)
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                self.connections += 1
                connection.recv(65536)
                connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nproxied\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        self._threads.append(thread)


def test_the_network_is_corrals_proxy_port_and_nothing_else(
    runner_setup: tuple[SeatbeltBackend, Policy, Path, Path], tmp_path: Path
) -> None:
    """A command reaches corral's proxy through its proxy variables (the listener's port, on loopback);
    a direct connection to another port on this machine is refused."""
    backend, policy, workspace, home = runner_setup
    policy = build_policy(
        workspace=workspace,
        cwd=workspace,
        home=home,
        environ={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        network=NetworkAccess(proxy_env=proxy_environment(3128)),
    )
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        other.settimeout(3)
        port = other.getsockname()[1]
        hook = _OneAnswerProxy()
        script = (
            "curl -sS --max-time 10 http://example.com/; "
            f"curl -sS --noproxy '*' --max-time 3 http://127.0.0.1:{port}/ && echo direct-ok || echo direct-refused"
        )
        out = tmp_path / "out.txt"
        with out.open("w") as handle:
            result = backend.run(
                ["/bin/sh", "-c", script], policy, network=hook, stdio=StdioSpec(stdout=handle.fileno())
            )
        with pytest.raises(OSError):
            other.accept()  # nothing connected to it
    assert hook.connections == 1, out.read_text()
    assert out.read_text().splitlines() == ["proxied", "direct-refused"]
    assert result.exit_code == 0
