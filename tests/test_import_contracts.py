"""The `corral run` path stays lean and the layers stay apart: checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

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
