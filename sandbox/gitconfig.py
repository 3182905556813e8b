"""Which changes to a repository's git config are git's own housekeeping, decided key by key.

`.git/config` is protected because keys in it run programs at the person's next git command
(`core.fsmonitor`, `core.pager`, `alias.*` with `!`, `filter.*`, `diff.*.textconv`, `core.hooksPath`,
`include.path`, `url.*.insteadOf`, `credential.helper`, ...). But git itself writes it all the time
for branch tracking (`checkout -b`, `push -u`, `branch --set-upstream-to`, `remote add`), and asking
about those is noise that trains people to say yes. So the decision is made on what the change does,
not on the file: the old and the new file are both parsed by git itself (`git config --file COPY
--list -z`, no includes followed, on a private copy, with no system or global config: nothing in the
file can run), the key/value multisets are compared, and a change that only adds or removes
`HOUSEKEEPING` keys applies with no prompt. Anything else — one other key, a file git cannot parse,
no git to parse it — is a protected change as before, and carries the exact key/value changes
(`ConfigDiff.lines`) so that an answer "allow for this project" is bound to those changes, never to the
whole file from then on.

`HOUSEKEEPING` is the one rule: a key matches when its section and final name match a pattern, with any
subsection (branch and remote names are free text).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from boundary.repofiles import read_repo_file

HOUSEKEEPING: frozenset[tuple[str, str]] = frozenset(
    {
        # branch.<name>.*: upstream tracking, written by checkout -b/-t, push -u, branch -u / --track.
        ("branch", "remote"),
        ("branch", "merge"),
        ("branch", "rebase"),
        ("branch", "pushremote"),
        ("branch", "description"),
        # remote.<name>.*: where a remote is and what to fetch (remote add, clone). Never uploadpack,
        # receivepack, vcs or proxy settings: those choose programs or hosts git runs or reaches.
        ("remote", "url"),
        ("remote", "pushurl"),
        ("remote", "fetch"),
        ("remote", "push"),
    }
)
"""(section, key) pairs git writes for branch tracking; matched with any subsection."""

GIT_CANDIDATES = ("/usr/bin/git", "/bin/git", "/usr/local/bin/git")
"""git from a system directory only: never a `git` the workspace or PATH could supply."""
MAX_CONFIG_BYTES = 1 << 20
TIMEOUT_S = 10.0
CONFIG_NAMES = frozenset({"config", "config.worktree"})


def is_git_config(relative: PurePosixPath) -> bool:
    """Whether `relative` (to the workspace) is a git config file inside `.git` (also worktrees' and
    submodules' config files there)."""
    parts = [part.casefold() for part in relative.parts]
    return len(parts) >= 2 and parts[0] == ".git" and parts[-1] in CONFIG_NAMES


def is_housekeeping(key: str, value: str = "") -> bool:
    """Whether git writes `key` (as `git config --list` prints it) with `value` for branch tracking.
    A remote URL naming a remote helper (`transport::address`) is not: git would run
    `git-remote-<transport>`."""
    section, _, rest = key.partition(".")
    name = rest.rpartition(".")[2] if "." in rest else ""
    if not name or (section.lower(), name.lower()) not in HOUSEKEEPING:
        return False
    return not (section.lower() == "remote" and name.lower() in ("url", "pushurl") and "::" in value)


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """The key/value changes between two config files: `+key=value` and `-key=value` lines, sorted."""

    lines: tuple[str, ...]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(line[1:].partition("=")[0] for line in self.lines)

    @property
    def housekeeping_only(self) -> bool:
        """Whether every change is a housekeeping key (an empty diff too: git reads the same keys)."""
        return all(is_housekeeping(*line[1:].partition("=")[::2]) for line in self.lines)


def _git() -> str | None:
    for candidate in GIT_CANDIDATES:
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        if info.st_uid == 0 and not info.st_mode & 0o022 and os.access(candidate, os.X_OK):
            return candidate
    return None


def parse_entries(data: bytes) -> Counter[tuple[str, str]] | None:
    """The (key, value) multiset git reads from config bytes `data`; None when git cannot parse them
    (or there is no git): the caller then treats the change as protected."""
    git = _git()
    if git is None:
        return None
    with tempfile.TemporaryDirectory(prefix="corral-gitconfig-") as scratch:
        copy = os.path.join(scratch, "config")
        with open(copy, "wb") as handle:
            handle.write(data)
        environment = {
            "PATH": "/usr/bin:/bin",
            "HOME": scratch,
            "XDG_CONFIG_HOME": scratch,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_SYSTEM": "/dev/null",
            "GIT_CEILING_DIRECTORIES": scratch,
            "LC_ALL": "C",
        }
        try:
            listed = subprocess.run(
                [git, "config", "--file", copy, "--no-includes", "--list", "-z"],
                cwd=scratch,
                env=environment,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
    if listed.returncode != 0:
        return None
    entries: Counter[tuple[str, str]] = Counter()
    for record in listed.stdout.split(b"\0"):
        if not record:
            continue
        key, newline, value = record.decode("utf-8", "surrogateescape").partition("\n")
        # A key with no `=` is a boolean true; keep it apart from an explicit empty value.
        entries[(key, value if newline else "\0")] += 1
    return entries


def _line(sign: str, key: str, value: str) -> str:
    shown = "" if value == "\0" else "=" + value
    return f"{sign}{key}{shown}"


def diff_config(old: bytes, new: bytes) -> ConfigDiff | None:
    """What the change from `old` to `new` does, key by key; None when either cannot be parsed."""
    before = parse_entries(old) if old else Counter()
    after = parse_entries(new)
    if before is None or after is None:
        return None
    added = after - before
    removed = before - after
    lines = [_line("+", k, v) for (k, v), n in added.items() for _ in range(n)]
    lines += [_line("-", k, v) for (k, v), n in removed.items() for _ in range(n)]
    return ConfigDiff(tuple(sorted(lines)))


def diff_captured(host_file: Path, captured: Path | None) -> ConfigDiff | None:
    """The change a command made to the git config at `host_file` (its captured copy `captured`, None
    for a deletion); None when it cannot be judged key by key."""
    if captured is None:
        return None
    new = read_repo_file(captured, MAX_CONFIG_BYTES).content
    if new is None:
        return None
    current = read_repo_file(host_file, MAX_CONFIG_BYTES)
    if current.content is None and current.problem != "missing":
        return None
    return diff_config(current.content or b"", new)
