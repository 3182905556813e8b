"""The words of a decision: what a front end is shown, and what it may answer.

A front end (Textual app, prompt-toolkit line mode, a test) implements one callable,
`AskCallback = Callable[[PromptRequest], PromptAnswer]`. It is shown a `PromptRequest` (the command in
full, the project, every violation, grouped for display, with a why-it-matters line per target and the
set of sensitive targets) and answers either one `Decision` for the whole request or a
`dict[Violation, Decision]`. It never decides policy: `corral.escalation.Escalator` does.

Which targets are sensitive and why is `corral.sensitivity`; how violations are grouped for display
is `corral.grouping`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from boundary.violations import Violation
from corral.grouping import ViolationGroup


class Scope(StrEnum):
    """How far an answer reaches."""

    ONCE = "once"
    """Allow this violation for this command only."""
    SESSION = "session"
    """Allow this target until the session (the `Session` object) ends."""
    PROJECT = "project"
    """Allow this target in this project from now on: stored as a rule in the user's data dir."""
    DENY = "deny"
    """Refuse: captured writes are discarded, the connection stays closed. Remembered for the session."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One answer. `confirmed_sensitive` must be set for a project rule on a sensitive target."""

    scope: Scope
    confirmed_sensitive: bool = False
    one_port: bool = False
    """For a host (`net`): allow only the port asked about. By default an allowance for a host, for the
    session or the project, covers that host on any port."""

    @property
    def allows(self) -> bool:
        """True unless this is a denial."""
        return self.scope is not Scope.DENY


DENY = Decision(Scope.DENY)
"""The answer every failure turns into."""


@dataclass(frozen=True, slots=True)
class PromptRequest:
    """Everything a front end shows for one command that crossed the boundary. One per command.

    `command` is the full command text, to render first and in full. `description` is what the agent
    said the command does (A03): unverified text, to show after the command and labelled as such.
    `violations` are the ones still undecided; `groups` collapse them for a summary view with the
    details one key away; `sensitive` holds the violations whose project rule needs an explicit
    confirmation; `reasons` maps each target to a one-line why-it-matters. `timeout_s` is how long the
    front end has before corral denies; `cancelled` is set when corral stopped waiting (the front end
    should then dismiss its dialog: the answer will be ignored).
    """

    command: str
    project: Path
    violations: tuple[Violation, ...]
    groups: tuple[ViolationGroup, ...]
    sensitive: frozenset[Violation]
    reasons: Mapping[str, str]
    summary: str
    timeout_s: float
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)
    description: str | None = None


PromptAnswer = Decision | Mapping[Violation, Decision]
"""One decision for the whole request, or one per violation (a missing violation is denied)."""

AskCallback = Callable[[PromptRequest], PromptAnswer]
"""What a front end implements. It runs on a worker thread; it may block until the person answers."""
