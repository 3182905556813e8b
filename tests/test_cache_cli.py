"""`corral cache path|clean`: the per-project cache layer is findable (npm's "log written to
~/.npm/_logs/…" inside the sandbox is a host path `cache path` prints) and removable safely (never
following a link a sandboxed command left in the layer, not while a command holds the layer)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tests.conftest import Actor


def test_a_log_written_in_the_sandbox_is_found_on_the_host(actor: Actor) -> None:
    result = actor.sandboxed("mkdir -p ~/.npm/_logs && echo 'npm ERR! log' > ~/.npm/_logs/debug-0.log")
    assert result.returncode == 0, result.stderr
    assert not (actor.home / ".npm").exists(), "the cache write reached the home"

    layer = actor.run("cache", "path")
    assert layer.returncode == 0, layer.stderr
    layer_dir = Path(layer.stdout.strip())
    assert layer_dir.is_dir() and str(layer_dir).startswith(str(actor.state_home / ".local/share/corral"))

    found = actor.run("cache", "path", "~/.npm/_logs/debug-0.log")
    assert found.returncode == 0, found.stderr
    host_path = Path(found.stdout.strip())
    assert layer_dir in host_path.parents
    assert host_path.read_text() == "npm ERR! log\n"

    outside = actor.run("cache", "path", str(actor.home / "notes.txt"))
    assert outside.returncode == 1
    assert "not inside a tool-chain cache directory" in outside.stderr


def test_clean_removes_the_layer_without_following_links(actor: Actor) -> None:
    keep = actor.outside / "keep.txt"
    keep.write_text("mine\n")
    actor.chown_tree(actor.outside)
    script = (
        f"mkdir -p ~/.cache/tool && ln -s {actor.outside} ~/.cache/tool/escape && "
        f"ln -s {keep} ~/.cache/tool/file-link && mkdir ~/.cache/tool/locked && "
        "touch ~/.cache/tool/locked/f && chmod 000 ~/.cache/tool/locked"
    )
    result = actor.sandboxed(script)
    assert result.returncode == 0, result.stderr
    layer_dir = Path(actor.run("cache", "path").stdout.strip())
    assert any(layer_dir.rglob("escape"))

    cleaned = actor.run("cache", "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.startswith("removed ")
    assert not layer_dir.exists()
    assert keep.read_text() == "mine\n" and actor.outside.is_dir()
    assert actor.run("cache", "clean").stdout.strip() == "no cache layer to remove"


def test_clean_refuses_while_a_command_holds_the_layer(actor: Actor) -> None:
    assert actor.sandboxed("mkdir -p ~/.cache/x").returncode == 0
    layer_dir = Path(actor.run("cache", "path").stdout.strip())
    lock = os.open(layer_dir / "lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = actor.run("cache", "clean")
        assert busy.returncode == 1
        assert busy.stderr.strip() == "corral: a command of this project is running; try again after it ends"
        assert layer_dir.is_dir()
    finally:
        os.close(lock)
    assert actor.run("cache", "clean").returncode == 0
    assert not layer_dir.exists()
