"""Words both front ends show, free of any UI library: a command's outcome, durations, paths for display.

The Textual app and the prompt-toolkit line mode render these the same way and build none of their
own: each only maps a `Status` and a `Tone` to its own colours. No decision is made here (the core
made them: these are words about what happened), and nothing is escaped here either: every string
that came from the agent or the repo is made inert where it is drawn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.session import CommandOutcome


def home_relative(target: str, home: str | None = None) -> str:
    """`target` written with `~/` when it is under the home directory, for display and hints."""
    home_dir = (home if home is not None else os.path.expanduser("~")).rstrip("/")
    if home_dir and (target == home_dir or target.startswith(home_dir + "/")):
        return "~" + target[len(home_dir) :]
    return target


def format_duration(duration_ms: float) -> str:
    """`850 ms`, `1.2 s`, `2 min 05 s`."""
    if duration_ms < 1000:
        return f"{duration_ms:.0f} ms"
    seconds = duration_ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


class Status(Enum):
    """The chip a command gets; the value is its label."""

    RUNNING = "running"
    SANDBOXED = "ran sandboxed"
    ALLOWED = "escalated → allowed"
    DENIED = "denied"
    FAILED = "failed"
    ERROR = "not run"


class Tone(StrEnum):
    """What a detail line is about; each front end picks its colour."""

    ALLOWED = "allowed"
    DENIED = "denied"
    NOTICE = "notice"
    QUIET = "quiet"


@dataclass
class Finished:
    """What a front end knows about a finished command, in words for the log (no policy in here)."""

    status: Status
    exit_code: int | None
    duration_ms: float
    details: list[tuple[Tone, str]] = field(default_factory=list)
    """(tone, untrusted text) lines after the output: decisions, notices, refused changes."""

    @property
    def label(self) -> str:
        """The chip's words: the status, with the exit status of a failed command."""
        if self.status is Status.FAILED and self.exit_code is not None:
            return f"failed · exit {self.exit_code}"
        return self.status.value


def _decision_lines(outcome: CommandOutcome, prefix: str = "") -> list[tuple[Tone, str]]:
    lines: list[tuple[Tone, str]] = []
    for item in outcome.outcomes:
        violation = item.violation
        how = "asked" if item.asked else "remembered"
        if item.allowed:
            lines.append(
                (
                    Tone.ALLOWED,
                    f"{prefix}allowed ({item.scope}, {how}) {violation.kind.value} {violation.target}",
                )
            )
        else:
            lines.append((Tone.DENIED, f"{prefix}denied ({how}) {violation.kind.value} {violation.target}"))
    for change, reason in outcome.refused:
        lines.append((Tone.DENIED, f"{prefix}not applied: {change.path}: {reason}"))
    return lines


def finished_from(outcome: CommandOutcome | None, error: str | None) -> Finished:
    """The chip and detail lines for a command's outcome (`error`: why nothing ran)."""
    if outcome is None:
        return Finished(Status.ERROR, None, 0.0, [(Tone.DENIED, f"not run: {error}")])
    details = _decision_lines(outcome)
    for hook in outcome.hook_outcomes:
        details.extend(_decision_lines(hook, prefix="hook: "))
    details.extend((Tone.NOTICE, notice) for notice in outcome.notices)
    denied = outcome.denied or any(hook.denied for hook in outcome.hook_outcomes)
    asked = outcome.outcomes or any(hook.outcomes for hook in outcome.hook_outcomes)
    if denied:
        status = Status.DENIED
    elif outcome.exit_code != 0:
        status = Status.FAILED
    elif asked:
        status = Status.ALLOWED
    else:
        status = Status.SANDBOXED
    if status in (Status.ALLOWED, Status.DENIED) and outcome.exit_code != 0:
        details.append((Tone.QUIET, f"exit status {outcome.exit_code}"))
    return Finished(status, outcome.exit_code, outcome.duration_ms, details)
