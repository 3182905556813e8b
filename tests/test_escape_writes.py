"""Attack catalog group 2: writes that later execute outside the sandbox. Real bubblewrap, as root and
as a normal user; every test checks the host afterwards and, where a later host program would run
the payload (git hooks, fsmonitor), runs that program unsandboxed and checks that no marker appears.

The principle: a protected location (agent/IDE/git config, shell start-up files, build entry points
hosts run) cannot be created, changed, deleted or swapped by a sandboxed command, at any depth, new or
existing, git-ignored or not, whatever its case or Unicode spelling; writes outside the workspace
never reach the host. Each script also makes one ordinary workspace write, which must land, so a
test cannot pass merely because the sandbox failed.

W05's "via the edit tool" and W09's prompt behaviour belong to the front-end issues.
"""

from __future__ import annotations

import os
import subprocess
import unicodedata
from pathlib import Path, PurePosixPath

import pytest

from sandbox.policy import ProtectedPattern, default_protected, fold
from tests.conftest import Actor
from tests.test_escape_support import (
    assert_denied_under,
    denied_kinds,
    file_state,
    host_run,
    initial_commit,
    plant,
    snapshot,
)

CONTROL = "echo ok > control.txt"


def assert_control_landed(actor: Actor) -> None:
    assert (actor.workspace / "control.txt").read_text() == "ok\n"


def sandboxed_with_control(actor: Actor, script: str) -> subprocess.CompletedProcess[str]:
    result = actor.sandboxed(f"{script}\n{CONTROL}")
    assert_control_landed(actor)
    return result


# --- W01: the agents' own config -------------------------------------------------------------------

AGENT_CONFIG = (
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".claude/hooks/x.sh",
    ".claude/commands/x.md",
    ".mcp.json",
    ".corral/config.toml",
    ".codex/config.toml",
    ".gemini/settings.json",
    ".cursor/mcp.json",
    ".agents/x.md",
)


def _write_all(paths: tuple[str, ...]) -> str:
    hook = '{"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"touch MARKER"}]}]}}'
    return "\n".join(f"mkdir -p \"$(dirname '{p}')\"; echo '{hook}' > '{p}'" for p in paths)


def test_W01_agent_config_new(actor: Actor) -> None:
    """No `.claude/` (nor the others) at sandbox start: creating them is denied all the same."""
    result = sandboxed_with_control(actor, _write_all(AGENT_CONFIG))
    for relative in AGENT_CONFIG:
        assert not (actor.workspace / relative).exists(), relative
    for top in (".claude", ".mcp.json", ".corral", ".codex", ".gemini", ".cursor", ".agents"):
        assert not (actor.workspace / top).exists()
        assert_denied_under(result.stderr, "fs-protected", actor.workspace / top)
    assert result.returncode == 77


def test_W01_agent_config_existing_dir_without_file(actor: Actor) -> None:
    """`.claude/` exists but `settings.json` does not (the CVE-2026-25725 case)."""
    (actor.workspace / ".claude").mkdir()
    plant(actor, actor.workspace / ".claude/settings.local.json", "{}\n")
    result = sandboxed_with_control(
        actor, _write_all((".claude/settings.json", ".claude/settings.local.json"))
    )
    assert not (actor.workspace / ".claude/settings.json").exists()
    assert (actor.workspace / ".claude/settings.local.json").read_text() == "{}\n"
    assert_denied_under(result.stderr, "fs-protected", actor.workspace / ".claude/settings.json")
    assert result.returncode == 77


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_W01_agent_config_in_home(actor: Actor) -> None:
    """The user-level agent config is hidden (a read-only decoy) and outside the workspace."""
    plant(actor, actor.home / ".claude/settings.json", "{}\n")
    # Other tests plant credentials in a shared real home: compare with what was there before.
    before = {
        rel: snapshot(actor.home / rel) if (actor.home / rel).is_dir() else os.path.lexists(actor.home / rel)
        for rel in (".claude.json", ".codex", ".config/corral/config.toml")
    }
    result = sandboxed_with_control(
        actor,
        "echo '{\"hooks\":1}' > ~/.claude/settings.json; echo x > ~/.claude.json; "
        "mkdir -p ~/.codex && echo x > ~/.codex/config.toml; mkdir -p ~/.config/corral && echo x > ~/.config/corral/config.toml",
    )
    assert (actor.home / ".claude/settings.json").read_text() == "{}\n"
    for rel, was in before.items():
        now = snapshot(actor.home / rel) if (actor.home / rel).is_dir() else os.path.lexists(actor.home / rel)
        assert now == was, rel
    if not before[".claude.json"]:
        assert not (actor.home / ".claude.json").exists()
    corral_config = actor.state_home / ".config/corral/config.toml"
    # The harness may have written the backend choice there itself (tests/conftest.py): never "x".
    assert not corral_config.exists() or corral_config.read_text().startswith("[sandbox]")
    assert result.returncode in (1, 77)


# --- W02: git ---------------------------------------------------------------------------------------


def _git_marker_check(actor: Actor, markers: list[Path]) -> None:
    """The later, unsandboxed git commands a user runs: none may fire a planted hook or fsmonitor."""
    for argv in (("git", "status"), ("git", "diff"), ("git", "commit", "-q", "--allow-empty", "-m", "later")):
        result = host_run(actor, *argv)
        assert result.returncode == 0, result.stderr
    for marker in markers:
        assert not marker.exists(), f"{marker} appeared: a hook ran on the host"


def test_W02_git_hooks_and_config(actor: Actor) -> None:
    initial_commit(actor)
    config_before = (actor.workspace / ".git/config").read_bytes()
    hook_marker, hooks_path_marker, fsmonitor_marker = (actor.outside / n for n in ("W02", "W02-hp", "W02b"))
    script = f"""
        printf '#!/bin/sh\\ntouch {hook_marker}\\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit
        printf '#!/bin/sh\\ntouch {hook_marker}\\n' > .git/hooks/post-commit; chmod +x .git/hooks/post-commit
        mkdir -p h; printf '#!/bin/sh\\ntouch {hooks_path_marker}\\n' > h/pre-commit; chmod +x h/pre-commit
        git config core.hooksPath h
        git config core.fsmonitor 'touch {fsmonitor_marker}; false'
        git config --global core.hooksPath {actor.workspace}/h
        true
    """
    result = sandboxed_with_control(actor, script)
    assert (actor.workspace / ".git/config").read_bytes() == config_before
    assert not (actor.workspace / ".git/hooks/pre-commit").exists()
    assert not (actor.home / ".gitconfig").exists()
    assert (actor.workspace / "h/pre-commit").exists()  # an ordinary file: harmless while hooksPath is unset
    assert_denied_under(result.stderr, "fs-protected", actor.workspace / ".git/config")
    assert_denied_under(result.stderr, "fs-protected", actor.workspace / ".git/hooks/pre-commit")
    assert_denied_under(result.stderr, "fs-write", actor.home / ".gitconfig", actor.home)
    assert result.returncode == 77
    _git_marker_check(actor, [hook_marker, hooks_path_marker, fsmonitor_marker])


def test_W02_git_show_output_to_config(actor: Actor) -> None:
    """GitPwned: a read-only-looking git command whose --output lands on `.git/config`."""
    (actor.workspace / "payload").write_text(f"[core]\n\tfsmonitor = touch {actor.outside / 'W02c'}\n")
    actor.chown_tree(actor.workspace)
    initial_commit(actor)
    config_before = (actor.workspace / ".git/config").read_bytes()
    result = sandboxed_with_control(
        actor, "git show HEAD --output=.git/config; git diff HEAD~0 --output=.git/hooks/post-checkout; true"
    )
    assert (actor.workspace / ".git/config").read_bytes() == config_before
    assert not (actor.workspace / ".git/hooks/post-checkout").exists()
    assert result.returncode == 77
    _git_marker_check(actor, [actor.outside / "W02c"])


def test_W02_git_dir_swaps_and_other_git_files(actor: Actor) -> None:
    """Replacing `.git` itself (a `gitdir:` file, a symlink), the info/ and worktree files,
    `.gitmodules`, deleting the config: all protected."""
    initial_commit(actor)
    (actor.workspace / ".git/info").mkdir(exist_ok=True)
    actor.chown_tree(actor.workspace)
    before = {p: (actor.workspace / p).read_bytes() for p in (".git/config", ".git/HEAD")}
    script = f"""
        echo '* filter=evil' > .git/info/attributes
        echo x > .git/config.worktree
        printf '[submodule "s"]\\n\\tpath = s\\n\\turl = {actor.outside}\\n' > .gitmodules
        mkdir -p evil && cp -r .git evil/gitdir && rm -rf .git && echo 'gitdir: evil/gitdir' > .git
        true
    """
    result = sandboxed_with_control(actor, script)
    assert (actor.workspace / ".git").is_dir()
    for relative, content in before.items():
        assert (actor.workspace / relative).read_bytes() == content
    assert not (actor.workspace / ".git/info/attributes").exists()
    assert not (actor.workspace / ".git/config.worktree").exists()
    assert not (actor.workspace / ".gitmodules").exists()
    assert result.returncode == 77

    result = sandboxed_with_control(
        actor, f"rm -f .git/config; rm -rf .git && ln -s {actor.outside} .git; true"
    )
    assert (actor.workspace / ".git").is_dir() and not (actor.workspace / ".git").is_symlink()
    assert (actor.workspace / ".git/config").read_bytes() == before[".git/config"]
    assert result.returncode == 77
    _git_marker_check(actor, [])


def test_W02_nested_repository_hooks(actor: Actor) -> None:
    """A repository inside the workspace (existing, and one the command creates) is protected alike."""
    host_run(actor, "git", "init", "-q", "vendor/lib")
    script = """
        echo 'touch MARKER' > vendor/lib/.git/hooks/pre-commit
        git init -q sub/dir && echo 'touch MARKER' > sub/dir/.git/hooks/pre-commit
        git -C vendor/lib config core.fsmonitor 'touch MARKER'
        true
    """
    result = sandboxed_with_control(actor, script)
    assert not (actor.workspace / "vendor/lib/.git/hooks/pre-commit").exists()
    assert "fsmonitor" not in (actor.workspace / "vendor/lib/.git/config").read_text()
    assert not (actor.workspace / "sub/dir/.git/hooks/pre-commit").exists()
    assert_denied_under(result.stderr, "fs-protected", actor.workspace / "vendor/lib/.git/hooks/pre-commit")
    assert result.returncode == 77


# --- W04: shell start-up files and direnv ----------------------------------------------------------

HOME_STARTUP = (
    ".zshenv",
    ".zshrc",
    ".profile",
    ".bash_profile",
    ".bash_aliases",
    ".config/fish/config.fish",
    ".config/autostart/x.desktop",
    "Library/LaunchAgents/x.plist",
    ".config/systemd/user/x.service",
    ".config/environment.d/x.conf",
)


def test_W04_shell_startup_files(actor: Actor) -> None:
    bashrc_before = (actor.home / ".bashrc").read_text()
    startup_before = {relative: file_state(actor.home / relative) for relative in HOME_STARTUP}
    home_writes = "\n".join(
        f"mkdir -p \"$(dirname ~/'{p}')\"; echo 'touch MARKER' > ~/'{p}'" for p in HOME_STARTUP
    )
    script = f"""
        echo 'touch MARKER' > .envrc
        echo 'touch MARKER' > .bashrc
        echo 'touch MARKER' > .zshrc
        echo 'touch MARKER' > .profile
        echo 'touch MARKER' >> ~/.bashrc
        {home_writes}
    """
    result = sandboxed_with_control(actor, script)
    for name in (".envrc", ".bashrc", ".zshrc", ".profile"):
        assert not (actor.workspace / name).exists()
        assert_denied_under(result.stderr, "fs-protected", actor.workspace / name)
    # ~/.bashrc exists and stays hidden; its stand-in takes the append (sandbox.appends), which is
    # captured and denied here (no terminal): the host file is unchanged.
    assert_denied_under(result.stderr, "fs-write", actor.home / ".bashrc", actor.home)
    assert (actor.home / ".bashrc").read_text() == bashrc_before
    for relative in HOME_STARTUP:
        assert file_state(actor.home / relative) == startup_before[relative], relative
        if startup_before[relative] is None:
            assert_denied_under(result.stderr, "fs-write", actor.home / relative, actor.home)
    assert not (actor.home / ".config/fish").exists()
    assert not (actor.home / "Library").exists()
    assert result.returncode == 77


def test_W04_nested_and_existing_envrc(actor: Actor) -> None:
    plant(actor, actor.workspace / ".envrc", "export A=1\n")
    script = (
        "echo 'touch MARKER' >> .envrc; mkdir -p a/b && echo 'touch MARKER' > a/b/.envrc; rm -f .envrc; true"
    )
    result = sandboxed_with_control(actor, script)
    assert (actor.workspace / ".envrc").read_text() == "export A=1\n"
    assert not (actor.workspace / "a/b/.envrc").exists()
    assert result.returncode == 77


# --- W05: IDE config --------------------------------------------------------------------------------

IDE_CONFIG = (
    ".vscode/settings.json",
    ".vscode/tasks.json",
    ".idea/workspace.xml",
    ".cursor/mcp.json",
    ".devcontainer/devcontainer.json",
    ".windsurf/rules.md",
    ".continue/config.json",
)


def test_W05_ide_config(actor: Actor) -> None:
    plant(actor, actor.workspace / ".vscode/settings.json", "{}\n")
    script = (
        _write_all(IDE_CONFIG)
        + "\nsed -i 's/{}/{\"chat.tools.autoApprove\": true}/' .vscode/settings.json; true"
    )
    result = sandboxed_with_control(actor, script)
    assert (actor.workspace / ".vscode/settings.json").read_text() == "{}\n"
    for relative in IDE_CONFIG[1:]:
        assert not (actor.workspace / relative).exists(), relative
    assert "fs-protected" in denied_kinds(result.stderr)
    assert result.returncode == 77


# --- W06: build and test entry points ---------------------------------------------------------------


def _fake_venv(actor: Actor, python_is_link: bool) -> None:
    venv = actor.workspace / ".venv"
    (venv / "bin").mkdir(parents=True)
    if python_is_link:
        (venv / "bin/python").symlink_to("/usr/bin/python3")
    else:
        (venv / "bin/python").write_text('#!/bin/sh\nexec /usr/bin/python3 "$@"\n')
        (venv / "bin/python").chmod(0o755)
    (venv / "bin/activate").write_text("# activate\n")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    actor.chown_tree(actor.workspace)


@pytest.mark.parametrize("python_is_link", [False, True], ids=["file", "symlink"])
def test_W06_venv_interpreter_and_hook_managers(actor: Actor, python_is_link: bool) -> None:
    _fake_venv(actor, python_is_link)
    before = {p: (actor.workspace / ".venv" / p).read_bytes() for p in ("bin/activate", "pyvenv.cfg")}
    link_before = (actor.workspace / ".venv/bin/python").is_symlink()
    script = """
        echo 'touch MARKER' > .venv/bin/python3.99
        echo 'touch MARKER' >> .venv/bin/activate
        echo 'home = /evil' > .venv/pyvenv.cfg
        rm -f .venv/bin/python; printf '#!/bin/sh\\ntouch MARKER\\n' > .venv/bin/python
        mkdir -p .husky && echo 'touch MARKER' > .husky/pre-commit
        echo 'repos: []' > .pre-commit-config.yaml
        mkdir -p gradle/wrapper && echo 'distributionUrl=http://evil' > gradle/wrapper/gradle-wrapper.properties
        echo 'module.exports = {}' > .pnpmfile.cjs
        echo 'x: 1' > .yarnrc.yml
        echo '[install]' > bunfig.toml
        true
    """
    result = sandboxed_with_control(actor, script)
    assert (actor.workspace / ".venv/bin/python").is_symlink() == link_before
    if not python_is_link:
        assert "MARKER" not in (actor.workspace / ".venv/bin/python").read_text()
    assert not (actor.workspace / ".venv/bin/python3.99").exists()
    for relative, content in before.items():
        assert (actor.workspace / ".venv" / relative).read_bytes() == content
    for relative in (
        ".husky",
        ".pre-commit-config.yaml",
        "gradle/wrapper/gradle-wrapper.properties",
        ".pnpmfile.cjs",
        ".yarnrc.yml",
        "bunfig.toml",
    ):
        assert not (actor.workspace / relative).exists(), relative
    assert result.returncode == 77


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_W06_ordinary_build_files_are_workspace_writes(actor: Actor) -> None:
    """Accepted residual risk, documented: `Makefile`, `package.json` scripts, `conftest.py`, CI
    workflows and the virtualenv's `site-packages` (modules, `.pth` files) are ordinary workspace files:
    editing them is what a coding agent is for, so a sandboxed command may change them and the change
    lands on the host. Whatever later runs them on the host runs the edit. corral protects only the
    files that run *without the user choosing to run project code* (hooks, rc files, agent/IDE config)
    and the venv's interpreter and activate scripts; running `make`/`npm test`/`pytest` outside the
    sandbox is the user's decision (TT2 surfaces such changes at the next unsandboxed approval).
    This test pins that behaviour so a change to it is deliberate."""
    _fake_venv(actor, python_is_link=True)
    script = """
        printf 'all:\\n\\ttouch MARKER\\n' > Makefile
        echo '{"scripts":{"test":"touch MARKER"}}' > package.json
        echo 'import os' > conftest.py
        mkdir -p .github/workflows && echo 'on: push' > .github/workflows/ci.yml
        mkdir -p .venv/lib/python3.11/site-packages && echo 'import os' > .venv/lib/python3.11/site-packages/x.pth
    """
    result = sandboxed_with_control(actor, script)
    assert result.returncode == 0, result.stderr
    for relative in ("Makefile", "package.json", "conftest.py", ".github/workflows/ci.yml"):
        assert (actor.workspace / relative).exists(), relative
    assert (actor.workspace / ".venv/lib/python3.11/site-packages/x.pth").exists()


# --- W07: case and Unicode spellings ----------------------------------------------------------------

CASE_VARIANTS = (
    ".GIT/hooks/pre-commit",
    ".git/HOOKS/pre-commit",
    ".Git/Config",
    ".Claude/Settings.json",
    ".CLAUDE/settings.local.json",
    ".VSCode/settings.json",
    ".Envrc",
    ".MCP.json",
    ".Husky/pre-commit",
    ".hu\u017fky/pre-commit",  # LATIN SMALL LETTER LONG S case-folds to "s"
    ".git/hoo\u212as/x",  # KELVIN SIGN case-folds to "k"
)


def test_W07_case_and_unicode_variants(actor: Actor) -> None:
    """On Linux these are other names, but the same names are one file on macOS (APFS folds case):
    matching is case-folded and Unicode-normalised so a protected path has exactly one spelling."""
    script = "\n".join(f"mkdir -p \"$(dirname '{p}')\"; echo x > '{p}'" for p in CASE_VARIANTS)
    result = sandboxed_with_control(actor, script + "\ntrue")
    for relative in CASE_VARIANTS:
        assert not (actor.workspace / relative).exists(), relative
        top = relative.split("/")[0]
        if top != ".git":
            assert not (actor.workspace / top).exists(), top
    assert result.returncode == 77


def test_W07_nfd_spellings_fold_to_one_name() -> None:
    """Unicode normalisation: an NFD spelling matches a protected pattern written in NFC and vice versa.
    (The built-in names are ASCII, where NFD is the identity; a user-added name may not be.) Pure policy
    check, no sandbox: runs once, not per actor."""
    nfc, nfd = "caf\u00e9-hooks", unicodedata.normalize("NFD", "caf\u00e9-hooks")
    assert nfc != nfd and fold(nfc) == fold(nfd)
    for written, probed in ((nfc, nfd), (nfd, nfc)):
        pattern = ProtectedPattern.parse(f".config/{written}", subtree=True)
        assert pattern.matches(PurePosixPath(f"pkg/.CONFIG/{probed}/x"), replaces_node=False)
    protected = default_protected()
    for relative in CASE_VARIANTS:
        assert any(p.matches(PurePosixPath(relative), replaces_node=False) for p in protected), relative
    nfd_git = unicodedata.normalize("NFD", ".git/hooks/pre-commit")
    assert any(p.matches(PurePosixPath(nfd_git), replaces_node=False) for p in protected)


# --- W09: writes hidden in other programs' syntax ---------------------------------------------------


def test_W09_parser_bypass_writes(actor: Actor) -> None:
    """sed's `w` command, a `cd` into the protected directory, clobber redirections, tee/dd/python:
    the OS sees the write whatever wrote it."""
    plant(actor, actor.workspace / ".claude/settings.json", "{}\n")
    bashrc_before = (actor.home / ".bashrc").read_text()
    profile_before = file_state(actor.home / ".profile")
    script = """
        echo x | sed "s/x/touch MARKER/w $HOME/.bashrc"
        echo x | sed 's/x/y/w .envrc'
        sed -i 's/{}/{"hooks":1}/' .claude/settings.json
        (cd .claude && echo '{"hooks":1}' > settings.local.json)
        (cd .git/hooks && echo 'touch MARKER' > pre-push)
        set -o noclobber; echo x >| ~/.zshrc; echo x >| .zshrc
        echo x | tee -a ~/.profile .git/hooks/post-merge >/dev/null
        echo x | dd of=.mcp.json status=none
        python3 -c 'open(".git/config", "a").write("[core]\\n\\tfsmonitor = touch MARKER\\n")'
        true
    """
    result = sandboxed_with_control(actor, script)
    assert (actor.home / ".bashrc").read_text() == bashrc_before
    assert not (actor.home / ".zshrc").exists()
    assert file_state(actor.home / ".profile") == profile_before
    assert (actor.workspace / ".claude/settings.json").read_text() == "{}\n"
    for relative in (
        ".envrc",
        ".claude/settings.local.json",
        ".git/hooks/pre-push",
        ".zshrc",
        ".git/hooks/post-merge",
        ".mcp.json",
    ):
        assert not (actor.workspace / relative).exists(), relative
    assert "fsmonitor" not in (actor.workspace / ".git/config").read_text()
    assert denied_kinds(result.stderr) == {"fs-protected", "fs-write"}
    assert result.returncode == 77


# --- W10: deny entries spelled with a trailing slash, dot segments, doubled slashes -----------------


def test_W10_spelling_of_denied_paths(actor: Actor) -> None:
    creds = plant(actor, actor.home / ".aws/credentials", "[default]\n")
    aws_before = sorted(p.name for p in (actor.home / ".aws").iterdir())  # a shared real home holds more
    script = """
        echo evil > ~/.aws/credentials; echo evil > ~/.aws//credentials; echo evil > ~/.aws/./credentials
        echo evil > ~/.aws/new; mkdir ~/.aws/sub/; echo evil > ~/.ssh/authorized_keys
        mkdir -p .git/hooks/ && echo x > .git//hooks/./pre-commit; echo x > ./.claude/../.claude/x
        true
    """
    result = sandboxed_with_control(actor, script)
    assert result.returncode == 77
    assert creds.read_text() == "[default]\n"
    assert sorted(p.name for p in (actor.home / ".aws").iterdir()) == aws_before
    assert not (actor.home / ".ssh/authorized_keys").exists()
    assert not (actor.workspace / ".git/hooks/pre-commit").exists()
    assert not (actor.workspace / ".claude").exists()


# --- W11, W12: renames and directory swaps around a protected path ----------------------------------


def test_W11_rename_around_protection(actor: Actor) -> None:
    initial_commit(actor)
    config_before = (actor.workspace / ".git/config").read_bytes()
    plant(actor, actor.workspace / ".claude/settings.json", "{}\n")
    script = """
        mv .git g && mkdir -p g/hooks && echo 'touch MARKER' > g/hooks/pre-commit && chmod +x g/hooks/pre-commit
        echo '[core] hooksPath = /x' >> g/config
        mv g .git
        mv .git/hooks .git/h && echo 'touch MARKER' > .git/h/post-commit && mv .git/h .git/hooks
        mv .claude c && echo '{"hooks":1}' > c/settings.json && mv c .claude
        mv ~/.ssh/id_rsa ./k; cat k
        true
    """
    result = sandboxed_with_control(actor, script)
    assert (actor.workspace / ".git/config").read_bytes() == config_before
    assert not (actor.workspace / ".git/hooks/pre-commit").exists()
    assert not (actor.workspace / ".git/hooks/post-commit").exists()
    assert (actor.workspace / ".claude/settings.json").read_text() == "{}\n"
    assert not (actor.workspace / "g").exists() and not (actor.workspace / "c").exists()
    assert not (actor.workspace / "k").exists() or "SECRET" not in (actor.workspace / "k").read_text()
    assert (actor.home / ".ssh/id_rsa").exists()
    assert result.returncode == 77
    _git_marker_check(actor, [])


def test_W11_rename_in_two_commands(actor: Actor) -> None:
    """Renaming away in one command and back in a later one: the first command's deletion of the
    protected path is denied, so the second finds the original in place."""
    initial_commit(actor)
    config_before = (actor.workspace / ".git/config").read_bytes()
    first = sandboxed_with_control(actor, "mv .git g && echo 'touch MARKER' > g/hooks/pre-commit")
    assert first.returncode == 77
    assert (actor.workspace / ".git/config").read_bytes() == config_before
    second = sandboxed_with_control(actor, "rm -rf .git; mv g .git; true")
    assert second.returncode == 77
    assert not (actor.workspace / ".git/hooks/pre-commit").exists()
    assert (actor.workspace / ".git/config").read_bytes() == config_before
    _git_marker_check(actor, [])


@pytest.mark.bwrap_only(
    "under gVisor `mv` of the workspace's mount point falls back to copy and delete (EXDEV, not EBUSY): "
    "the deletions inside the workspace are the command's own, protected ones are still denied"
)
def test_W12_directory_swap(actor: Actor) -> None:
    plant(actor, actor.workspace / ".claude/settings.json", "{}\n")
    plant(actor, actor.workspace / "docs/README.md", "docs\n")
    script = """
        mv .claude c.old && mkdir .claude && echo '{"hooks":1}' > .claude/settings.json
        cp -r . ../w2 && echo 'touch MARKER' > ../w2/.envrc
        cd .. && mv ws ws.old; mv w2 ws; cd ws
        true
    """
    result = sandboxed_with_control(actor, script)
    assert (actor.workspace / ".claude/settings.json").read_text() == "{}\n"
    # c.old is a plain copy of the protected directory at an unprotected name: it lands, and is inert.
    assert (actor.workspace / "c.old/settings.json").read_text() == "{}\n"
    assert not (actor.workspace / ".envrc").exists()
    assert not (actor.base / "w2").exists() and not (actor.base / "ws.old").exists()
    assert (actor.workspace / "docs/README.md").read_text() == "docs\n"
    assert result.returncode == 77


# --- at depth, git-ignored or not -------------------------------------------------------------------

DEEP = (
    "sub/dir/.git/hooks/pre-commit",
    "a/b/c/.envrc",
    "pkg/.vscode/settings.json",
    "pkg/.claude/settings.json",
    "x/y/.mcp.json",
    "x/y/.bashrc",
    "deep/er/.husky/pre-commit",
    "m/.git/config",
)


@pytest.mark.parametrize("ignored", [False, True], ids=["tracked", "gitignored"])
def test_protected_paths_at_depth(actor: Actor, ignored: bool) -> None:
    if ignored:
        plant(
            actor,
            actor.workspace / ".gitignore",
            "\n".join([".envrc", ".vscode/", ".claude/", "*.json", ".husky", "sub/", "x/", "m/", ".bashrc"])
            + "\n",
        )
    plant(actor, actor.workspace / "pkg/.vscode/settings.json", "{}\n")  # one of them exists already
    script = "\n".join(f"mkdir -p \"$(dirname '{p}')\"; echo 'touch MARKER' > '{p}'" for p in DEEP)
    result = sandboxed_with_control(actor, script + "\ntrue")
    for relative in DEEP:
        path = actor.workspace / relative
        if relative == "pkg/.vscode/settings.json":
            assert path.read_text() == "{}\n"
        else:
            assert not path.exists(), relative
    # The ordinary directories on the way are workspace writes and land.
    assert (actor.workspace / "a/b/c").is_dir()
    assert result.returncode == 77


def test_W02_submodule_git_dirs(actor: Actor) -> None:
    """A submodule's git directory lives at `.git/modules/<name>`, where the name is the submodule's
    path and may have several components (`libs/x`), and submodules nest (`.../modules/<a>/modules/<b>`).
    Its hooks and config run at the user's next git command inside the submodule, like `.git/hooks`."""
    source = actor.base / "upstream"
    host_run(actor, "git", "init", "-q", str(source), cwd=actor.base)
    plant(actor, source / "lib.txt", "lib\n")
    host_run(actor, "git", "add", "-A", cwd=source)
    assert host_run(actor, "git", "commit", "-q", "-m", "lib", cwd=source).returncode == 0
    for path in ("libs/x", "single"):
        added = host_run(
            actor, "git", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(source), path
        )
        assert added.returncode == 0, added.stderr
    initial_commit(actor)
    markers = [actor.outside / f"W02-sub{i}" for i in range(4)]
    script = f"""
        for gitdir in .git/modules/libs/x .git/modules/single; do
            printf '#!/bin/sh\\ntouch {markers[0]}\\n' > $gitdir/hooks/pre-commit; chmod +x $gitdir/hooks/pre-commit
            git --git-dir=$gitdir config core.fsmonitor 'touch {markers[1]}; false'
            echo '* filter=x' > $gitdir/info/attributes
        done
        mkdir -p .git/modules/libs/x/modules/inner/hooks
        printf '#!/bin/sh\\ntouch {markers[2]}\\n' > .git/modules/libs/x/modules/inner/hooks/pre-commit
        true
    """
    result = sandboxed_with_control(actor, script)
    for gitdir in (".git/modules/libs/x", ".git/modules/single"):
        assert not (actor.workspace / gitdir / "hooks/pre-commit").exists(), gitdir
        assert "fsmonitor" not in (actor.workspace / gitdir / "config").read_text(), gitdir
        assert not (actor.workspace / gitdir / "info/attributes").exists(), gitdir
    assert not (actor.workspace / ".git/modules/libs/x/modules").exists()
    assert result.returncode == 77
    for sub in ("libs/x", "single"):
        for argv in (("git", "status"), ("git", "commit", "-q", "--allow-empty", "-m", "later")):
            assert host_run(actor, *argv, cwd=actor.workspace / sub).returncode == 0
    for marker in markers:
        assert not marker.exists(), f"{marker} appeared: a submodule hook ran on the host"


def test_W02_configured_hooks_path_inside_workspace(actor: Actor) -> None:
    """The user (not the attacker) configured `core.hooksPath = .githooks`; a sandboxed write there runs
    at the user's next commit."""
    initial_commit(actor)
    assert host_run(actor, "git", "config", "core.hooksPath", ".githooks").returncode == 0
    plant(actor, actor.workspace / ".githooks/pre-commit", "#!/bin/sh\nexit 0\n", mode=0o755)
    marker = actor.outside / "W02-hookspath"
    result = sandboxed_with_control(
        actor, f"printf '#!/bin/sh\\ntouch {marker}\\n' > .githooks/pre-commit; true"
    )
    _git_marker_check(actor, [marker])
    assert result.returncode == 77


HOOK_MANAGER_AND_AGENT_CONFIG = (
    "lefthook.yml",
    ".lefthook-local.yaml",
    ".lefthook/pre-commit/x.sh",
    ".overcommit.yml",
    ".git-hooks/pre_commit/x.rb",
    ".zed/settings.json",
    ".helix/languages.toml",
    ".kiro/hooks/x.kiro.hook",
    ".roo/mcp.json",
    "opencode.json",
    ".opencode/x.md",
    ".aider.conf.yml",
)


def test_W05_W06_other_hook_managers_and_agents(actor: Actor) -> None:
    """The same family beyond the catalog's rows: hook managers whose config runs at the next commit
    (lefthook, overcommit), editors that start language servers named in project config (Zed, Helix),
    and agents that run commands or MCP servers from project config (Kiro, Roo, opencode, aider)."""
    result = sandboxed_with_control(actor, _write_all(HOOK_MANAGER_AND_AGENT_CONFIG) + "\ntrue")
    for relative in HOOK_MANAGER_AND_AGENT_CONFIG:
        assert not (actor.workspace / relative).exists(), relative
    assert result.returncode == 77


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_system_wide_startup_and_path_hijack(actor: Actor) -> None:
    """Outside the home, the places that run later for everyone: /etc/profile.d, cron, a `git` earlier on
    PATH in /usr/local/bin, systemd units, shared memory and /run. Captured (root) or refused (user);
    never on the host."""
    tag = actor.base.name
    targets = [
        Path(f"/etc/profile.d/{tag}.sh"),
        Path(f"/etc/cron.d/{tag}"),
        Path(f"/usr/local/bin/{tag}-git"),
        Path(f"/etc/systemd/system/{tag}.service"),
        Path(f"/var/spool/cron/{tag}"),
        Path(f"/dev/shm/{tag}"),
        Path(f"/run/{tag}"),
        Path(f"/opt/{tag}"),
    ]
    script = "\n".join(
        f"mkdir -p {t.parent} 2>/dev/null; echo 'touch MARKER' > {t} 2>/dev/null" for t in targets
    )
    sandboxed_with_control(actor, script + "\ntrue")
    for target in targets:
        assert not target.exists(), target
