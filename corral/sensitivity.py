"""Which targets are sensitive, and why it matters: the one table of reasons a prompt shows.

Protected workspace paths (git hooks and config, agent and editor config, `.envrc`), shell start-up
files, credential stores and PATH directories each carry a one-line reason. A target with a specific
reason is sensitive: a rule for it ("allow for this project") needs `Decision(confirmed_sensitive=True)`,
a session allowance is bound to its content, and the prompt never folds it into a group. Hosts are
never sensitive (a rule names one exact host) but still get a reason.
"""

from __future__ import annotations

import ipaddress
from pathlib import PurePosixPath

from boundary.matcher import default_matcher
from boundary.table import credential_why
from boundary.violations import Violation, ViolationKind

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
_REFUSED_WRITE = "a write outside the workspace: it was refused, so nothing reached the host"
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


def host_of(target: str) -> str:
    """The host part of `host:port`, `[v6]:port` or a bare host."""
    if target.startswith("["):
        return target[1:].split("]", 1)[0]
    host, sep, port = target.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host
    return target


def _net_reason(target: str) -> str:
    host = host_of(target)
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


RERUN_NOTE = (
    "allowing re-runs the whole command with this path writable (the write was refused, not captured)"
)


def why_it_matters(violation: Violation) -> str:
    """A short line telling a person what allowing this violation would mean (and, where the backend
    could not capture the write, that allowing it re-runs the command)."""
    reason = _why(violation)
    return f"{reason}; {RERUN_NOTE}" if violation.reruns_on_allow else reason


def _why(violation: Violation) -> str:
    if violation.kind is ViolationKind.NET_CREDENTIAL:
        return "a credential that is not yours, to a host corral brokers yours for: never sent"
    if violation.kind is ViolationKind.NET:
        if violation.detail not in ("", "new host", "denied", "connect"):
            return f"{violation.detail}: {_net_reason(violation.target)}"  # a refusal says why first
        return _net_reason(violation.target)
    specific = _path_reason(violation.target)
    if specific is not None:
        return specific
    if violation.kind is ViolationKind.FS_PROTECTED:
        return _GENERIC_PROTECTED
    if violation.kind is ViolationKind.FS_READ:
        return _GENERIC_READ
    return _REFUSED_WRITE if violation.reruns_on_allow else _GENERIC_WRITE


def is_sensitive_path(target: str) -> bool:
    """True for protected paths, start-up files and credential stores (specific reason known)."""
    return _path_reason(target) is not None


def is_sensitive(violation: Violation) -> bool:
    """Whether a project rule for this violation needs an explicit confirmation.

    Protected paths and credential reads always do; a write elsewhere does when its path is a known
    start-up file, PATH directory or credential store. Hosts never do (they are always exact).
    """
    if violation.kind in (ViolationKind.NET, ViolationKind.NET_CREDENTIAL):
        return False
    if violation.kind in (ViolationKind.FS_PROTECTED, ViolationKind.FS_READ):
        return True
    return is_sensitive_path(violation.target)
