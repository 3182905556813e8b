"""Shared fixtures: every test runs with HOME and XDG_* pointed at a temporary directory, never at the
developer's real home or real corral state.

`actor` runs the real `corral` CLI as root and as an unprivileged user the tests create, each with its
own home, workspace and corral state, so escape tests prove the boundary holds for both.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORRAL = str(Path(sys.executable).with_name("corral"))
TEST_USER = "corraltest"
SECRET = "CORRAL-TEST-SECRET-7f3a9c"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and XDG_* at a fresh directory for every test."""
    base = tmp_path_factory.mktemp("home")
    home = base / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        monkeypatch.setenv(name, str(home / sub))
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return home


def _ensure_test_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        return None
    subprocess.run(
        ["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], check=False, capture_output=True
    )
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        return None


@dataclass
class Actor:
    """Someone who runs corral: root, or the unprivileged test user. Owns a home with planted
    credentials, a git workspace, and corral state of their own."""

    name: str
    base: Path
    uid: int
    gid: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def workspace(self) -> Path:
        return self.base / "ws"

    @property
    def outside(self) -> Path:
        """A directory outside the workspace that the actor can write on the host (in the home: the
        actor's base lives in /tmp, which the sandbox replaces with a private tmpfs)."""
        return self.home / "outside"

    def run(
        self, *args: str, cwd: Path | None = None, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `corral ARGS` as this actor, with no TTY."""
        command = [CORRAL, *args]
        if self.uid != os.geteuid():
            command = [
                "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.gid}",
                "--init-groups",
                "--",
                *command,
            ]
        return subprocess.run(
            command,
            cwd=cwd or self.workspace,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def sandboxed(self, script: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """`corral run [extra] -c SCRIPT` in the workspace, denying every violation."""
        return self.run("run", "--on-violation", "deny", *extra, "-c", script)

    def chown_tree(self, path: Path) -> None:
        if self.uid == os.geteuid():
            return
        for root, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                os.lchown(os.path.join(root, name), self.uid, self.gid)
        os.lchown(path, self.uid, self.gid)


def make_actor(name: str, uid: int, gid: int, user_name: str) -> Actor:
    base = Path("/tmp") / f"corral-test-{name}-{secrets.token_hex(4)}"
    base.mkdir(mode=0o755)
    actor = Actor(name=name, base=base, uid=uid, gid=gid)
    home = actor.home
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(f"-----BEGIN KEY-----\n{SECRET}\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(f"[default]\naws_secret_access_key={SECRET}\n")
    (home / ".netrc").write_text(f"machine example.com password {SECRET}\n")
    (home / ".bashrc").write_text("# user's bashrc\n")
    actor.outside.mkdir()
    ws = actor.workspace
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / "README.md").write_text("sample project\n")
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    actor.env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "USER": user_name,
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(runtime),
        "GITHUB_TOKEN": SECRET,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "ANTHROPIC_API_KEY": SECRET,
        "MY_PASSWORD": SECRET,
    }
    actor.chown_tree(base)
    return actor


@pytest.fixture(params=["root", "user"])
def actor(request: pytest.FixtureRequest) -> Iterator[Actor]:
    """Runs each test twice: as root (these machines) and as an unprivileged user (real users)."""
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("the root variant needs the tests to run as root")
        made = make_actor("root", 0, 0, "root")
    else:
        if os.geteuid() == 0:
            user = _ensure_test_user()
            if user is None:
                pytest.skip(f"cannot create the unprivileged user {TEST_USER!r} (no useradd)")
            if shutil.which("setpriv") is None:
                pytest.skip("setpriv (util-linux) is needed to run as the unprivileged user")
            made = make_actor("user", user.pw_uid, user.pw_gid, TEST_USER)
        else:
            made = make_actor("user", os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name)
    try:
        yield made
    finally:
        shutil.rmtree(made.base, ignore_errors=True)
