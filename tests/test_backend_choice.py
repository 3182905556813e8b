"""The backend factory: `auto` is bwrap, a backend that cannot run refuses (exit 125, one line naming
what is missing), `--backend` beats the config key, and `doctor` / `policy` say which backend runs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.backendchoice import ChosenBackend, effective_request, request_backend
from sandbox import backend as backend_module
from sandbox.backend import BackendParams, BackendRefused, BackendTraits, Registration, choose, choose_backend
from sandbox.bwrap_backend import BwrapBackend
from sandbox.landlock_backend import LandlockBackend
from sandbox.seatbelt import SANDBOX_EXEC
from tests.conftest import CORRAL, LANDLOCK_MISSING


def _corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CORRAL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    return workspace


def _params(tmp_path: Path, requested: str = "auto") -> BackendParams:
    return BackendParams(
        runtime_dir=tmp_path / "run", cache_dir=tmp_path / "cache", requested=requested, requested_by="test"
    )


class _Never:
    """A registered backend that can never run here (the factory's own logic, not a boundary)."""

    traits = BackendTraits(name="never", title="never", enforces="nothing", cannot=("anything",))

    def __init__(self, params: BackendParams) -> None:
        raise AssertionError("an unavailable backend is never built")

    @staticmethod
    def unavailable(params: BackendParams) -> str | None:
        return "the never-kernel module is missing"


@pytest.fixture
def never_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(backend_module.BACKENDS, "gvisor", Registration(__name__, "_Never"))
    yield


def test_auto_is_bwrap_by_default(tmp_path: Path, isolated_home: Path) -> None:
    backend, reason = choose_backend(_params(tmp_path))
    assert isinstance(backend, BwrapBackend)
    assert backend.traits.name == "bwrap" and reason == "bwrap: the default"


def test_a_forced_backend_that_cannot_run_refuses_naming_what_is_missing(
    tmp_path: Path, never_registered: None
) -> None:
    with pytest.raises(BackendRefused, match=r"gvisor .*from test.* the never-kernel module is missing"):
        choose(_params(tmp_path, "gvisor"))


def test_an_unregistered_backend_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(backend_module.BACKENDS, "seatbelt")
    with pytest.raises(BackendRefused, match="seatbelt backend is not part of this corral build"):
        choose(_params(tmp_path, "seatbelt"))


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal off macOS")
def test_seatbelt_off_macos_refuses_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        BackendRefused, match=r"backend seatbelt \(from test\) cannot run: Seatbelt runs only on macOS$"
    ):
        choose(_params(tmp_path, "seatbelt"))


@pytest.mark.skipif(LANDLOCK_MISSING is not None, reason=f"Landlock backend: {LANDLOCK_MISSING}")
def test_auto_falls_back_to_landlock_where_bwrap_cannot_run_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(backend_module.BACKENDS, "bwrap", Registration(__name__, "_Never"))
    choice = choose(_params(tmp_path))
    assert isinstance(choice.backend, LandlockBackend) and choice.fallback
    assert choice.reason == (
        "landlock: automatic fallback, because bwrap cannot run (the never-kernel module is missing)"
    )
    warning = ChosenBackend(choice.backend, choice.reason, choice.fallback).warning()
    assert warning is not None
    assert warning.startswith("bwrap cannot run (the never-kernel module is missing), so commands run under")
    assert "cannot protect paths in the workspace" in warning


def test_auto_is_seatbelt_on_macos_and_bwrap_then_landlock_on_linux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert backend_module.auto_order("darwin") == ("seatbelt",)
    assert backend_module.auto_order("linux") == ("bwrap", "landlock")
    monkeypatch.setattr(sys, "platform", "darwin")
    if not SANDBOX_EXEC.exists():  # not a Mac: `auto` tries Seatbelt only, says why it cannot run
        with pytest.raises(BackendRefused, match=r"^no sandbox backend can run here: seatbelt cannot run \("):
            choose(_params(tmp_path))


def test_auto_refuses_naming_each_backend_when_none_can_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("bwrap", "landlock"):
        monkeypatch.setitem(backend_module.BACKENDS, name, Registration(__name__, "_Never"))
    with pytest.raises(BackendRefused) as refused:
        choose(_params(tmp_path))
    assert str(refused.value) == (
        "no sandbox backend can run here: bwrap cannot run (the never-kernel module is missing); "
        "landlock cannot run (the never-kernel module is missing)"
    )


def test_a_backend_asked_for_by_name_never_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(backend_module.BACKENDS, "bwrap", Registration(__name__, "_Never"))
    with pytest.raises(BackendRefused, match=r"^backend bwrap \(from test\) cannot run: the never-kernel"):
        choose(_params(tmp_path, "bwrap"))


def test_command_line_beats_config_beats_auto() -> None:
    try:
        assert effective_request(None, "cfg").name == "auto"
        configured = effective_request("landlock", "/u/config.toml")
        assert configured.name == "landlock" and "sandbox.backend" in configured.source
        request_backend("bwrap")
        assert effective_request("landlock", "/u/config.toml").source == "--backend"
    finally:
        request_backend(None)


def test_run_with_a_backend_that_cannot_run_exits_125_in_one_line(
    tmp_path: Path, isolated_home: Path
) -> None:
    workspace = _workspace(tmp_path)
    marker = workspace / "ran"
    result = _corral("run", "--backend", "seatbelt", "--", "touch", str(marker), cwd=workspace)
    assert result.returncode == 125
    assert result.stderr.strip().count("\n") == 0
    assert "backend seatbelt (from --backend) cannot run" in result.stderr
    assert not marker.exists()


def test_the_config_key_chooses_and_is_named_when_it_cannot_run(tmp_path: Path, isolated_home: Path) -> None:
    workspace = _workspace(tmp_path)
    config = isolated_home / ".config" / "corral" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[sandbox]\nbackend = "seatbelt"\n')
    result = _corral("run", "--", "true", cwd=workspace)
    assert result.returncode == 125, result.stderr
    assert f"{config} key 'sandbox.backend'" in result.stderr
    # --backend overrides the config for this command.
    assert _corral("run", "--backend", "bwrap", "--", "true", cwd=workspace).returncode == 0
    config.write_text('[sandbox]\nbackend = "docker"\n')
    bad = _corral("run", "--", "true", cwd=workspace)
    assert bad.returncode == 2 and "key 'sandbox.backend': expected one of auto, bwrap" in bad.stderr


def test_doctor_and_policy_say_which_backend_runs_and_why(tmp_path: Path, isolated_home: Path) -> None:
    workspace = _workspace(tmp_path)
    doctor = _corral("doctor", "--project", str(workspace), cwd=workspace)
    assert "ok   backend: bubblewrap" in doctor.stdout and "bwrap: the default" in doctor.stdout
    elsewhere = "landlock" if sys.platform == "darwin" else "seatbelt"  # a backend of another platform
    refused = _corral("doctor", "--project", str(workspace), "--backend", elsewhere, cwd=workspace)
    assert refused.returncode == 1
    assert f"FAIL backend: backend {elsewhere} (from --backend) cannot run" in refused.stdout
    policy = _corral("policy", "--json", "--project", str(workspace), cwd=workspace)
    assert policy.returncode == 0, policy.stderr
    view = json.loads(policy.stdout)["backend"]
    assert view["name"] == "bwrap" and view["reason"] == "bwrap: the default" and view["captures_writes"]
    text = _corral("policy", "--project", str(workspace), cwd=workspace)
    assert "backend: bubblewrap (Linux namespaces + overlayfs capture) (bwrap: the default)" in text.stdout
