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

    @classmethod
    def from_argv(cls, argv: Sequence[str], description: str | None = None) -> Command:
        """A command given as words (`corral run -- CMD ARG...`): its text is the argv, shell-quoted."""
        if not argv:
            raise ValueError("a command needs at least one word")
        return cls(tuple(argv), shlex.join(argv), description)

    @classmethod
    def from_shell(cls, text: str, description: str | None = None) -> Command:
        """A command given as one shell string (`corral run -c`, a line typed in a shell)."""
        return cls(tuple(shell_argv(text)), text, description)


__all__ = ["Command", "shell_argv"]
