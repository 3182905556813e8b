"""Attack catalog group 9 (credentials and environment), with the real bubblewrap, as root and as a
normal user. Every test plants the secret on the host, runs the attack sandboxed, and checks that the
secret never appears in the command's output nor in anything it left in the workspace.

C03 (masked credentials through the proxy) belongs to the egress issue; C04's project-level hidden
paths (`.env` read denies) to the trust issue.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SECRET, Actor
from tests.test_escape_support import assert_denied_under

CREDENTIAL_FILES = (
    ".aws/credentials",
    ".aws/config",
    ".ssh/id_rsa",
    ".ssh/id_ed25519",
    ".config/gh/hosts.yml",
    ".config/gcloud/credentials.db",
    ".azure/accessTokens.json",
    ".kube/config",
    ".docker/config.json",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".gnupg/private-keys-v1.d/key.key",
    ".cargo/credentials.toml",
    ".vault-token",
    ".password-store/email.gpg",
    ".local/share/keyrings/login.keyring",
    ".claude/.credentials.json",
    ".claude.json",
    ".codex/auth.json",
    ".gemini/oauth_creds.json",
    ".config/github-copilot/hosts.json",
    ".mozilla/firefox/abc.default/cookies.sqlite",
    ".config/google-chrome/Default/Cookies",
    ".config/chromium/Default/Login Data",
    ".bash_history",
    ".zsh_history",
    ".config/corral/planted-secret.txt",
    ".local/share/corral/planted-secret.txt",
)
"""C01: the catalog's list plus the rest of the default credential set and corral's own state."""


def plant(actor: Actor, relative: str, content: str | None = None) -> Path:
    """A file under the actor's home holding SECRET, owned by the actor."""
    path = actor.home / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if content is not None else f"token={SECRET}\n")
    actor.chown_path(path)
    return path


def assert_no_secret_left(actor: Actor, output: str) -> None:
    assert SECRET not in output
    for root, _dirs, files in os.walk(actor.workspace):
        if "/.git" in root:
            continue
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                assert SECRET.encode() not in path.read_bytes(), f"secret copied into {path}"


def test_C01_credential_files_unreadable(actor: Actor) -> None:
    for relative in CREDENTIAL_FILES:
        plant(actor, relative)
    paths = " ".join(f"'{actor.home / r}'" for r in CREDENTIAL_FILES)
    result = actor.sandboxed(f"cat {paths}; echo end")
    assert result.stdout.strip() == "end"
    assert_no_secret_left(actor, result.stdout + result.stderr)
    for relative in (".aws/credentials", ".ssh/id_rsa", ".netrc", ".kube/config", ".claude.json"):
        assert_denied_under(result.stderr, "fs-read", actor.home / relative, actor.home)
    assert result.returncode == 77
    # The host copies are untouched.
    assert SECRET in (actor.home / ".aws/credentials").read_text()


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_C01_other_spellings_and_readers(actor: Actor) -> None:
    """The same files reached by other path spellings and other programs: every one sees the decoy."""
    plant(actor, ".aws/credentials")
    plant(actor, ".ssh/id_ed25519")
    plant(actor, ".config/gh/hosts.yml")
    base = actor.base
    script = f"""
        cat ~/./.aws/credentials ~/.ssh/../.ssh/id_ed25519 ../home/.aws/credentials 2>&1
        cat /proc/self/root{actor.home}/.aws/credentials {base}//home/.config/gh/hosts.yml 2>&1
        ( cd ~/.ssh && cat id_ed25519 ) 2>&1
        grep -r . ~/.aws ~/.ssh ~/.config/gh 2>&1
        find ~ -path '*/.ssh/*' -type f -exec cat {{}} + 2>&1
        tar -C ~ -cf - .aws .ssh .config/gh 2>/dev/null | tr -cd '[:print:]'
        python3 -c 'import pathlib; print(pathlib.Path.home().joinpath(".aws/credentials").read_text())' 2>&1
        cp -r ~/.ssh ./copied-ssh 2>&1; cat ./copied-ssh/* 2>&1
        echo end
    """
    result = actor.sandboxed(script)
    assert "end" in result.stdout
    assert_no_secret_left(actor, result.stdout + result.stderr)


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_C01_new_credentials_under_hidden_dir_also_hidden(actor: Actor) -> None:
    """A hidden directory hides what is inside it, including entries the decoy does not list by name."""
    for index in range(300):  # more entries than a decoy mirrors
        plant(actor, f".ssh/keys/key{index:03d}")
    result = actor.sandboxed("cat ~/.ssh/keys/key299 ~/.ssh/keys/key000; ls ~/.ssh/keys | wc -l; echo end")
    assert "end" in result.stdout
    assert_no_secret_left(actor, result.stdout + result.stderr)


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_C01_hidden_paths_cannot_be_written_or_replaced(actor: Actor) -> None:
    """Hidden paths are decoys: writing, deleting or renaming them changes nothing on the host."""
    creds = plant(actor, ".aws/credentials")
    aws_config_before = (actor.home / ".aws/config").exists()  # a shared real home may hold one
    script = """
        echo evil > ~/.aws/credentials
        rm -rf ~/.ssh
        mv ~/.aws ~/aws-moved
        echo '[default]' > ~/.aws/config
        true
    """
    result = actor.sandboxed(script)
    assert creds.read_text() == f"token={SECRET}\n"
    assert (actor.home / ".ssh/id_rsa").exists()
    assert not (actor.home / "aws-moved").exists()
    assert (actor.home / ".aws/config").exists() == aws_config_before
    assert_no_secret_left(actor, result.stdout + result.stderr)


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_C02_environment_scrubbed(actor: Actor) -> None:
    env_secrets = {
        "GITHUB_TOKEN": SECRET,
        "GH_TOKEN": SECRET,
        "ANTHROPIC_API_KEY": SECRET,
        "OPENAI_API_KEY": SECRET,
        "AWS_ACCESS_KEY_ID": SECRET,
        "AWS_SESSION_TOKEN": SECRET,
        "NPM_TOKEN": SECRET,
        "DATABASE_URL": f"postgres://u:{SECRET}@db/x",
        "SSH_AUTH_SOCK": f"/run/{SECRET}/agent.sock",
        "DOCKER_HOST": f"tcp://{SECRET}:2375",
        "HTTPS_PROXY": f"http://u:{SECRET}@proxy:1",
        "UNRELATED_SETTING": SECRET,
    }
    actor.env.update(env_secrets)
    script = """
        env; printenv; set; export -p
        cat /proc/self/environ /proc/$$/environ; echo
        for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; done 2>/dev/null
        python3 -c 'import os; print(dict(os.environ))'
        echo end
    """
    result = actor.sandboxed(script)
    assert "end" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    for name in env_secrets:
        if not name.endswith("_PROXY"):  # corral sets its own egress proxy variables; the value differs
            assert f"{name}=" not in result.stdout
    assert "HOME=" in result.stdout
    assert "CORRAL_SANDBOX=1" in result.stdout


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_C02_sandbox_init_process_holds_no_host_environment(actor: Actor) -> None:
    """Regression: bwrap's own process is pid 1 in the sandbox and /proc/1/environ is readable there. It
    used to carry corral's whole environment (tokens included); it now gets the filtered one."""
    result = actor.sandboxed("tr '\\0' '\\n' < /proc/1/environ; echo end")
    assert "end" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert "GITHUB_TOKEN" not in result.stdout


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_C01_symlinked_credential_target_hidden(actor: Actor) -> None:
    target = plant(actor, "dotfiles/ssh/id_ed25519")
    link = actor.home / ".ssh/id_ed25519"
    if os.path.lexists(link):
        link.unlink()  # a shared real home keeps the key other tests planted
    link.symlink_to(target)
    try:
        result = actor.sandboxed("cat ~/.ssh/id_ed25519; grep -rh CORRAL-TEST ~ 2>/dev/null; echo end")
    finally:
        link.unlink()
    assert "end" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_C01_symlinked_credential_dir(actor: Actor) -> None:
    target = plant(actor, "dotfiles/aws/credentials").parent
    aws = actor.home / ".aws"
    saved = {name.name: name.read_bytes() for name in aws.iterdir() if name.is_file()}
    for name in aws.iterdir():
        name.unlink()
    aws.rmdir()
    aws.symlink_to(target)
    try:
        result = actor.sandboxed("cat ~/.aws/credentials ~/dotfiles/aws/credentials; echo end")
    finally:
        # The home may be the actor's real one, shared with other tests: put the directory back.
        aws.unlink()
        aws.mkdir()
        for file_name, content in saved.items():
            (aws / file_name).write_bytes(content)
        actor.chown_tree(aws)
    assert result.returncode != 125, result.stderr
    assert "end" in result.stdout
    assert SECRET not in result.stdout + result.stderr
