"""Issue 10 item 3: credentials by allow-list, with the real bubblewrap, as root and as an unprivileged
user whose HOME is its real home. Reads in the home succeed only for the allow-list; everything else,
known or not, existing or created while the command runs, is hidden, and reads of what existed are
reported. A root caller cannot read root-only files. Credential and config directories are refused as
the workspace. The person widens reads in their own config only.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CORRAL, SECRET, Actor
from tests.test_escape_support import assert_denied_under, plant

MISSES = (
    ".pgpass",
    ".my.cnf",
    ".s3cfg",
    ".config/sops/age/keys.txt",
    ".config/age/keys.txt",
    ".config/rclone/rclone.conf",
    ".config/doctl/config.yaml",
    ".pulumi/credentials.json",
    ".fly/config.yml",
    ".local/share/com.vercel.cli/auth.json",
    ".vercel/auth.json",
    ".wrangler/config/default.toml",
    ".config/.wrangler/config/default.toml",
    ".node_repl_history",
    ".sqlite_history",
    ".local/share/fish/fish_history",
    ".irb_history",
    ".rediscli_history",
    ".terraform.d/credentials.tfrc.json",
    ".gradle/gradle.properties",
    ".m2/settings.xml",
)
"""The deny-list's misses the review named (and a few more of the same kind)."""

UNDER_CACHE = ".cache/huggingface/token"
"""A token under ~/.cache: the sandbox's ~/.cache is a private layer, the host's is never shown."""


def _home_plant(actor: Actor, relative: str) -> Path:
    path = actor.home / relative
    plant(actor, path, f"token={SECRET}\n")
    return path


def test_misses_and_an_unknown_credential_hidden_and_reported(actor: Actor) -> None:
    unknown = f".acme-cli-{secrets.token_hex(3)}/session.json"
    paths = [_home_plant(actor, relative) for relative in (*MISSES, unknown)]
    cache_token = _home_plant(actor, UNDER_CACHE)
    try:
        listing = " ".join(f"'{p}'" for p in (*paths, cache_token))
        result = actor.sandboxed(f"cat {listing} 2>/dev/null; grep -rs CORRAL-TEST ~ ; echo end")
        assert result.stdout.strip().endswith("end")
        assert SECRET not in result.stdout + result.stderr
        for path in paths:
            assert_denied_under(result.stderr, "fs-read", path, actor.home)
        assert result.returncode == 77
        assert SECRET in paths[0].read_text()  # the host copies are untouched
    finally:
        if actor.real_home is not None:
            import shutil

            shutil.rmtree(actor.home / unknown.split("/")[0], ignore_errors=True)


def test_credential_created_while_the_command_runs_is_hidden(actor: Actor) -> None:
    """The skeleton is built before the command starts: a file the host creates in the home meanwhile
    never shows inside."""
    name = f".late-token-{secrets.token_hex(3)}"
    late = actor.home / name
    script = f"for i in $(seq 50); do [ -e ~/{name} ] && break; sleep 0.1; done; cat ~/{name} 2>&1; ls -a ~; echo end"
    command = [CORRAL, "run", "--on-violation", "deny", "-c", script]
    if actor.uid != os.geteuid():
        command = ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]
    process = subprocess.Popen(
        command, cwd=actor.workspace, env=actor.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.5)
        late.write_text(f"token={SECRET}\n")
        actor.chown_path(late)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        late.unlink(missing_ok=True)
    assert "end" in stdout
    assert SECRET not in stdout + stderr
    assert name not in stdout.splitlines()  # not in the `ls -a ~` listing
    assert "No such file" in stdout


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_allow_listed_config_is_readable_and_tools_work(actor: Actor) -> None:
    """Non-secret config tools commonly need stays readable (read-only): git's global ignore file here,
    and git itself runs."""
    ignore = actor.home / ".config/git/ignore"
    plant(actor, ignore, "*.corral-ignored\n")
    result = actor.sandboxed("cat ~/.config/git/ignore; git status --short >/dev/null && echo git-ok")
    assert "*.corral-ignored" in result.stdout
    assert "git-ok" in result.stdout
    assert result.returncode == 0, result.stderr


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_user_config_widens_reads_a_repository_cannot(actor: Actor) -> None:
    notes = actor.own_dir / "notes" / "todo.txt"
    plant(actor, notes, "buy milk\n")
    hidden_first = actor.sandboxed(f"cat {notes}; echo end")
    assert "buy milk" not in hidden_first.stdout
    config = Path(actor.env["XDG_CONFIG_HOME"]) / "corral" / "config.toml"
    relative = notes.parent.relative_to(actor.home)
    plant(actor, config, f'[filesystem]\nreadable = ["~/{relative}"]\n')
    shown = actor.sandboxed(f"cat {notes}")
    assert "buy milk" in shown.stdout, shown.stderr
    # A repository's config has no such key: it cannot widen what is readable.
    plant(actor, actor.workspace / ".corral/config.toml", '[filesystem]\nreadable = ["~/.ssh"]\n')
    refused = actor.sandboxed("cat ~/.ssh/id_rsa; echo end")
    assert SECRET not in refused.stdout + refused.stderr


def test_root_only_secrets_hidden(actor: Actor) -> None:
    """`cat /etc/shadow` as root fails like any unprivileged read: root keeps host uid 0's ownership
    inside the user namespace, so every file only its owner may read is hidden, and the read reported."""
    shadow = Path("/etc/shadow")
    result = actor.sandboxed("cat /etc/shadow /etc/gshadow 2>&1; echo end")
    assert "end" in result.stdout
    assert "root:" not in result.stdout
    if actor.uid == 0 and shadow.exists():
        assert_denied_under(result.stderr, "fs-read", shadow)


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_credential_and_config_directories_refused_as_workspace(actor: Actor) -> None:
    config_dir = actor.home / ".config" / f"nvim-{secrets.token_hex(3)}"
    config_dir.mkdir(parents=True)
    actor.chown_path(config_dir)
    try:
        for directory in (actor.home / ".ssh", config_dir, actor.home / ".aws"):
            result = actor.run("run", "--project", str(directory), "--", "true")
            assert result.returncode == 2, (directory, result.stderr)
            assert result.stderr.count("\n") == 1 and "credential or configuration directory" in result.stderr
    finally:
        config_dir.rmdir()


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_policy_shows_the_read_allow_list(actor: Actor) -> None:
    result = actor.run("policy")
    assert result.returncode == 0, result.stderr
    assert "readable" in result.stdout
    assert str(actor.home / ".gitconfig") in result.stdout
    assert str(actor.home / ".cache") in result.stdout  # the private cache layer
