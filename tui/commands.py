"""Running one typed command the way `corral run` does: the trusted project's `before_command` hook,
the command, then `after_command`, all inside the sandbox through the Session. Shared by both shells.

The words both shells print about an outcome are `corral.words.finished_from`.
"""

from __future__ import annotations

from pathlib import Path

from corral.session import CommandOutcome, Session, shell_argv
from sandbox.runner import StdioSpec


def run_typed(session: Session, text: str, cwd: Path, stdio: StdioSpec) -> CommandOutcome:
    """Run `text` with the shell in the sandbox, with the project's hooks around it."""
    return session.run_with_hooks(shell_argv(text), cwd=cwd, stdio=stdio)
