"""Discovery, fingerprint and display escaping: list and hash repo config without parsing or running it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from boundary.termsafe import visible, visible_bytes
from trust import discovery as discovery_module
from trust.discovery import FileCategory, discover
from trust.fingerprint import fingerprint


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".corral" / "hooks").mkdir(parents=True)
    (root / ".corral" / "config.toml").write_text('[network]\nallow = ["pypi.org"]\n')
    (root / ".corral" / "hooks" / "start.sh").write_text("echo start\n")
    return root


def test_lists_corral_files_with_size_and_hash(tmp_path: Path) -> None:
    root = _project(tmp_path)
    found = discover(root)
    paths = [f.path for f in found.files]
    assert paths == [".corral/config.toml", ".corral/hooks/start.sh"]
    config = found.get(".corral/config.toml")
    assert config is not None and config.category is FileCategory.CORRAL
    assert config.size == len(b'[network]\nallow = ["pypi.org"]\n')
    assert config.sha256 is not None and len(config.sha256) == 64
    assert found.config_bytes == (root / ".corral" / "config.toml").read_bytes()
    assert found.problems == ()


def test_inventories_other_agents_config(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / ".claude").mkdir()
    (root / ".claude" / "settings.json").write_text('{"hooks": {}}')
    (root / ".mcp.json").write_text("{}")
    for sub in (".codex", ".gemini", ".cursor", ".vscode"):
        (root / sub).mkdir()
    (root / ".codex" / "config.toml").write_text("x=1")
    (root / ".gemini" / "settings.json").write_text("{}")
    (root / ".cursor" / "mcp.json").write_text("{}")
    (root / ".vscode" / "tasks.json").write_text("{}")
    (root / ".envrc").write_text("export SECRET=hunter2\n")
    (root / ".env").write_text("TOKEN=hunter2\n")
    found = discover(root)
    categories = {f.path: f.category for f in found.files}
    for path in (
        ".claude/settings.json",
        ".mcp.json",
        ".codex/config.toml",
        ".gemini/settings.json",
        ".cursor/mcp.json",
        ".vscode/tasks.json",
    ):
        assert categories[path] is FileCategory.AGENT
    assert categories[".envrc"] is FileCategory.SHELL
    assert categories[".env"] is FileCategory.LISTED
    envrc, env = found.get(".envrc"), found.get(".env")
    assert envrc is not None and envrc.content is None and envrc.sha256 is not None
    assert env is not None and env.content is None and env.sha256 is None and env.size == 14


def test_symlink_leaving_project_is_a_problem_and_not_read(tmp_path: Path) -> None:
    root = _project(tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("outside secret")
    (root / ".corral" / "leak").symlink_to(outside)
    (root / ".claude").symlink_to(tmp_path)
    found = discover(root)
    leak = found.get(".corral/leak")
    assert leak is not None and leak.content is None and leak.problem == "symlink leaves the project"
    claude = found.get(".claude")
    assert claude is not None and claude.problem is not None
    assert all(b"outside secret" not in (f.content or b"") for f in found.files)
    assert found.problems


def test_symlinked_corral_dir_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.toml").write_text("x")
    (root / ".corral").symlink_to(elsewhere)
    found = discover(root)
    assert [f.path for f in found.files] == [".corral"]
    assert found.problems


def test_symlink_inside_project_is_hashed_with_its_target(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "scripts").mkdir()
    (root / "scripts" / "a.sh").write_text("a")
    (root / ".corral" / "hooks" / "a.sh").symlink_to("../../scripts/a.sh")
    before = fingerprint(discover(root))
    link = discover(root).get(".corral/hooks/a.sh")
    assert link is not None and link.content == b"a" and link.link_target == "../../scripts/a.sh"
    (root / "scripts" / "a.sh").write_text("b")
    assert fingerprint(discover(root)) != before


def test_fifo_does_not_block_discovery(tmp_path: Path) -> None:
    root = _project(tmp_path)
    os.mkfifo(root / ".corral" / "pipe")
    started = time.monotonic()
    found = discover(root)
    assert time.monotonic() - started < 5
    pipe = found.get(".corral/pipe")
    assert pipe is not None and pipe.problem == "not a regular file"


def test_large_file_is_a_problem_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery_module, "MAX_FILE_BYTES", 1000)
    root = _project(tmp_path)
    (root / ".corral" / "big").write_bytes(b"x" * 5000)
    big = discover(root).get(".corral/big")
    assert big is not None and big.content is None and big.problem is not None and "larger" in big.problem


def test_hostile_tree_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery_module, "MAX_FILES", 50)
    monkeypatch.setattr(discovery_module, "MAX_DEPTH", 5)
    root = _project(tmp_path)
    many = root / ".claude" / "many"
    many.mkdir(parents=True)
    for index in range(200):
        (many / f"f{index}").write_text("x")
    deep = root / ".codex"
    for level in range(10):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    found = discover(root)
    assert len(found.files) <= 51
    assert any("more than 50 files" in p for p in found.problems)
    assert any("deeper than 5" in p for p in found.problems)


def test_non_utf8_file_name_is_kept_and_fingerprinted(tmp_path: Path) -> None:
    root = _project(tmp_path)
    name = os.fsdecode(b"bad\xffname")
    (root / ".corral" / name).write_text("x")
    found = discover(root)
    assert found.get(f".corral/{name}") is not None
    fingerprint(found)  # encodes without error


def test_fingerprint_changes_on_any_byte_add_remove(tmp_path: Path) -> None:
    root = _project(tmp_path)
    base = fingerprint(discover(root))
    assert fingerprint(discover(root)) == base
    config = root / ".corral" / "config.toml"
    original = config.read_bytes()
    config.write_bytes(original[:-2] + b"]\r")  # one byte, same size
    assert fingerprint(discover(root)) != base
    config.write_bytes(original)
    assert fingerprint(discover(root)) == base
    (root / ".corral" / "extra").write_text("")
    added = fingerprint(discover(root))
    assert added != base
    (root / ".corral" / "extra").unlink()
    (root / ".corral" / "hooks" / "start.sh").unlink()
    assert fingerprint(discover(root)) not in (base, added)


def test_fingerprint_covers_agent_config_not_dotenv(tmp_path: Path) -> None:
    root = _project(tmp_path)
    base = fingerprint(discover(root))
    (root / ".env").write_text("A=1\n")
    assert fingerprint(discover(root)) == base  # .env is listed only
    (root / ".claude").mkdir()
    (root / ".claude" / "settings.json").write_text("{}")
    assert fingerprint(discover(root)) != base


def test_visible_escapes_terminal_bidi_and_zero_width() -> None:
    hostile = "a\x1b[2Jb\rc\u202etxt.exe\u2066d\u200be\ufeff\x07\x9b\u2028f\tg\nh"
    shown = visible(hostile)
    for char in ("\x1b", "\r", "\u202e", "\u2066", "\u200b", "\ufeff", "\x07", "\x9b", "\u2028"):
        assert char not in shown
    assert "^[[2J" in shown and "^M" in shown and "<U+202E>" in shown and "<U+200B>" in shown
    assert "\t" in shown and "\n" in shown
    assert "\n" not in visible("a\nb", one_line=True)
    assert visible_bytes(b"ok \xff") == "ok <0xFF>"
    assert visible("plain text, ünïcode ✓") == "plain text, ünïcode ✓"
