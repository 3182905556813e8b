"""`Command`: one command as the person or the agent gave it, built once at the edge.

The argv is what the sandbox runs; the text is what a person reads in a prompt, the ledger and the
report. Both are fixed when the command enters corral (`corral run -c`, `corral run -- ...`, a line
typed in a shell, a hook, a replayed workload), so the text shown is always the text given: it is never
recovered from an argv afterwards, where a look-alike argv could make a prompt show something other
than what runs. `description` is the agent's own narration (`--description`), shown labelled
unverified and never used to decide anything.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.decision import AskCallback


def shell_argv(text: str) -> list[str]:
    """The argv that runs one shell string (the way CLAUDE_CODE_SHELL_PREFIX hands a command over)."""
    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    return [shell, "-c", text]


@dataclass(frozen=True, slots=True)
class Command:
    """What runs (`argv`), how it reads (`text`) and what the agent said about it (`description`)."""

    argv: tuple[str, ...]
    text: str
    description: str | None = None
    from_shell_string: bool = False
    """Given as one shell string (`text`), run by `shell_argv`; False: given as words."""

    @classmethod
    def from_argv(cls, argv: Sequence[str], description: str | None = None) -> Command:
        """A command given as words (`corral run -- CMD ARG...`): its text is the argv, shell-quoted."""
        if not argv:
            raise ValueError("a command needs at least one word")
        return cls(tuple(argv), shlex.join(argv), description)

    @classmethod
    def from_shell(cls, text: str, description: str | None = None) -> Command:
        """A command given as one shell string (`corral run -c`, a line typed in a shell)."""
        return cls(tuple(shell_argv(text)), text, description, from_shell_string=True)


class OnViolation(StrEnum):
    """`--on-violation`: ask a person (through the callback), or deny without asking."""

    ASK = "ask"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One `corral run`, as typed values the command line built (the core never sees argparse).

    `ask` is the front end's prompt, or None when nobody is asked (every crossing is then denied unless
    a rule allows it); `on_violation` DENY denies without asking even with a prompt.
    """

    command: Command
    on_violation: OnViolation
    ask: AskCallback | None = None
    project: Path | None = None
    """The workspace named with --project; None: the git root of the current directory."""
    report: Path | None = None
    allow_home_workspace: bool = False
    require_trust: bool = False
    allow_hosts: tuple[str, ...] = ()
    no_session: bool = False
    """Run standalone even when the project has a live session (`--no-session`)."""


__all__ = ["Command", "OnViolation", "RunRequest", "shell_argv"]
