"""The `corral run` path stays lean and the layers stay apart: checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

UI = ("textual", "prompt_toolkit", "rich")


@pytest.mark.parametrize(
    "module",
    [
        "corral.run",
        "cli.commands.run_cmd",
        "corral.session",
        "sandbox.runner",
        "trust.gate",
        "corral.opening",
    ],
)
def test_no_ui_library_is_imported(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {UI!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_corral_run_does_not_load_the_http_proxy_until_a_connection() -> None:
    code = "import sys, corral.run; print('h11' in sys.modules, 'sandbox.egress.proxy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"


def _contracts() -> list[dict[str, object]]:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = pyproject["tool"]["importlinter"]["contracts"]
    return contracts


def _strings(value: object) -> list[str]:
    assert isinstance(value, list) and all(isinstance(item, str) for item in value)
    return [str(item) for item in value]


def test_the_contracts_say_the_whole_picture() -> None:
    """cli above tui above the core above sandbox | trust above the leaf `boundary`; sandbox and trust
    independent; no UI library below the front ends."""
    by_type: dict[str, list[dict[str, object]]] = {}
    for contract in _contracts():
        by_type.setdefault(str(contract["type"]), []).append(contract)
    [layers] = by_type["layers"]
    assert layers["layers"] == ["cli", "tui", "corral", "sandbox | trust", "boundary"]
    [independence] = by_type["independence"]
    assert sorted(_strings(independence["modules"])) == ["sandbox", "trust"]
    forbidden = {
        module: set(_strings(contract["forbidden_modules"]))
        for contract in by_type["forbidden"]
        for module in _strings(contract["source_modules"])
    }
    for core in ("boundary", "corral", "sandbox", "trust"):
        assert {"textual", "prompt_toolkit", "rich"} <= forbidden[core], core
    assert "argparse" in forbidden["corral"]  # the command line hands the core typed values


def test_the_contracts_are_kept() -> None:
    """The same check CI runs: a broken contract fails the suite too, not only `.ci/run`."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("lint-imports is not installed next to this interpreter")
    result = subprocess.run([str(lint)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 broken" in result.stdout
