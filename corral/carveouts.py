"""Paths an agent's own machinery needs readable inside the sandbox, each as narrow as it can be.

Claude Code runs every command as `source ~/.claude/shell-snapshots/<snapshot> && eval '<cmd>' ...`,
and its background tasks write their output under `/tmp/claude-<uid>/`, which the agent reads back
with `tail`/`cat`. `~/.claude` stays hidden (its credentials and history behind a decoy) and `/tmp`
stays private: only these two directories are bound read-only on top. The sandbox drops either when it
is a link, is not the user's own (another user may create `/tmp/claude-<uid>` first), or would
uncover a hidden path.
"""

from __future__ import annotations

from pathlib import Path


def agent_readable(home: Path, uid: int) -> tuple[Path, ...]:
    """Claude Code's shell snapshots and its background-task output directory."""
    return (home / ".claude" / "shell-snapshots", Path(f"/tmp/claude-{uid}"))
