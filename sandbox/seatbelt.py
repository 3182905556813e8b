"""The macOS backend's profile: a Seatbelt (SBPL) program generated from the same policy as bwrap's.

What the profile says, in order (SBPL: the last matching rule wins, so denials come after allows):

1. `(deny default)`: everything not allowed below is refused, and every refusal carries this
   command's tag, so its violations can be read back from the unified log and nothing else's.
2. Processes: exec and fork; signals and process information only inside this sandbox; the sysctl
   reads and the few Mach services a shell and common tools need. No Apple Events, no Launch Services
   (neither `lsopen` nor its Mach services, `launchservicesd` and `lsd.mapdb`: `open -a App` would start
   an application outside the sandbox), no other Mach services (all refused by the default).
3. Reads: allowed everywhere, then denied at every hidden path (credentials, corral's own state).
4. Writes: only below the workspace and the command's private temp directory, plus the terminal and
   the null device; then denied at every protected location in the workspace (at any depth,
   case-insensitively, as APFS compares names), and `unlink` (which a rename of the source needs)
   denied on each ancestor of a protected location inside the workspace, so a protected path cannot be
   swapped out by renaming a parent (the bypass sandbox-runtime had to fix). Creating an ancestor
   stays allowed (`git init` in a subdirectory): what would go below it is denied by path anyway.
5. Network: only TCP to corral's proxy on the loopback port it listens on; no Unix sockets, no other
   local or remote address.

Paths are given to Seatbelt as the kernel sees them (`/private/var/...` for `/var/...`): the caller
passes canonical paths (realpath).

Without overlayfs on macOS a refused write is refused, not captured: an allowed `fs-write` re-runs the
command with that path writable, and the prompt says so before the person answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.policy import Policy

SANDBOX_EXEC = Path("/usr/bin/sandbox-exec")
"""The only sandbox-exec corral runs (never one from PATH)."""

_MACH_SERVICES = (
    "com.apple.system.opendirectoryd.libinfo",
    "com.apple.system.logger",
    "com.apple.system.notification_center",
    "com.apple.trustd.agent",
    "com.apple.SecurityServer",
    "com.apple.system.DirectoryService.libinfo_v1",
    "com.apple.diagnosticd",
)
_DEVICE_WRITES = ("/dev/null", "/dev/zero", "/dev/dtracehelper", "/dev/stdout", "/dev/stderr")


@dataclass(frozen=True, slots=True)
class ProtectedLocation:
    """A protected location as consecutive shell-style name patterns, at any depth in the workspace."""

    parts: tuple[str, ...]
    subtree: bool


@dataclass(frozen=True, slots=True)
class SeatbeltParams:
    """Everything the profile needs; built from a `Policy` by `params_from_policy`.

    An empty `hidden` hides nothing; an empty `writable` (with the workspace) still lets the command
    write its workspace and `temp_dir`; `proxy_port` None means no network at all.
    """

    tag: str
    workspace: Path
    temp_dir: Path
    hidden: tuple[Path, ...] = ()
    protected: tuple[ProtectedLocation, ...] = ()
    protected_roots: tuple[Path, ...] = ()
    proxy_port: int | None = None
    approved: tuple[Path, ...] = ()
    """Paths the person allowed a write to: a re-run of the command may write them (and, for a
    directory, below it), protected or not. Last in the profile, so they win over every denial."""


def params_from_policy(
    policy: Policy, *, tag: str, temp_dir: Path, proxy_port: int | None, approved: tuple[Path, ...] = ()
) -> SeatbeltParams:
    """The profile's parameters for one command under `policy` (hidden paths include corral's own
    state; protected locations keep their shell patterns)."""
    return SeatbeltParams(
        tag=tag,
        workspace=policy.workspace,
        temp_dir=temp_dir,
        hidden=tuple(dict.fromkeys((*policy.hidden, *policy.blanked))),
        protected=tuple(ProtectedLocation(p.parts, p.subtree) for p in policy.protected_patterns()),
        protected_roots=policy.protected_roots,
        proxy_port=proxy_port if policy.network is not None else None,
        approved=approved,
    )


def quote(text: str) -> str:
    """An SBPL string literal."""
    if "\0" in text or "\n" in text:
        raise ValueError(f"cannot put {text!r} in a Seatbelt profile")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_ERE_SPECIAL = frozenset(".[]()*+?{}|^$\\")


def ere_escape(text: str) -> str:
    """`text` as a literal in Seatbelt's (POSIX extended) regexes: only the ERE metacharacters get a
    backslash (Python's re.escape adds others that ERE leaves undefined)."""
    if '"' in text or "\0" in text or "\n" in text:
        raise ValueError(f"cannot put {text!r} in a Seatbelt regex")
    return "".join("\\" + char if char in _ERE_SPECIAL else char for char in text)


def _folded(text: str) -> str:
    """A regex matching `text` case-insensitively (SBPL regexes have no flags)."""
    out = []
    for char in text:
        if char.lower() != char.upper() and len(char.lower()) == len(char.upper()) == 1:
            out.append(f"[{char.lower()}{char.upper()}]")
        else:
            out.append(ere_escape(char))
    return "".join(out)


def _part_regex(pattern: str) -> str:
    """One path component's shell pattern (`*`, `?`, `[...]` as in fnmatch) as a regex fragment."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := pattern.find("]", index + 1)) > index + 1:
            body = pattern[index + 1 : end]
            negated = body.startswith("!")
            body = body[1:] if negated else body
            letters = "".join(sorted({c for ch in body for c in (ch.lower(), ch.upper()) if c not in '"\\]'}))
            out.append(f"[{'^' if negated else ''}{letters}]")
            index = end
        else:
            out.append(_folded(char))
        index += 1
    return "".join(out)


def protected_regex(workspace: Path, location: ProtectedLocation) -> str:
    """The location at any depth below the workspace (and everything under it for a subtree)."""
    body = "/".join(_part_regex(part) for part in location.parts)
    tail = "(/.*)?" if location.subtree else ""
    return f"^{ere_escape(str(workspace))}/(.*/)?{body}{tail}$"


def ancestor_regexes(workspace: Path, location: ProtectedLocation) -> list[str]:
    """The directories a protected location passes through, at any depth (for unlink/create denials)."""
    regexes = []
    for width in range(1, len(location.parts)):
        body = "/".join(_part_regex(part) for part in location.parts[:width])
        regexes.append(f"^{ere_escape(str(workspace))}/(.*/)?{body}$")
    return regexes


def _literal_ancestors(workspace: Path, root: Path) -> list[Path]:
    relative = PurePosixPath(root).relative_to(workspace)
    return [workspace.joinpath(*relative.parts[:width]) for width in range(1, len(relative.parts))]


def _rule(action: str, operations: str, filters: Iterable[str], tag: str | None = None) -> list[str]:
    items = list(filters)
    if not items:
        return []
    message = f" (with message {quote(tag)})" if tag is not None else ""
    lines = [f"({action} {operations}{message}"]
    lines.extend(f"    {item}" for item in items)
    lines[-1] += ")"
    return lines


def generate_profile(params: SeatbeltParams) -> str:
    """The SBPL program for one command (deterministic: the same params give the same text)."""
    tag = f"corral:{params.tag}"
    ws = params.workspace
    lines = [
        "(version 1)",
        f"; corral profile for {ws} (generated; do not edit)",
        f"(deny default (with message {quote(tag)}))",
        "",
        "; processes",
        "(allow process-exec)",
        "(allow process-fork)",
        "(allow process-info* (target same-sandbox))",
        "(allow signal (target same-sandbox))",
        "(allow sysctl-read)",
        "(allow pseudo-tty)",
        "(allow ipc-posix-shm-read-data ipc-posix-shm-read-metadata)",
        *_rule("allow", "mach-lookup", (f"(global-name {quote(name)})" for name in _MACH_SERVICES)),
        "",
        "; reads: everywhere but the hidden paths",
        "(allow file-read*)",
        *_rule("deny", "file-read*", (f"(subpath {quote(str(path))})" for path in params.hidden), tag),
        "",
        "; writes: the workspace, the private temp dir, the terminal",
        *_rule(
            "allow",
            "file-write*",
            [
                f"(subpath {quote(str(ws))})",
                f"(subpath {quote(str(params.temp_dir))})",
                *(f"(literal {quote(device)})" for device in _DEVICE_WRITES),
                '(regex #"^/dev/tty")',
                '(regex #"^/dev/fd/")',
            ],
        ),
        '(allow file-ioctl (literal "/dev/tty") (regex #"^/dev/ttys[0-9]+$"))',
        "",
        "; protected locations in the workspace, and their ancestors against rename-the-parent",
        *_rule(
            "deny",
            "file-write*",
            [
                *(f'(regex #"{protected_regex(ws, location)}")' for location in params.protected),
                *(f"(subpath {quote(str(root))})" for root in params.protected_roots),
            ],
            tag,
        ),
        *_rule(
            "deny",
            "file-write-unlink",
            list(
                dict.fromkeys(
                    [
                        *(
                            f'(regex #"{regex}")'
                            for location in params.protected
                            for regex in ancestor_regexes(ws, location)
                        ),
                        *(
                            f"(literal {quote(str(parent))})"
                            for root in params.protected_roots
                            for parent in _literal_ancestors(ws, root)
                        ),
                    ]
                )
            ),
            tag,
        ),
        "",
        "; network: corral's proxy only",
    ]
    if params.proxy_port is not None:
        lines.append(f'(allow network-outbound (remote tcp "localhost:{params.proxy_port}"))')
    else:
        lines.append("; no network: no proxy for this command")
    if params.approved:
        lines += [
            "",
            "; approved by the person for this re-run (last: wins over every denial above)",
            *_rule(
                "allow",
                "file-write*",
                (f"(subpath {quote(str(path))})" for path in params.approved),
            ),
        ]
    return "\n".join(lines) + "\n"


_LOG_LINE = re.compile(
    r"Sandbox: (?P<process>.+?)\((?P<pid>\d+)\) deny\(\d+\) (?P<operation>[\w*-]+) (?P<target>.*)$"
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One denial Seatbelt logged for a command: the operation and its target."""

    process: str
    pid: int
    operation: str
    target: str


def parse_refusals(lines: Iterable[str], tag: str) -> list[Refusal]:
    """The refusals in unified-log lines that carry this command's tag (others' lines are ignored)."""
    marker = f"corral:{tag}"
    found: list[Refusal] = []
    for line in lines:
        if marker not in line:
            continue
        text = line.split(marker)[0].rstrip() if line.rstrip().endswith(marker) else line
        match = _LOG_LINE.search(text)
        if match is None:
            continue
        found.append(
            Refusal(match["process"], int(match["pid"]), match["operation"], match["target"].strip())
        )
    return found


def sandbox_exec_argv(profile_path: Path, argv: Sequence[str]) -> list[str]:
    """The argv that runs `argv` under the profile (sandbox-exec from /usr/bin only)."""
    return [str(SANDBOX_EXEC), "-f", str(profile_path), "--", *argv]
