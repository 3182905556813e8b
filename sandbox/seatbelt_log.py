"""Seatbelt's denials for one command, read back from the macOS unified log, as corral's violations.

Every deny in the generated profile carries the command's tag (`(with message "corral:TAG")`), which the
kernel appends to the line it logs, e.g.

    Sandbox: touch(81427) deny(1) file-write-create /Users/me/outside corral:5f0c…

`/usr/bin/log show --style ndjson` prints one JSON object per event; `denials_from_ndjson` keeps the
events that carry this command's tag (another command's, or another program's, never count), and
`violations_from` turns them into the same kinds as on Linux:

- a refused write inside the workspace (only protected locations are refused there): `fs-protected`;
- a refused write anywhere else: `fs-write`;
- a refused read of a file's content under a hidden path: `fs-read` (a refused `stat` of it is not a
  read, as on Linux, where only content reads of a decoy count);
- a refused outbound connection: `net` (the proxy is the only address allowed).

Anything else Seatbelt refused (a Mach service, an exec, a sysctl) is not a boundary the person
decides on; it comes back as one notice line each. The log is written asynchronously: `read_denials`
polls until two reads agree (or a deadline passes), and says so in a notice when it gave up early.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from boundary.violations import ChangeOp, Violation, ViolationKind
from sandbox.policy import Policy
from sandbox.seatbelt import Refusal, parse_refusals

LOG = Path("/usr/bin/log")
"""The only `log` corral runs (never one from PATH)."""
SETTLE_S = 0.25
"""Between two reads of the log while it catches up."""
DEADLINE_S = 3.0

_WRITE_OPS: dict[str, ChangeOp] = {
    "file-write-create": ChangeOp.CREATE,
    "file-write-data": ChangeOp.MODIFY,
    "file-write-unlink": ChangeOp.DELETE,
    "file-write-mode": ChangeOp.CHMOD,
    "file-link": ChangeOp.CREATE,
}
REFUSED_NOT_CAPTURED = "refused, not captured (Seatbelt has no overlay): allowing it re-runs the whole command with this path writable"


@dataclass(frozen=True, slots=True)
class Denials:
    """What Seatbelt refused one command: its boundary crossings, and one line for anything else."""

    violations: tuple[Violation, ...]
    notices: tuple[str, ...]


def log_show_argv(tag: str, since: datetime) -> list[str]:
    """`log show` for this command's tagged denials since it started (the tag is hex: no quoting)."""
    if not tag.isalnum():
        raise ValueError(f"a Seatbelt tag must be alphanumeric, not {tag!r}")
    return [
        str(LOG),
        "show",
        "--style",
        "ndjson",
        "--start",
        since.strftime("%Y-%m-%d %H:%M:%S%z"),
        "--predicate",
        f'eventMessage CONTAINS "corral:{tag}"',
    ]


def denials_from_ndjson(lines: Iterable[str], tag: str) -> list[Refusal]:
    """The refusals in `log show --style ndjson` output that carry `tag` (lines that are not JSON
    events, such as the closing summary, are skipped)."""
    messages: list[str] = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        message = event.get("eventMessage") if isinstance(event, dict) else None
        if isinstance(message, str):
            messages.append(message)
    return parse_refusals(messages, tag)


def violations_from(refusals: Iterable[Refusal], policy: Policy) -> Denials:
    """Seatbelt's refusals as corral's violations, one per (kind, target), in the order they came."""
    found: dict[tuple[str, str], Violation] = {}
    notices: dict[str, None] = {}
    for refusal in refusals:
        violation = _violation(refusal, policy)
        if violation is None:
            if not refusal.operation.startswith("file-read"):
                notices[f"Seatbelt refused {refusal.operation} {refusal.target} ({refusal.process})"] = None
            continue
        found.setdefault(violation.key(), violation)
    return Denials(tuple(found.values()), tuple(notices))


def _violation(refusal: Refusal, policy: Policy) -> Violation | None:
    operation = refusal.operation
    if operation.startswith("network-outbound"):
        return Violation(
            ViolationKind.NET, refusal.target, "connect", "refused by Seatbelt: not corral's proxy"
        )
    if not refusal.target.startswith("/"):
        return None
    path = Path(refusal.target)
    if operation == "file-read-data":
        if policy.is_hidden(path):
            return Violation(ViolationKind.FS_READ, str(path), "read", "hidden credential path")
        return None
    if operation.startswith("file-write") or operation == "file-link":
        op = _WRITE_OPS.get(operation, ChangeOp.MODIFY)
        if policy.in_workspace(path):
            kind, where = ViolationKind.FS_PROTECTED, "protected path in the workspace"
        else:
            kind, where = ViolationKind.FS_WRITE, "outside the workspace"
        return Violation(kind, str(path), op.value, f"{where}; {REFUSED_NOT_CAPTURED}", reruns_on_allow=True)
    return None


Runner = Callable[[list[str]], str]


def _run_log(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return done.stdout


def read_denials(
    tag: str,
    since: datetime,
    *,
    run: Runner = _run_log,
    settle_s: float = SETTLE_S,
    deadline_s: float = DEADLINE_S,
) -> tuple[list[Refusal], str | None]:
    """This command's refusals from the unified log, and a notice when the log did not settle in time
    (some refusals may then be missing: it says so rather than pretend)."""
    argv = log_show_argv(tag, since)
    start = time.monotonic()
    previous: list[Refusal] | None = None
    while True:
        current = denials_from_ndjson(run(argv).splitlines(), tag)
        if previous is not None and current == previous:
            return current, None
        if time.monotonic() - start > deadline_s:
            return (
                current,
                "the unified log was still catching up: some refusals may be missing from this report",
            )
        previous = current
        time.sleep(settle_s)
