"""Attack catalog group 3: symlinks and hard links, with the real bubblewrap, as root and as a normal
user, checking the host afterwards.

The principle: a link never changes where a write lands or what a read returns. Inside the sandbox the
kernel resolves links against the sandbox's own view (decoys, read-only root, capture overlays); the
capture layer records *real* paths, so a write through a link is judged at its target; and the apply
step that copies workspace changes to the host walks every path with O_NOFOLLOW, so nothing it writes
lands outside the workspace.

S01's host-side edit tool (the agent's own file writer following `notes.md` on the host) belongs to the
front-end issue; here the later writer is another sandboxed command.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import SECRET, Actor
from tests.test_escape_support import assert_denied_under, file_state, host_run, plant, snapshot


def test_S01_link_made_now_written_later(actor: Actor) -> None:
    """A command plants links to the user's rc file and home; a later command writes through them."""
    first = actor.sandboxed("ln -s ~/.zshrc notes.md && ln -s ~ out && ln -s ~/.bashrc rc.txt")
    assert first.returncode == 0, first.stderr
    # The links are ordinary workspace changes (they point somewhere; that alone writes nothing).
    assert os.readlink(actor.workspace / "notes.md") == str(actor.home / ".zshrc")
    bashrc_before = (actor.home / ".bashrc").read_text()
    home_before = snapshot(actor.home)

    later = actor.sandboxed(
        "echo 'touch MARKER' > notes.md; echo 'touch MARKER' > out/.zshenv; echo x >> rc.txt; true"
    )
    assert not (actor.home / ".zshrc").exists()
    assert not (actor.home / ".zshenv").exists()
    assert (actor.home / ".bashrc").read_text() == bashrc_before
    assert snapshot(actor.home) == home_before
    assert_denied_under(later.stderr, "fs-write", actor.home / ".zshrc", actor.home)
    # ~/.bashrc exists and stays hidden: the append through rc.txt reaches its stand-in, is captured
    # and denied (sandbox.appends); the host file is unchanged, checked above.
    assert_denied_under(later.stderr, "fs-write", actor.home / ".bashrc", actor.home)
    assert later.returncode == 77


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_S01_link_shipped_in_the_repository(actor: Actor) -> None:
    """A link that was in the workspace before the command (a cloned repo ships `../../` links)."""
    relative = os.path.relpath(actor.outside, actor.workspace)
    (actor.workspace / "shipped").symlink_to(relative)
    (actor.workspace / "shipped-rc").symlink_to(os.path.relpath(actor.home / ".bashrc", actor.workspace))
    actor.chown_tree(actor.workspace)
    result = actor.sandboxed("echo x > shipped/dropped; mkdir shipped/d; echo x >> shipped-rc; true")
    assert list(actor.outside.iterdir()) == []
    assert (actor.home / ".bashrc").read_text() == "# user's bashrc\n"
    assert_denied_under(result.stderr, "fs-write", actor.outside / "dropped", actor.home)
    assert result.returncode == 77


def test_S02_symlink_to_credentials_reads_nothing(actor: Actor) -> None:
    plant(actor, actor.home / ".ssh/id_ed25519", f"{SECRET}\n")
    (actor.workspace / "shipped-key").symlink_to(os.path.relpath(actor.home / ".ssh/id_rsa", actor.workspace))
    actor.chown_tree(actor.workspace)
    first = actor.sandboxed("ln -s ~/.ssh/id_ed25519 k.txt; ln -s ~/.aws a; ln -s ../home/.netrc n; true")
    script = """
        ln -s ~/.ssh/id_rsa k2.txt; cat k2.txt k.txt a/credentials n shipped-key
        ln -s ~/.ssh s && cat s/id_rsa s/id_ed25519
        cat /proc/self/root$(readlink -f k.txt)
        python3 -c 'import os; print(open(os.path.realpath("k.txt")).read())'
        echo end
    """
    result = actor.sandboxed(script)
    assert "end" in result.stdout
    assert SECRET not in first.stdout + first.stderr + result.stdout + result.stderr
    assert_denied_under(result.stderr, "fs-read", actor.home / ".ssh/id_rsa", actor.home)


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_S03_hard_link_to_credentials(actor: Actor) -> None:
    """`link()` across the decoy mount fails (EXDEV); even a link to the decoy would read nothing.
    The host file keeps one link."""
    creds = actor.home / ".aws/credentials"
    result = actor.sandboxed(
        "ln ~/.aws/credentials ./c; cat ./c; ln ~/.ssh/id_rsa ./k; cat ./k; ln ~/.bashrc ./b; echo end"
    )
    assert "end" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert os.stat(creds).st_nlink == 1
    assert os.stat(actor.home / ".ssh/id_rsa").st_nlink == 1
    for name in ("c", "k"):
        path = actor.workspace / name
        assert not path.exists() or SECRET not in path.read_text()
    assert not (actor.workspace / "b").exists() or os.stat(actor.workspace / "b").st_nlink == 1


def test_S03_hard_link_alias_of_protected_file(actor: Actor) -> None:
    """A hard link inside the workspace to `.git/config`: writing the alias is a write to the config."""
    config_before = (actor.workspace / ".git/config").read_bytes()
    result = actor.sandboxed("ln .git/config cfg && echo '[core] fsmonitor = touch MARKER' >> cfg; true")
    assert (actor.workspace / ".git/config").read_bytes() == config_before
    assert not (actor.workspace / "cfg").exists() or "fsmonitor" not in (actor.workspace / "cfg").read_text()
    assert_denied_under(result.stderr, "fs-protected", actor.workspace / ".git/config")
    assert result.returncode == 77


def test_S04_late_symlink_at_protected_path(actor: Actor) -> None:
    """Within ONE command: turn a protected path into a link to somewhere that matters, write through it."""
    plant(actor, actor.workspace / ".claude/settings.json", "{}\n")
    plant(actor, actor.home / ".claude/settings.json", "{}\n")
    profile_before = file_state(actor.home / ".profile")
    script = """
        rm -rf .claude && ln -s ~/.claude .claude && echo '{"hooks":1}' > .claude/settings.json
        ln -s ~/.zshrc .envrc && echo 'touch MARKER' > .envrc
        ln -s ~/.bashrc .git/hooks/pre-commit; echo 'touch MARKER' >> .git/hooks/pre-commit
        ln -s .git/hooks hk && echo 'touch MARKER' > hk/post-commit
        mkdir -p x && ln -sf ~/.profile x/settings.local.json && echo x > x/settings.local.json
        true
    """
    result = actor.sandboxed(script)
    assert (actor.workspace / ".claude").is_dir() and not (actor.workspace / ".claude").is_symlink()
    assert (actor.workspace / ".claude/settings.json").read_text() == "{}\n"
    assert (actor.home / ".claude/settings.json").read_text() == "{}\n"
    assert not os.path.lexists(actor.workspace / ".envrc")
    assert not (actor.home / ".zshrc").exists()
    assert file_state(actor.home / ".profile") == profile_before
    assert (actor.home / ".bashrc").read_text() == "# user's bashrc\n"
    assert not os.path.lexists(actor.workspace / ".git/hooks/pre-commit")
    assert not (actor.workspace / ".git/hooks/post-commit").exists()
    assert_denied_under(result.stderr, "fs-protected", actor.workspace / ".claude")
    assert result.returncode == 77


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_apply_step_directory_replaced_by_link_to_outside(actor: Actor) -> None:
    """The command turns a workspace directory into a link to outside and writes through it (and into
    it before the swap). The apply step copies only workspace changes, never through a link: nothing
    lands outside."""
    plant(actor, actor.workspace / "sub/keep.txt", "keep\n")
    assert actor.sandboxed("true").returncode == 0  # corral creates its own state dirs on first use
    outside_before = snapshot(actor.outside)
    home_before = snapshot(actor.home)
    script = f"""
        echo new > sub/new.txt
        mv sub sub.real && ln -s {actor.outside} sub
        echo evil > sub/evil.txt; mkdir -p sub/deep && echo evil > sub/deep/x
        ln -s {actor.home} h; echo x > h/.bash_login
        mkdir -p deep/a && ln -s {actor.outside} deep/a/b && echo evil > deep/a/b/y
        true
    """
    result = actor.sandboxed(script)
    assert snapshot(actor.outside) == outside_before
    assert snapshot(actor.home) == home_before
    assert result.returncode == 77
    # What did land is inside the workspace: the moved directory and the links themselves.
    assert (actor.workspace / "sub.real/keep.txt").read_text() == "keep\n"
    assert (actor.workspace / "sub.real/new.txt").read_text() == "new\n"
    assert os.readlink(actor.workspace / "sub") == str(actor.outside)


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_apply_step_link_then_write_in_later_command(actor: Actor) -> None:
    """Command 1 leaves `data -> outside` in the workspace; command 2 writes `data/x`. The write is
    captured at its real path (outside) and denied; the apply step never follows `data`."""
    first = actor.sandboxed(f"ln -s {actor.outside} data")
    assert first.returncode == 0, first.stderr
    second = actor.sandboxed("echo evil > data/x; mkdir data/d; echo ok > fine.txt; true")
    assert list(actor.outside.iterdir()) == []
    assert (actor.workspace / "fine.txt").read_text() == "ok\n"
    assert_denied_under(second.stderr, "fs-write", actor.outside / "x", actor.home)
    assert second.returncode == 77


def test_apply_step_hard_links_and_special_files_not_applied(actor: Actor) -> None:
    """Captured files with extra hard links, FIFOs and setuid bits are never copied to the host."""
    result = actor.sandboxed(
        "echo a > one && ln one two; mkfifo fifo; echo x > suid && chmod 4755 suid; true"
    )
    assert not (actor.workspace / "two").exists() or os.stat(actor.workspace / "two").st_nlink == 1
    assert not (actor.workspace / "fifo").exists()
    suid = actor.workspace / "suid"
    assert not suid.exists() or not (os.stat(suid).st_mode & 0o6000)
    assert "not applied" in result.stderr or result.returncode == 77


def test_S01_link_into_persistent_cache_layer(actor: Actor) -> None:
    """Regression (was an escape, exit 0 and no violation): tool-chain caches are writable without
    prompting through a persistent per-project layer that lives on the host at a predictable path in
    corral's data directory. A command planted a git repository with `core.fsmonitor` there and linked
    it from the workspace; the user's `git status` in the linked directory ran the payload. Links that
    resolve into a hidden path (corral's state, credentials), directly or through a chain of links, are
    now taken back off the host and reported."""
    marker = actor.outside / "cache-layer-escape"
    script = f"""
        p=$(printf %s "$PWD" | sha256sum | cut -c1-16)
        c=$(printf %s "$HOME/.cache" | sha256sum | cut -c1-12)
        git init -q ~/.cache/r && git -C ~/.cache/r config core.fsmonitor 'touch {marker}; false'
        ln -s "{actor.state_home}/.local/share/corral/layers/$p/$c/upper/r" vendored
        ln -s "{actor.state_home}/.local/share" share && ln -s "share/corral/layers/$p/$c/upper/r" chained
        ln -s ~/.ssh/id_rsa key.txt
        ln -s README.md fine-link
    """
    result = actor.sandboxed(script)
    for name in ("vendored", "chained", "key.txt"):
        assert not os.path.lexists(actor.workspace / name), name
        assert_denied_under(result.stderr, "fs-protected", actor.workspace / name)
    assert os.readlink(actor.workspace / "fine-link") == "README.md"  # ordinary links still land
    assert result.returncode == 77
    for directory in (actor.workspace, actor.workspace / "share"):
        if directory.is_dir():
            host_run(actor, "git", "status", cwd=directory)
    assert not marker.exists()
