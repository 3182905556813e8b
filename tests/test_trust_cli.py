"""`corral trust` end to end through the installed entry point, with HOME and XDG_* in tmp_path.

Covers the issue's "done when" for the trust side (hooks that would touch a marker leave none on
`show`; one changed byte makes `status` exit 1 and `show` print the diff), T09 (a repo `.env` cannot move
corral's state), T10/T12 (arguments come from the command line only, nothing trusts implicitly).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.commands.trust_cmd import default_project_dir

CORRAL = str(Path(sys.executable).with_name("corral"))


def _corral(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CORRAL, "trust", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        env=dict(os.environ),
    )


def _project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "repo"
    markers = tmp_path / "markers"
    markers.mkdir()
    (root / ".corral" / "hooks").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "src").mkdir()
    (root / ".corral" / "hooks" / "start.sh").write_text(
        f"#!/bin/sh\ntouch {markers}/hook\n# hidden \x1b[8mconcealed\x1b[0m\r\n"
    )
    (root / ".corral" / "config.toml").write_text(
        '[network]\nallow = ["pypi.org"]\n'
        "[hooks]\n"
        'session_start = ".corral/hooks/start.sh"\n'
        f'after_command = "touch {markers}/after"\n'
        "# \u202eevil\n"
    )
    return root, markers


def test_status_show_grant_change_cycle(tmp_path: Path) -> None:
    root, markers = _project(tmp_path)
    status = _corral("status", cwd=root / "src")  # DIR defaults to the git root
    assert (
        status.returncode == 1 and status.stdout.startswith("untrusted ") and status.stdout.count("\n") == 1
    )

    show = _corral("show", cwd=root)
    assert show.returncode == 0
    assert "\x1b" not in show.stdout and "\u202e" not in show.stdout and "\r" not in show.stdout
    assert "^[[8mconcealed" in show.stdout and "<U+202E>" in show.stdout
    assert '! | allow = ["pypi.org"]' in show.stdout
    assert "! network.allow = pypi.org" in show.stdout
    assert f"after_command: touch {markers}/after" in show.stdout
    assert list(markers.iterdir()) == []

    grant = _corral("grant", str(root), cwd=tmp_path)
    assert grant.returncode == 0, grant.stderr
    assert _corral("status", cwd=root).returncode == 0

    config = root / ".corral" / "config.toml"
    config.write_bytes(config.read_bytes().replace(b"pypi.org", b"pypi.orh"))
    status = _corral("status", cwd=root)
    assert status.returncode == 1 and status.stdout.startswith("changed ")
    show = _corral("show", cwd=root)
    assert '-allow = ["pypi.org"]' in show.stdout and '+allow = ["pypi.orh"]' in show.stdout
    assert list(markers.iterdir()) == []

    listing = _corral("list", cwd=tmp_path)
    assert listing.returncode == 0 and "trusted" in listing.stdout and str(root) in listing.stdout
    assert _corral("deny", cwd=root).returncode == 0
    assert _corral("status", cwd=root).stdout.startswith("denied ")
    assert _corral("revoke", cwd=root).returncode == 0
    assert _corral("status", cwd=root).stdout.startswith("untrusted ")


def test_grant_refuses_home_and_root(tmp_path: Path) -> None:
    home = Path(os.environ["HOME"])
    (home / ".corral").mkdir()
    (home / ".corral" / "config.toml").write_text("")
    for target in (str(home), "/"):
        result = _corral("grant", target, cwd=tmp_path)
        assert result.returncode == 1
        assert "can never be trusted" in result.stderr
    assert _corral("status", str(home), cwd=tmp_path).returncode == 1


def test_store_lives_in_the_users_data_dir_whatever_the_repo_says(tmp_path: Path) -> None:
    """T09: a repo `.env`/`.envrc` naming other homes or state dirs changes nothing."""
    root, _ = _project(tmp_path)
    (root / ".env").write_text("HOME=./h\nXDG_DATA_HOME=./data\nCORRAL_HOME=./c\nCORRAL_DATA_DIR=./d\n")
    (root / ".envrc").write_text("export XDG_DATA_HOME=./data\n")
    assert _corral("grant", cwd=root).returncode == 0
    store_dir = Path(os.environ["XDG_DATA_HOME"]) / "corral" / "trust"
    assert len(list(store_dir.glob("*.json"))) == 1
    for name in ("h", "data", "c", "d"):
        assert not (root / name).exists()


def test_nothing_trusts_implicitly(tmp_path: Path) -> None:
    """T10/T12: no variable, piped input, repo file or odd argument trusts a project."""
    root, markers = _project(tmp_path)
    (root / ".corral" / "args").write_text("grant\n")
    (root / ".corralrc").write_text("trust grant --yes\n")
    (root / "corral.toml").write_text("[trust]\nauto = true\n")
    env = {**os.environ, "CI": "1", "CORRAL_TRUST": "1", "CORRAL_TRUST_ALL": "1", "CORRAL_YES": "1"}
    for args in (("status",), ("show",)):
        result = subprocess.run(
            [CORRAL, "trust", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            input="y\ny\n",
            timeout=60,
        )
        assert result.returncode == (1 if args == ("status",) else 0)
    status = subprocess.run([CORRAL, "trust", "status"], cwd=root, env=env, capture_output=True, text=True)
    assert status.stdout.startswith("untrusted ")
    # an argument that looks like an option is a usage error, never a grant
    usage = _corral("status", "--grant", cwd=root)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    assert _corral("status", cwd=root).returncode == 1
    assert list(markers.iterdir()) == []


def test_grant_refuses_invalid_config_and_reports_one_line(tmp_path: Path) -> None:
    root, _ = _project(tmp_path)
    (root / ".corral" / "config.toml").write_text('[sandbox]\nenabled = false\n[network]\nallow = ["*"]\n')
    result = _corral("grant", cwd=root)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("a project can never turn the sandbox off")
    assert result.stderr.count("\n") == 1
    assert "Config error" in result.stdout
    assert _corral("status", cwd=root).returncode == 1


def test_usage_without_action(tmp_path: Path) -> None:
    assert _corral(cwd=tmp_path).returncode == 2


def test_default_dir_walks_up_to_git_without_running_git(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".git").write_text("gitdir: /nonexistent\n")  # a .git file is enough; nothing is read
    assert default_project_dir(root / "a" / "b") == root
    plain = tmp_path / "plain"
    plain.mkdir()
    if not any((p / ".git").exists() for p in (plain, *plain.parents)):
        assert default_project_dir(plain) == plain


@pytest.mark.parametrize("action", ["status", "show"])
def test_missing_directory_is_a_one_line_error(tmp_path: Path, action: str) -> None:
    result = _corral(action, str(tmp_path / "missing"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
