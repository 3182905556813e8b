"""The words of a decision: what a front end is shown, and what it may answer.

A front end (Textual app, prompt-toolkit line mode, a test) implements one callable,
`AskCallback = Callable[[PromptRequest], PromptAnswer]`. It is shown a `PromptRequest` (the command in
full, the project, every violation, grouped for display, with a why-it-matters line per target and the
set of sensitive targets) and answers either one `Decision` for the whole request or a
`dict[Violation, Decision]`. It never decides policy: `corral.escalation.Escalator` does.

`why_it_matters` and `is_sensitive` classify targets: protected workspace paths and credential stores
(both from `boundary.table`, the table the sandbox enforces), shell start-up files, PATH directories,
and hosts. A rule for a
sensitive target ("allow for this project") needs `Decision(confirmed_sensitive=True)`.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath

from boundary.matcher import default_matcher
from boundary.table import credential_why
from sandbox.report import Violation, ViolationKind


class Scope(StrEnum):
    """How far an answer reaches."""

    ONCE = "once"
    """Allow this violation for this command only."""
    SESSION = "session"
    """Allow this target until the session (the `Session` object) ends."""
    PROJECT = "project"
    """Allow this target in this project from now on: stored as a rule in the user's data dir."""
    DENY = "deny"
    """Refuse: captured writes are discarded, the connection stays closed. Remembered for the session."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One answer. `confirmed_sensitive` must be set for a project rule on a sensitive target."""

    scope: Scope
    confirmed_sensitive: bool = False

    @property
    def allows(self) -> bool:
        """True unless this is a denial."""
        return self.scope is not Scope.DENY


DENY = Decision(Scope.DENY)
"""The answer every failure turns into."""


@dataclass(frozen=True, slots=True)
class ViolationGroup:
    """Violations of one kind collapsed under a common directory (`/a/b/`) or domain (`*.example.com`).

    `pattern` is for display only: rules are never made from it (a rule names one path, one directory
    the person chose, or one exact host).
    """

    kind: ViolationKind
    pattern: str
    violations: tuple[Violation, ...]

    @property
    def count(self) -> int:
        """How many violations the group holds."""
        return len(self.violations)


@dataclass(frozen=True, slots=True)
class PromptRequest:
    """Everything a front end shows for one command that crossed the boundary. One per command.

    `command` is the full command text, to render first and in full. `description` is what the agent
    said the command does (A03): unverified text, to show after the command and labelled as such.
    `violations` are the ones still undecided; `groups` collapse them for a summary view with the
    details one key away; `sensitive` holds the violations whose project rule needs an explicit
    confirmation; `reasons` maps each target to a one-line why-it-matters. `timeout_s` is how long the
    front end has before corral denies; `cancelled` is set when corral stopped waiting (the front end
    should then dismiss its dialog: the answer will be ignored).
    """

    command: str
    project: Path
    violations: tuple[Violation, ...]
    groups: tuple[ViolationGroup, ...]
    sensitive: frozenset[Violation]
    reasons: Mapping[str, str]
    summary: str
    timeout_s: float
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)
    description: str | None = None


PromptAnswer = Decision | Mapping[Violation, Decision]
"""One decision for the whole request, or one per violation (a missing violation is denied)."""

AskCallback = Callable[[PromptRequest], PromptAnswer]
"""What a front end implements. It runs on a worker thread; it may block until the person answers."""


# --- classification -------------------------------------------------------------------------------

_HOOK_MOMENT = {
    "pre-commit": "at your next commit",
    "prepare-commit-msg": "at your next commit",
    "commit-msg": "at your next commit",
    "post-commit": "at your next commit",
    "pre-push": "at your next push",
    "post-checkout": "at your next checkout or switch",
    "post-merge": "at your next merge or pull",
    "pre-rebase": "at your next rebase",
    "post-rewrite": "at your next rebase or amend",
    "pre-auto-gc": "when git next collects garbage",
    "fsmonitor-watchman": "at every git status",
}

_SHELL_RC = {
    ".bashrc": "runs in every new shell",
    ".bash_profile": "runs at every login shell",
    ".bash_login": "runs at every login shell",
    ".bash_logout": "runs when a login shell exits",
    ".profile": "runs at every login",
    ".zshrc": "runs in every new zsh",
    ".zshenv": "runs in every zsh, even scripts",
    ".zprofile": "runs at every zsh login",
    ".zlogin": "runs at every zsh login",
    ".inputrc": "changes key bindings in every shell",
}

# Names matched as the last components of a path, anywhere (workspace or home).
# Value: why it matters. A path with a specific reason is sensitive.
_SUFFIX_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    ((".gitattributes",), "can route files through filter drivers at your next checkout or add"),
    ((".env",), "tools load it: it can change their endpoints, config home or credentials"),
    ((".gitconfig",), "can set hooks, aliases and pagers that run at every git command"),
    (("git", "config"), "can set hooks, aliases and pagers that run at every git command"),
    ((".nvmrc",), "version managers switch the node binary you run from it"),
    ((".vimrc",), "your editor runs this at startup"),
    ((".emacs",), "your editor runs this at startup"),
)

# Directories: anything under a directory with these last components.
_DIR_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    ((".github", "workflows"), "runs in CI with the repository's secrets at the next push"),
    ((".config", "autostart"), "runs when you log in to the desktop"),
    ((".config", "systemd", "user"), "systemd starts user services from here outside any sandbox"),
    ((".config", "fish"), "runs in every new fish shell"),
    ((".config", "nvim"), "your editor runs this at startup"),
    ((".config", "corral"), "corral's own settings: changing them changes what is allowed"),
    ((".local", "share", "corral"), "corral's own state: trust, rules and ledger"),
    ((".local", "bin"), "comes first on PATH: a program here can replace a command you run"),
    (("site-packages",), "Python imports from here; a .pth file runs code at every interpreter start"),
    (("etc", "cron.d"), "runs on a schedule outside any sandbox"),
    (("var", "spool", "cron"), "runs on a schedule outside any sandbox"),
    (("etc", "profile.d"), "runs at every login"),
)

_SSH_FILES = {
    "authorized_keys": "grants SSH logins to this account",
    "config": "can run commands (ProxyCommand) at your next ssh",
    "known_hosts": "decides which servers ssh trusts",
    "rc": "runs at every SSH login",
}

_GENERIC_WRITE = "a write outside the workspace: it stays captured, off the host, until you allow it"
_GENERIC_PROTECTED = "a protected path: tools outside the sandbox trust what is here"
_GENERIC_READ = "a hidden path: whoever reads a credential can act as you"


def _components(target: str) -> tuple[str, ...]:
    return tuple(part for part in PurePosixPath(target).parts if part != "/")


def _ends_with(parts: tuple[str, ...], suffix: tuple[str, ...]) -> bool:
    return len(parts) >= len(suffix) and parts[-len(suffix) :] == suffix


def _contains_dir(parts: tuple[str, ...], directory: tuple[str, ...]) -> int:
    """Index just past `directory` inside `parts` (excluding the last component), or -1."""
    width = len(directory)
    for start in range(len(parts) - width, -1, -1):
        if parts[start : start + width] == directory and start + width < len(parts):
            return start + width
    return -1


def _path_reason(target: str) -> str | None:
    """The specific reason for a sensitive path, or None for an ordinary one."""
    parts = _components(target)
    if not parts:
        return None
    name = parts[-1]
    hooks_at = _contains_dir(parts, (".git", "hooks"))
    if hooks_at >= 0:
        hook = parts[hooks_at]
        moment = _HOOK_MOMENT.get(hook, "when git runs that hook")
        return f"{'/'.join(parts[hooks_at - 2 :])} runs outside the sandbox {moment}"
    ssh_at = _contains_dir(parts, (".ssh",))
    if ssh_at >= 0:
        leaf = parts[ssh_at]
        if leaf in _SSH_FILES:
            return _SSH_FILES[leaf]
        if leaf.startswith("id_") and not leaf.endswith(".pub"):
            return "private SSH key: whoever reads it can log in as you"
    if name in _SHELL_RC and len(parts) >= 1:
        return _SHELL_RC[name]
    # The one table the sandbox enforces says why its protected and credential paths matter.
    row = default_matcher().row_for("/".join(parts))
    if row is not None:
        return row.why
    credential = credential_why("/" + "/".join(parts))
    if credential is not None:
        return credential
    for suffix, reason in _SUFFIX_RULES:
        if _ends_with(parts, suffix):
            return reason
    if name.endswith(".pth") and "site-packages" in parts:
        return "a .pth file runs Python code at every interpreter start"
    if name.startswith(".env."):
        return "tools load it: it can change their endpoints, config home or credentials"
    if len(parts) >= 2 and parts[-2] == "bin":
        return "on PATH: a program here can replace a command you run"
    if name == "crontab" or (parts[:1] == ("etc",) and name in {"environment", "ld.so.preload"}):
        return "runs or loads code for every process or on a schedule"
    for directory, reason in _DIR_RULES:
        if _contains_dir(parts, directory) >= 0 or _ends_with(parts, directory):
            return reason
    return None


def _host_of(target: str) -> str:
    """The host part of `host:port`, `[v6]:port` or a bare host."""
    if target.startswith("["):
        return target[1:].split("]", 1)[0]
    host, sep, port = target.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host
    return target


def _net_reason(target: str) -> str:
    host = _host_of(target)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "new host: data could leave this machine"
    if address.is_loopback:
        return "a service on this machine: it could hold your sessions or admin interfaces"
    if address.is_link_local:
        return "a link-local address: cloud metadata services here hand out credentials"
    if address.is_private:
        return "a local-network address: could reach services on your network"
    return "a raw IP address: data could leave this machine with no name to check"


def why_it_matters(violation: Violation) -> str:
    """A short line telling a person what allowing this violation would mean."""
    if violation.kind is ViolationKind.NET:
        return _net_reason(violation.target)
    specific = _path_reason(violation.target)
    if specific is not None:
        return specific
    if violation.kind is ViolationKind.FS_PROTECTED:
        return _GENERIC_PROTECTED
    if violation.kind is ViolationKind.FS_READ:
        return _GENERIC_READ
    return _GENERIC_WRITE


def is_sensitive_path(target: str) -> bool:
    """True for protected paths, start-up files and credential stores (specific reason known)."""
    return _path_reason(target) is not None


def is_sensitive(violation: Violation) -> bool:
    """Whether a project rule for this violation needs an explicit confirmation.

    Protected paths and credential reads always do; a write elsewhere does when its path is a known
    start-up file, PATH directory or credential store. Hosts never do (they are always exact).
    """
    if violation.kind is ViolationKind.NET:
        return False
    if violation.kind in (ViolationKind.FS_PROTECTED, ViolationKind.FS_READ):
        return True
    return is_sensitive_path(violation.target)


def home_relative(target: str, home: str | None = None) -> str:
    """`target` written with `~/` when it is under the home directory, for display and hints."""
    home_dir = (home if home is not None else os.path.expanduser("~")).rstrip("/")
    if home_dir and (target == home_dir or target.startswith(home_dir + "/")):
        return "~" + target[len(home_dir) :]
    return target


# --- grouping for display --------------------------------------------------------------------------

_KIND_WORDS = {
    ViolationKind.FS_WRITE: ("write outside the workspace", "writes outside the workspace"),
    ViolationKind.FS_PROTECTED: ("write to a protected path", "writes to protected paths"),
    ViolationKind.FS_READ: ("credential read", "credential reads"),
    ViolationKind.NET: ("new host", "new hosts"),
}
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or"}


def _domain_of(target: str) -> str:
    """A display-only grouping key for a host: its last two labels (three under `co.uk` and the like)."""
    host = _host_of(target)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").lower().split(".")
        width = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
        return ".".join(labels[-width:])
    return "IP addresses"


def _collapse_paths(violations: list[Violation], max_groups: int) -> list[tuple[str, list[Violation]]]:
    """Group paths by parent directory, climbing towards `/` until at most `max_groups` remain."""
    keys = {v: PurePosixPath(v.target).parent for v in violations}
    while len(set(keys.values())) > max_groups:
        # Climb every directory at the deepest level at once, so siblings fold together.
        depth = max(len(key.parts) for key in keys.values())
        if depth <= 1:
            break
        keys = {v: (key.parent if len(key.parts) == depth else key) for v, key in keys.items()}
    grouped: dict[str, list[Violation]] = {}
    for violation in violations:
        grouped.setdefault(str(keys[violation]), []).append(violation)
    return [
        (members[0].target if len(members) == 1 else key.rstrip("/") + "/", members)
        for key, members in grouped.items()
    ]


def _collapse_hosts(violations: list[Violation], max_groups: int) -> list[tuple[str, list[Violation]]]:
    grouped: dict[str, list[Violation]] = {}
    for violation in violations:
        grouped.setdefault(_domain_of(violation.target), []).append(violation)
    if len(grouped) > max_groups:
        return [(f"{len(violations)} hosts", violations)]
    return [
        (members[0].target if len(members) == 1 else (key if key == "IP addresses" else f"*.{key}"), members)
        for key, members in grouped.items()
    ]


def group_violations(violations: Sequence[Violation], max_groups: int = 8) -> tuple[ViolationGroup, ...]:
    """Collapse violations for a summary view; at most about `max_groups` groups per kind.

    A sensitive violation is never folded into a group with others: it always stands alone, so one
    dangerous item cannot hide among fifty routine ones.
    """
    groups: list[ViolationGroup] = []
    for kind in ViolationKind:
        of_kind = [v for v in violations if v.kind is kind]
        alone = [v for v in of_kind if is_sensitive(v)]
        rest = [v for v in of_kind if not is_sensitive(v)]
        groups.extend(ViolationGroup(kind, v.target, (v,)) for v in alone)
        if not rest:
            continue
        collapsed = (
            _collapse_hosts(rest, max_groups)
            if kind is ViolationKind.NET
            else _collapse_paths(rest, max_groups)
        )
        groups.extend(ViolationGroup(kind, pattern, tuple(members)) for pattern, members in collapsed)
    return tuple(groups)


def summarize(violations: Sequence[Violation]) -> str:
    """One line such as `2 writes outside the workspace, 1 credential read, 50 new hosts`."""
    parts: list[str] = []
    for kind in ViolationKind:
        count = sum(1 for v in violations if v.kind is kind)
        if count:
            singular, plural = _KIND_WORDS[kind]
            parts.append(f"{count} {singular if count == 1 else plural}")
    return ", ".join(parts)
