"""Issue 10 item 2: what runs later on the host is protected by principle, with the real bubblewrap, as
root and as an unprivileged user. Each test writes from inside the sandbox and checks the host after.

- build-tool launchers and wrappers, editor and dev-container config, git's control surface at any
  depth, and the files that make the workspace top a bare repository;
- files that protected files pull in (git includes and the hooks directory and programs they name,
  direnv's sourced and loaded files), resolved when the policy is built;
- a trusted project's writable path never beats a protected one, and one that is a symlink is refused;
- a link whose target can change later is withdrawn, across commands.
"""

from __future__ import annotations

import os
from pathlib import Path

from boundary.matcher import default_matcher
from boundary.table import Kind, rows
from sandbox.policy import Policy, build_policy
from tests.conftest import Actor
from tests.test_escape_support import assert_denied_under, host_run, initial_commit, plant

_SHELL_WHY = next(r.why for r in rows(Kind.PROTECTED) if r.pattern == ".bashrc")

LAUNCHERS = (
    ".mvn/jvm.config",
    ".mvn/maven.config",
    ".mvn/extensions.xml",
    ".mvn/wrapper/maven-wrapper.properties",
    "mvnw",
    "gradlew",
    "gradle/wrapper/gradle-wrapper.jar",
    "gradle/wrapper/gradle-wrapper.properties",
    "gradle.properties",
    ".devcontainer.json",
    ".devcontainer/devcontainer.json",
    ".cargo/config.toml",
    "rust-toolchain.toml",
    ".yarn/releases/yarn-4.1.0.cjs",
    ".yarnrc.yml",
    ".envrc.local",
    "app.code-workspace",
    ".nvim.lua",
    ".dir-locals.el",
    ".bazelrc",
    ".jvmopts",
    "services/api/.mvn/jvm.config",  # at any depth
    "services/api/gradlew",
    "services/web/.devcontainer.json",
    ".git/rebase-merge/git-rebase-todo",
    ".git/objects/info/alternates",
    ".git/worktrees/w/config",
)
"""Things host tools run or load as code or configuration, written by a sandboxed command."""


def test_launchers_wrappers_and_git_control_surface_protected(actor: Actor) -> None:
    writes = "\n".join(f"mkdir -p \"$(dirname '{p}')\"; echo 'touch MARKER' > '{p}'" for p in LAUNCHERS)
    result = actor.sandboxed(f"{writes}\necho fine > notes.txt")
    for relative in LAUNCHERS:
        assert not (actor.workspace / relative).exists(), relative
        assert_denied_under(result.stderr, "fs-protected", actor.workspace / relative)
    assert (actor.workspace / "notes.txt").read_text() == "fine\n"  # ordinary writes still land
    assert result.returncode == 77


def test_bare_repository_files_at_the_top_protected(actor: Actor) -> None:
    """HEAD, config, objects/ and refs/ at the workspace top turn it into a bare repository for host
    git (which then runs that `config`). The same names deeper down are ordinary files."""
    script = """
        echo 'ref: refs/heads/main' > HEAD
        printf '[core]\\n\\tfsmonitor = touch MARKER\\n' > config
        mkdir -p objects/info refs/heads && echo x > objects/info/packs && echo x > refs/heads/main
        mkdir -p src docs && echo x > src/config && echo x > docs/HEAD
    """
    result = actor.sandboxed(script)
    for name in ("HEAD", "config", "objects", "refs"):
        assert not (actor.workspace / name).exists(), name
        assert_denied_under(result.stderr, "fs-protected", actor.workspace / name)
    assert (actor.workspace / "src/config").read_text() == "x\n"
    assert (actor.workspace / "docs/HEAD").read_text() == "x\n"
    assert result.returncode == 77


def test_files_git_config_pulls_in_are_protected(actor: Actor) -> None:
    """`.git/config` includes a workspace file, which includes another; together they set a hooks
    directory and an fsmonitor program inside the workspace. All four are protected."""
    initial_commit(actor)
    marker = actor.outside / "pulled-in"
    with open(actor.workspace / ".git/config", "a") as config:
        config.write("[include]\n\tpath = ../tools/extra.gitconfig\n")
    plant(
        actor,
        actor.workspace / "tools/extra.gitconfig",
        "[core]\n\thooksPath = githooks\n[include]\n\tpath = nested.inc\n",
    )
    plant(
        actor, actor.workspace / "tools/nested.inc", '[includeIf "gitdir:/"]\n\tpath = ../scripts/more.inc\n'
    )
    plant(actor, actor.workspace / "scripts/more.inc", "[core]\n\tfsmonitor = scripts/fsmon.sh\n")
    plant(actor, actor.workspace / "scripts/fsmon.sh", "#!/bin/sh\nexit 1\n", mode=0o755)
    plant(actor, actor.workspace / "githooks/.keep", "")
    host_run(actor, "git", "add", "-A")
    host_run(actor, "git", "commit", "-q", "-m", "tools")
    before = {
        p: (actor.workspace / p).read_bytes()
        for p in ("tools/extra.gitconfig", "tools/nested.inc", "scripts/more.inc", "scripts/fsmon.sh")
    }
    script = f"""
        printf '[core]\\n\\tpager = touch {marker}\\n' >> tools/extra.gitconfig
        echo '[alias] st = !touch {marker}' >> tools/nested.inc
        echo '[core] editor = touch {marker}' >> scripts/more.inc
        printf '#!/bin/sh\\ntouch {marker}\\nexit 1\\n' > scripts/fsmon.sh
        printf '#!/bin/sh\\ntouch {marker}\\n' > githooks/pre-commit; chmod +x githooks/pre-commit
        echo fine > notes.txt
    """
    result = actor.sandboxed(script)
    for relative, content in before.items():
        assert (actor.workspace / relative).read_bytes() == content, relative
        assert_denied_under(result.stderr, "fs-protected", actor.workspace / relative)
    assert not (actor.workspace / "githooks/pre-commit").exists()
    assert_denied_under(result.stderr, "fs-protected", actor.workspace / "githooks/pre-commit")
    assert (actor.workspace / "notes.txt").exists()
    for argv in (("git", "status"), ("git", "commit", "-q", "--allow-empty", "-m", "later")):
        host_run(actor, *argv)
    assert not marker.exists()


def test_files_direnv_pulls_in_are_protected(actor: Actor) -> None:
    """`.envrc` loads `.env.dev` (dotenv), sources `scripts/env.sh` (which sources another) and puts
    `bin` first on the shell's PATH: direnv runs or loads all of them in the user's shell."""
    plant(actor, actor.workspace / ".envrc", "dotenv .env.dev\nsource_env scripts/env.sh\nPATH_add bin\n")
    plant(actor, actor.workspace / ".env.dev", "A=1\n")
    plant(actor, actor.workspace / "scripts/env.sh", "source_env_if_exists ../local/env.sh\n")
    plant(actor, actor.workspace / "local/env.sh", "export B=1\n")
    plant(actor, actor.workspace / "bin/.keep", "")
    script = """
        echo 'touch MARKER' >> .env.dev
        echo 'touch MARKER' >> scripts/env.sh
        echo 'touch MARKER' >> local/env.sh
        printf '#!/bin/sh\\ntouch MARKER\\n' > bin/ls; chmod +x bin/ls
        echo fine > notes.txt
    """
    result = actor.sandboxed(script)
    assert (actor.workspace / ".env.dev").read_text() == "A=1\n"
    assert (actor.workspace / "scripts/env.sh").read_text() == "source_env_if_exists ../local/env.sh\n"
    assert (actor.workspace / "local/env.sh").read_text() == "export B=1\n"
    assert not (actor.workspace / "bin/ls").exists()
    for relative in (".env.dev", "scripts/env.sh", "local/env.sh", "bin/ls"):
        assert_denied_under(result.stderr, "fs-protected", actor.workspace / relative)
    assert (actor.workspace / "notes.txt").exists()


def test_writable_path_never_beats_protection_and_links_are_refused(tmp_path: Path) -> None:
    """Policy level (no sandbox, runs once): a trusted project's `paths.writable` that names a
    protected path changes nothing, and one that is or passes through a symlink (a sandboxed
    `ln -s .git/hooks build`) is refused, re-checked at every policy build."""
    workspace = tmp_path / "ws"
    (workspace / ".git/hooks").mkdir(parents=True)
    (workspace / "real").mkdir()
    home = tmp_path / "home"
    home.mkdir()

    def policy(*writable: Path) -> Policy:
        return build_policy(
            workspace=workspace, cwd=workspace, home=home, environ={}, extra_writable=writable
        )

    plain = policy(workspace / "build", workspace / ".git/hooks")
    assert plain.is_protected(workspace / ".git/hooks/pre-commit", replaces_node=False)
    (workspace / "build").symlink_to(".git/hooks")
    (workspace / "via").symlink_to("real")
    linked = policy(workspace / "build", workspace / "via/out", workspace / "real/out")
    assert workspace / "build" in linked.refused_writable
    assert workspace / "via/out" in linked.refused_writable
    assert linked.extra_writable == (workspace / "real/out",)
    assert linked.is_protected(workspace / ".git/hooks/pre-commit", replaces_node=False)


def test_table_is_the_one_source(tmp_path: Path) -> None:
    """The prompt's reasons and the sandbox's protection come from the same rows: every protected row
    is protected by the policy and explained with its own reason."""
    from boundary.violations import Violation, ViolationKind
    from corral.sensitivity import is_sensitive, why_it_matters

    workspace = tmp_path / "ws"
    workspace.mkdir()
    policy = build_policy(workspace=workspace, cwd=workspace, home=tmp_path, environ={})
    for row in rows(Kind.PROTECTED):
        relative = row.pattern.replace("*", "x") + ("/inner" if row.subtree else "")
        path = workspace / relative
        assert policy.is_protected(path, replaces_node=False), row.pattern
        violation = Violation(ViolationKind.FS_PROTECTED, str(path), "create")
        assert is_sensitive(violation)
        first = default_matcher().row_for(relative)
        assert first is not None, row.pattern
        if not row.top and not relative.startswith(".git/hooks") and first.why != _SHELL_WHY:
            assert why_it_matters(violation) == first.why, row.pattern


def test_link_withdrawn_when_its_target_changes_in_a_later_command(actor: Actor) -> None:
    """Command 1 leaves `a -> sub/x` with `sub` a plain directory (harmless). Command 2 turns `sub` into
    a link: to the hooks (withdrawn itself), or to an ordinary directory (kept), and either way `a`
    now goes through a link a later command can retarget, so it is withdrawn too."""
    first = actor.sandboxed("mkdir -p sub other && echo x > sub/x && ln -s sub/x a && ln -s sub/x b")
    assert first.returncode == 0, first.stderr
    assert os.readlink(actor.workspace / "a") == "sub/x"
    second = actor.sandboxed("rm -rf sub && ln -s .git/hooks sub")
    assert not os.path.lexists(actor.workspace / "sub")
    assert not os.path.lexists(actor.workspace / "a")
    assert not os.path.lexists(actor.workspace / "b")
    assert_denied_under(second.stderr, "fs-protected", actor.workspace / "sub")
    assert_denied_under(second.stderr, "fs-protected", actor.workspace / "a")
    third = actor.sandboxed("mkdir -p sub2 && echo y > sub2/y && ln -s sub2/y c")
    assert third.returncode == 0, third.stderr
    fourth = actor.sandboxed("mv sub2 other/sub2 && ln -s other/sub2 sub2")
    assert os.readlink(actor.workspace / "sub2") == "other/sub2"  # a plain link to a directory stays
    assert not os.path.lexists(actor.workspace / "c")
    assert_denied_under(fourth.stderr, "fs-protected", actor.workspace / "c")
    assert not os.listdir(actor.workspace / ".git/hooks") or all(
        name.endswith(".sample") for name in os.listdir(actor.workspace / ".git/hooks")
    )


def test_home_and_password_home_both_protected(actor: Actor) -> None:
    """`$HOME` and the password database's home differ (root's tests use a fresh HOME; the user's runs
    with HOME pointed elsewhere here): credentials in the password home stay hidden too, and a write
    there is captured, not applied."""
    import pwd

    real_home = Path(pwd.getpwuid(actor.uid).pw_dir)
    if actor.home == real_home:
        other = actor.base / "other-home"
        other.mkdir()
        actor.chown_tree(other)
        actor.env["HOME"] = str(other)
    secret_file = real_home / ".ssh/id_rsa"
    if actor.uid == 0:
        secret_file = real_home / f".corral-test-{actor.base.name}"
        secret_file.write_text("CORRAL-TEST-SECRET-7f3a9c\n")
    try:
        result = actor.sandboxed(
            f"cat {secret_file}; echo x > {real_home}/corral-dropped-{actor.base.name}; echo end"
        )
        assert "CORRAL-TEST-SECRET" not in result.stdout + result.stderr
        assert "end" in result.stdout
        assert not (real_home / f"corral-dropped-{actor.base.name}").exists()
        assert_denied_under(result.stderr, "fs-read", secret_file)
    finally:
        if actor.uid == 0:
            secret_file.unlink()
