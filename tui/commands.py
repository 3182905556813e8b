"""Running one typed command the way `corral run` does: the trusted project's `before_command` hook,
the command, then `after_command`, all inside the sandbox through the Session. Shared by both shells.

Also the words both shells print about an outcome (no decisions are made here: the core made them).
"""

from __future__ import annotations

from pathlib import Path

from corral.command import Command
from corral.session import CommandOutcome, Session
from sandbox.runner import StdioSpec
from tui.commandlog import Finished, Status


def run_typed(session: Session, text: str, cwd: Path, stdio: StdioSpec) -> CommandOutcome:
    """Run `text` with the shell in the sandbox, with the project's hooks around it."""
    return session.run_with_hooks(Command.from_shell(text), cwd=cwd, stdio=stdio)


def _decision_lines(outcome: CommandOutcome, prefix: str = "") -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for item in outcome.outcomes:
        violation = item.violation
        how = "asked" if item.asked else "remembered"
        if item.allowed:
            lines.append(
                ("green", f"{prefix}allowed ({item.scope}, {how}) {violation.kind.value} {violation.target}")
            )
        else:
            lines.append(("bold red", f"{prefix}denied ({how}) {violation.kind.value} {violation.target}"))
    for change, reason in outcome.refused:
        lines.append(("bold red", f"{prefix}not applied: {change.path}: {reason}"))
    return lines


def finished_from(outcome: CommandOutcome | None, error: str | None) -> Finished:
    """The chip and detail lines for a command's outcome."""
    if outcome is None:
        return Finished(Status.ERROR, None, 0.0, [("bold red", f"not run: {error}")])
    details = _decision_lines(outcome)
    for hook in outcome.hook_outcomes:
        details.extend(_decision_lines(hook, prefix="hook: "))
    details.extend(("yellow", notice) for notice in outcome.notices)
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
        details.append(("dim", f"exit status {outcome.exit_code}"))
    return Finished(status, outcome.exit_code, outcome.duration_ms, details)
