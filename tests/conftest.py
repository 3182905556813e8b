"""Shared fixtures: every test runs with HOME and XDG_* pointed at a temporary directory, never at the
developer's real home or real corral state.

`actor` runs the real `corral` CLI as root and as an unprivileged user the tests create, so escape
tests prove the boundary holds for both. Root gets a fresh home per test (and its password-database
home, /root, differs from it: both must be protected). The unprivileged user's HOME is its real home
(the password database's), where the credentials are planted idempotently and never removed, since
several test runs may share it at once; each test gets its own workspace and corral state (XDG_*) in a
directory of its own, and its own `outside` directory under `~/.corral-tests/`.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.gvisor import RunscUnavailable, find_runsc

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


@pytest.fixture(autouse=True)
def sessions_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Session a test composes in this process is closed when the test ends, even one the test
    forgot or left by failing: each holds descriptors (ledger, rules, proxy, place), and a normal user's
    soft limit of 1,024 was reached late in the suite when sessions leaked."""
    from corral.session import Session

    opened: list[Session] = []
    original = Session.__init__

    def tracked(self: Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(Session, "__init__", tracked)
    yield
    for session in opened:
        session.close()


@pytest.fixture
def demo_directory() -> Iterator[None]:
    """The demo project lives at a fixed path (so pictures are reproducible): hold it for the test, take
    turns with other processes using it, and leave nothing behind for another user's run."""
    from screenshots import demo

    with demo.exclusive():
        yield


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


TEST_DIRS = ".corral-tests"
"""Per-test directories inside a shared real home (snapshots of the home skip it)."""


@dataclass
class Actor:
    """Someone who runs corral: root, or the unprivileged test user. Has a home with planted
    credentials, a git workspace, and corral state of their own."""

    name: str
    base: Path
    uid: int
    gid: int
    env: dict[str, str] = field(default_factory=dict)
    real_home: Path | None = None
    """The unprivileged user's real home (shared by every test), or None for a per-test home."""
    backend: str = "bwrap"
    """The sandbox backend this actor's corral runs with (its user config, `sandbox_backend`)."""

    @property
    def home(self) -> Path:
        return self.real_home if self.real_home is not None else self.base / "home"

    @property
    def workspace(self) -> Path:
        return self.base / "ws"

    @property
    def own_dir(self) -> Path:
        """This test's own directory inside the home."""
        if self.real_home is None:
            return self.home
        return self.real_home / TEST_DIRS / self.base.name

    @property
    def state_home(self) -> Path:
        """Where this actor's corral state lives: XDG_* point at `.config`, `.local/share`, ... here."""
        return self.own_dir

    @property
    def outside(self) -> Path:
        """A directory outside the workspace that the actor can write on the host (in the home: the
        actor's base lives in /tmp, which the sandbox replaces with a private tmpfs)."""
        return self.own_dir / "outside"

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        timeout: float = 60,
        preexec: Callable[[], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `corral ARGS` as this actor, with no TTY (`preexec`: run in the child before it execs)."""
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
            preexec_fn=preexec,
        )

    def sandboxed(self, script: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """`corral run [extra] -c SCRIPT` in the workspace, denying every violation."""
        return self.run("run", "--on-violation", "deny", *extra, "-c", script)

    def chown_path(self, path: Path) -> None:
        """Give `path` and its directories up to the home (or the base) to the actor: for files planted
        in a shared real home, where walking the whole home would take minutes."""
        if self.uid == os.geteuid():
            return
        stops = (self.home, self.base, Path("/"))
        current = path
        while current not in stops:
            try:
                os.lchown(current, self.uid, self.gid)
            except FileNotFoundError:
                pass
            current = current.parent

    def chown_tree(self, path: Path) -> None:
        """Give `path` and everything below it to the actor (tolerates entries other test runs remove
        meanwhile from a shared home)."""
        if self.uid == os.geteuid():
            return
        for root, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                try:
                    os.lchown(os.path.join(root, name), self.uid, self.gid)
                except FileNotFoundError:
                    continue
        os.lchown(path, self.uid, self.gid)


PLANTED: tuple[tuple[str, str], ...] = (
    (".ssh/id_rsa", f"-----BEGIN KEY-----\n{SECRET}\n"),
    (".aws/credentials", f"[default]\naws_secret_access_key={SECRET}\n"),
    (".netrc", f"machine example.com password {SECRET}\n"),
    (".bashrc", "# user's bashrc\n"),
)


def _plant_home(home: Path) -> None:
    """The credentials every actor's home holds; rewritten only when missing or changed (idempotent, so
    test runs sharing one real home never see them vanish)."""
    for relative, content in PLANTED:
        path = home / relative
        if os.path.islink(path.parent):
            continue  # a test replaced the directory with a link for a moment; it restores it
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.read_text() == content:
                continue
        except OSError:
            pass
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        temp.write_text(content)
        os.replace(temp, path)


def _runsc_missing() -> str | None:
    try:
        find_runsc()
    except RunscUnavailable as error:
        return str(error)
    return None


RUNSC_MISSING = _runsc_missing()


def _landlock_missing() -> str | None:
    from sandbox.backend import BackendParams, unavailable

    cache = Path("/tmp") / f"corral-test-probe-{os.geteuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    return unavailable("landlock", BackendParams(runtime_dir=cache / "run", cache_dir=cache))


LANDLOCK_MISSING = _landlock_missing()


def _backend_param(name: str, *, slow: bool = False) -> Any:
    """One backend as a test parameter: skipped with the reason where it cannot run, `slow` when asked."""
    marks: list[pytest.MarkDecorator] = [pytest.mark.slow] if slow else []
    if name == "gvisor":
        marks += [
            pytest.mark.slow,
            pytest.mark.skipif(RUNSC_MISSING is not None, reason=f"gVisor backend: {RUNSC_MISSING}"),
        ]
    if name == "landlock":
        marks.append(
            pytest.mark.skipif(LANDLOCK_MISSING is not None, reason=f"Landlock backend: {LANDLOCK_MISSING}")
        )
    return pytest.param(name, marks=marks, id=name) if marks else name


SANDBOX_BACKENDS = (_backend_param("bwrap"), _backend_param("gvisor"))
"""The backends the escape tests run against (the gVisor variants are `slow`: a cold runsc per command).
Landlock enforces less (README: Backends), so an escape test runs against it only when marked
`@pytest.mark.backends("bwrap", "gvisor", "landlock")`, a family that applies to it."""
BACKEND_OVERRIDE = os.environ.get("CORRAL_TEST_BACKEND")
"""Run every escape test against this one backend (e.g. `CORRAL_TEST_BACKEND=landlock`), to survey them."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every escape test that uses `actor` runs against each backend in `SANDBOX_BACKENDS`, except a test
    marked `bwrap_only` (what it checks is bwrap's own mechanism, not the boundary the person sees).
    `@pytest.mark.backends(*names, slow=(names))` names the backends of a test instead (any module)."""
    if "actor" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if BACKEND_OVERRIDE is not None:
        metafunc.parametrize("sandbox_backend", [_backend_param(BACKEND_OVERRIDE)], indirect=True)
        return
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None:
        slow = marker.kwargs.get("slow", ())
        params = [_backend_param(name, slow=name in slow) for name in marker.args]
        metafunc.parametrize("sandbox_backend", params, indirect=True)
        return
    if (
        not module.startswith("test_escape_")
        or metafunc.definition.get_closest_marker("bwrap_only") is not None
    ):
        return
    metafunc.parametrize("sandbox_backend", SANDBOX_BACKENDS, indirect=True)


@pytest.fixture
def sandbox_backend(request: pytest.FixtureRequest) -> str:
    """The backend the actor's corral runs with (its user config's `sandbox.backend`)."""
    return str(getattr(request, "param", "bwrap"))


def _use_backend(actor: Actor, backend: str) -> None:
    actor.backend = backend
    if backend == "bwrap":
        return
    config = actor.state_home / ".config" / "corral" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[sandbox]\nbackend = "{backend}"\n')
    actor.chown_tree(actor.state_home / ".config")


def make_actor(name: str, uid: int, gid: int, user_name: str, real_home: Path | None = None) -> Actor:
    base = Path("/tmp") / f"corral-test-{name}-{secrets.token_hex(4)}"
    base.mkdir(mode=0o755)
    actor = Actor(name=name, base=base, uid=uid, gid=gid, real_home=real_home)
    home = actor.home
    home.mkdir(exist_ok=True)
    _plant_home(home)
    actor.outside.mkdir(parents=True)
    ws = actor.workspace
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / "README.md").write_text("sample project\n")
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    # corral's state per test: in the home for a per-test home, in the test's own directory otherwise.
    state = actor.state_home
    actor.env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "USER": user_name,
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(state / ".config"),
        "XDG_DATA_HOME": str(state / ".local/share"),
        "XDG_CACHE_HOME": str(state / ".cache"),
        "XDG_STATE_HOME": str(state / ".local/state"),
        "XDG_RUNTIME_DIR": str(runtime),
        "GITHUB_TOKEN": SECRET,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "ANTHROPIC_API_KEY": SECRET,
        "MY_PASSWORD": SECRET,
    }
    actor.chown_tree(base)
    if real_home is not None:
        for relative, _content in PLANTED:
            path = home / relative
            if path.exists():
                os.lchown(path, uid, gid)
                os.lchown(path.parent, uid, gid)
        actor.chown_tree(actor.own_dir.parent)
    return actor


@pytest.fixture(params=["root", "user"])
def actor(request: pytest.FixtureRequest, sandbox_backend: str) -> Iterator[Actor]:
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
            home = Path(user.pw_dir)
            if not home.is_dir():
                home.mkdir(parents=True)
                os.chown(home, user.pw_uid, user.pw_gid)
            made = make_actor("user", user.pw_uid, user.pw_gid, TEST_USER, real_home=home)
        else:
            pw = pwd.getpwuid(os.getuid())
            made = make_actor("user", os.getuid(), os.getgid(), pw.pw_name, real_home=Path(pw.pw_dir))
    _use_backend(made, sandbox_backend)
    try:
        yield made
    finally:
        shutil.rmtree(made.base, ignore_errors=True)
        if made.real_home is not None:
            shutil.rmtree(made.own_dir, ignore_errors=True)
