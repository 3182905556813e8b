"""Recording: every command and every decision about it, written to the ledger in one transaction.

Deciding (`corral.escalation`) and recording are separate jobs: the escalator returns decisions and
the `PromptRecord` of each; `CommandRecorder` writes a command row with those records. The ledger never
changes what a command did: a write that fails becomes a notice for the person, not an error.

Reads of hidden paths are recorded as decided by the sandbox (the read already failed inside it; they
are never asked), and each command row carries whether classic per-command approval would have asked,
so `corral stats` can show the reduction.

Honest numbers: a hook run (`session_start`, `before_command`, `after_command`) is recorded with its
event in `hook`, so no total counts it as a command; whether a decision needed a person who was not
there (no terminal, `--on-violation deny`) is derived by the ledger from the decisions themselves
(`corral.ledger.DECIDED_WITHOUT_A_PERSON`), never from what the front end says about itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from boundary.violations import Violation
from corral.ledger import Ledger, PromptRecord
from corral.rules import canonical_project


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One finished command, as the ledger keeps it."""

    command: str
    cwd: Path
    started_at: float
    duration_ms: float
    exit_code: int | None
    violation_count: int
    hook: str | None = None
    """The hook event this run was (None: a command)."""


class CommandRecorder:
    """Writes one Session's commands to its ledger (or nowhere, for a Session that does not record).

    The ledger session row is started with the first command (or the first call to `session_id`), so
    a Session that never runs anything leaves no empty session behind.
    """

    def __init__(self, ledger: Ledger | None, workspace: Path, frontend: str) -> None:
        self._ledger = ledger
        self._workspace = workspace
        self._frontend = frontend
        self._session_id: int | None = None

    @property
    def recording(self) -> bool:
        """Whether commands are written anywhere."""
        return self._ledger is not None

    @property
    def session_id(self) -> int | None:
        """The ledger's id for this session (None without a ledger)."""
        if self._session_id is None and self._ledger is not None:
            self._session_id = self._ledger.start_session(str(self._workspace), self._frontend)
        return self._session_id

    def record(
        self,
        command: CommandRecord,
        records: Sequence[PromptRecord],
        brokered: Sequence[tuple[str, str, int]] = (),
    ) -> str | None:
        """Write `command` and its decisions; returns a notice for the person when the write failed."""
        if self._ledger is None:
            return None
        try:
            self._ledger.record_command(
                session_id=self.session_id,
                project=canonical_project(self._workspace),
                command=command.command,
                cwd=os.fspath(command.cwd),
                started_at=command.started_at,
                duration_ms=command.duration_ms,
                exit_code=command.exit_code,
                violation_count=command.violation_count,
                prompted=any(record.asked for record in records),
                classic_would_prompt=classic_would_prompt(command.command),
                prompts=list(records),
                hook=command.hook,
                brokered=brokered,
            )
        except Exception as error:  # the ledger must never change what the command did
            return f"could not record the command in the ledger: {error}"
        return None

    def close(self) -> None:
        """Close the ledger (idempotent)."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


def reported_read(violation: Violation, frontend: str) -> PromptRecord:
    """The record of a hidden-path read: denied by the sandbox itself, never asked."""
    return PromptRecord(
        kind=violation.kind.value,
        target=violation.target,
        operation=violation.operation,
        scope="deny",
        asked=False,
        decided_by="sandbox",
        frontend=frontend,
    )


def classic_would_prompt(command: str) -> bool | None:
    """Whether classic per-command approval would have asked (None when the baseline cannot tell)."""
    try:
        from corral.fatigue.classic import would_prompt
    except ImportError:
        return None
    try:
        return would_prompt(command)
    except Exception:
        return None


__all__ = ["CommandRecord", "CommandRecorder", "classic_would_prompt", "reported_read"]
