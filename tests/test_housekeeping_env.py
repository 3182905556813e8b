"""Tools' own housekeeping never asks (`sandbox.housekeeping`), with the real bubblewrap, as root and as
an unprivileged user: Python bytecode for modules outside the workspace lands in the cache layer (no
`fs-write`, nothing in the home), cloud metadata fallbacks are off while their credentials are hidden,
update notifiers are off — and a caller's environment cannot turn them back on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sandbox.housekeeping import housekeeping_env
from tests.conftest import Actor


def test_bytecode_outside_the_workspace_never_asks(actor: Actor) -> None:
    # ~/.local/lib is on the home's read allow-list (user-installed interpreters and packages).
    library = actor.home / ".local" / "lib" / f"corral-{actor.base.name}"
    library.mkdir(parents=True)
    (library / "helper.py").write_text("VALUE = 42\n")
    actor.chown_tree(library)
    actor.chown_path(library)
    result = actor.sandboxed(
        f"python3 -c 'import sys; sys.path.insert(0, \"{library}\"); import helper; print(helper.VALUE)'"
    )
    assert result.returncode == 0, result.stderr
    assert "42" in result.stdout
    assert "corral: denied" not in result.stderr
    assert not (library / "__pycache__").exists()
    subprocess.run(["rm", "-rf", str(library)], check=True)


def test_housekeeping_variables_are_set_and_win(actor: Actor) -> None:
    actor.env["NO_UPDATE_NOTIFIER"] = ""
    actor.env["PYTHONPYCACHEPREFIX"] = str(actor.home / "elsewhere")
    result = actor.sandboxed("env")
    assert result.returncode == 0, result.stderr
    lines = set(result.stdout.splitlines())
    assert "AWS_EC2_METADATA_DISABLED=true" in lines  # ~/.aws is hidden
    assert "NO_UPDATE_NOTIFIER=1" in lines
    assert "npm_config_update_notifier=false" in lines
    assert f"PYTHONPYCACHEPREFIX={actor.home / '.cache' / 'python-bytecode'}" in lines


def test_metadata_fallback_follows_hiding(tmp_path: Path) -> None:
    home = tmp_path
    hidden = housekeeping_env(home, [home / ".aws"], [home / ".cache"])
    assert hidden["AWS_EC2_METADATA_DISABLED"] == "true"
    assert hidden["PYTHONPYCACHEPREFIX"] == str(home / ".cache" / "python-bytecode")
    shown = housekeeping_env(home, [], [])
    assert "AWS_EC2_METADATA_DISABLED" not in shown and "PYTHONPYCACHEPREFIX" not in shown
    assert shown["NO_UPDATE_NOTIFIER"] == "1"
