"""The README's set-up lines and configuration reference are the code's own, so they cannot drift.

- the reference section of README.md is exactly what `corral.configref` generates from the schemas the
  loaders validate against (`trust.config.SCHEMA`, `corral.userconfig.USER_SETTINGS`);
- every documented key loads, and the loaders accept no key the schema does not document;
- `.ci/run` runs the README's test command verbatim.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from corral.configref import BEGIN, END, render_reference, section_of
from corral.userconfig import USER_SETTINGS, UserConfigError, parse_user_config
from trust.config import SCHEMA, ConfigError, parse_project_config

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def _sh_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_readme_reference_is_the_generated_text() -> None:
    section = section_of(README.read_text(encoding="utf-8"))
    assert section is not None, f"README.md lacks the markers {BEGIN!r} … {END!r}"
    assert section == render_reference(), "run: python -m corral.configref --write README.md"


def test_check_mode_fails_on_a_stale_copy(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"intro\n{BEGIN}\nold text\n{END}\nrest\n", encoding="utf-8")
    check = [sys.executable, "-m", "corral.configref", "--check", str(stale)]
    assert subprocess.run(check, capture_output=True, cwd=REPO, check=False).returncode == 1
    write = [sys.executable, "-m", "corral.configref", "--write", str(stale)]
    subprocess.run(write, check=True, cwd=REPO)
    assert subprocess.run(check, capture_output=True, cwd=REPO, check=False).returncode == 0
    text = stale.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("rest\n") and "old text" not in text


_PROJECT_VALUES = {
    "path_list": '["build"]',
    "host_list": '["pypi.org"]',
    "command": '"true"',
}


def test_every_documented_project_key_loads(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    reference = render_reference()
    for spec in SCHEMA:
        assert f"`{spec.key}`" in reference
        if spec.kind == "env_table":
            text = f'[{spec.key}]\nRUST_LOG = "debug"\n'
        else:
            text = f"[{spec.table}]\n{spec.name} = {_PROJECT_VALUES[spec.kind]}\n"
        parse_project_config(text.encode(), tmp_path)


def test_the_project_loader_accepts_no_undocumented_key(tmp_path: Path) -> None:
    for table in {spec.table for spec in SCHEMA} - {"env"}:
        with pytest.raises(ConfigError, match=f"'{table}.undocumented'"):
            parse_project_config(f"[{table}]\nundocumented = 1\n".encode(), tmp_path)
    with pytest.raises(ConfigError, match="'extras'"):
        parse_project_config(b"[extras]\nx = 1\n", tmp_path)


def test_every_documented_user_key_loads_and_nothing_else() -> None:
    reference = render_reference()
    for setting in USER_SETTINGS:
        assert f"`{setting.key}`" in reference
        table, key = setting.key.split(".")
        value = {
            "seconds": "12",
            "count": "12",
            "paths": '["~/notes"]',
            "backend": '"bwrap"',
            "switch": "true",
        }.get(setting.kind, '["python"]')
        parse_user_config(f"[{table}]\n{key} = {value}\n".encode(), "config.toml")
        with pytest.raises(UserConfigError, match=f"config.toml: key '{table}.nope'"):
            parse_user_config(f"[{table}]\nnope = 1\n".encode(), "config.toml")
    with pytest.raises(UserConfigError, match="unknown table"):
        parse_user_config(b"[sandboxing]\nenabled = false\n", "config.toml")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    blocks = _sh_blocks(README.read_text(encoding="utf-8"))
    test_command = next(block for block in blocks if "pytest" in block)
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_setup_lines_need_no_sudo_as_root() -> None:
    """Both set-up lines install apt packages only when missing, through sudo only when not root."""
    blocks = _sh_blocks(README.read_text(encoding="utf-8"))
    setup = [block for block in blocks if "apt-get install" in block]
    assert len(setup) == 2
    for line in setup:
        assert '$([ "$(id -u)" = 0 ] || echo sudo)' in line
        assert "apt-get update && apt-get install -y" in line
        assert not re.search(r"(^|[;&|] *)sudo ", line)
