"""Escalation: which violations a person is asked about, and what every failure turns into (deny).

Public API (wired up by `corral.opening.compose_session`; recording is `corral.recording`)::

    escalator = Escalator(rules, SessionMemory(), ask,   # ask=None when there is nobody to ask
                          timeout_s=300, frontend_name="textual",
                          on_violation=OnViolation.ASK)   # or OnViolation.DENY (`--on-violation deny`)
    decisions = escalator.decide(command_text, project, run_result.violations, records=records)
    # -> dict[Violation, Decision]; every input violation has an entry; Decision.allows
    # live, from the egress proxy thread (connection held open meanwhile, until `deadline`):
    allowed = escalator.decide_one(command_text, project, violation, deadline=deadline).allows
    records.extend(escalator.take_records())      # decisions made outside `decide(records=...)`

How a violation is decided, in order:

1. Session memory (`SessionMemory`, per Session): a target denied earlier in the session stays denied;
   a target allowed for the session is allowed. A sensitive target's session allowance is bound to the
   content fingerprint the caller passes (`fingerprints=`); with none, it is asked again (TT1).
2. Project rules (`RuleStore`): an exact path, directory prefix or exact host for this project.
3. Everything left goes to ONE prompt for the whole command (`PromptRequest`), unless
   `on_violation` is DENY (flag), there is no callback, there are more than `BurstPolicy.max_violations`
   violations, or the burst limit tripped — each of these denies without asking.

The callback runs on a worker thread named `corral-ask` and gets `timeout_s` seconds. An exception, a
timeout, an answer of the wrong type or a missing per-violation entry is a denial. A project rule for a
sensitive target without `confirmed_sensitive=True` is a denial. Nothing is ever allowed by default.

The command text is only shown and recorded: no decision depends on parsing it (A06), so a long or
odd command can never turn a denial into a prompt or a prompt into an allowance.

Every decision (asked or not) becomes a `PromptRecord`; `corral.recording.CommandRecorder` writes them
with the command row in one ledger transaction. Prompts may overlap commands (live network decisions): pass
`records=[]` to `decide` to collect one command's records yourself when commands run concurrently.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from boundary.violations import Violation, ViolationKind
from corral.command import OnViolation as OnViolation  # lives with the run request; kept here too
from corral.decision import DENY, AskCallback, Decision, PromptRequest, Scope
from corral.grouping import group_violations, summarize
from corral.ledger import PromptRecord
from corral.rules import RuleError, RuleStore, canonical_project
from corral.sensitivity import is_sensitive, why_it_matters
from corral.session_memory import SessionMemory


class DecidedBy(StrEnum):
    """Who or what made a decision; stored in the ledger's `prompts.decided_by`."""

    PERSON = "person"
    RULE = "rule"
    SESSION = "session"
    FLAG = "flag"
    NO_FRONTEND = "no-frontend"
    TIMEOUT = "timeout"
    ERROR = "error"
    INVALID = "invalid"
    UNCONFIRMED = "unconfirmed"
    BURST = "burst"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True)
class BurstPolicy:
    """Limits against prompt flooding (A09). Nothing here ever allows; it only stops asking.

    After `max_denials` prompts answered with a denial (or left to time out) within `window_s`
    seconds, further prompts in the session are denied without asking until the oldest of those
    denials is `window_s` old (or `SessionMemory.reset_burst()` is called when the person starts a new
    turn). A single command with more than `max_violations` undecided violations is denied whole:
    nobody can review that many. `max_groups` bounds the groups per kind in a prompt's summary.
    """

    max_denials: int = 3
    window_s: float = 120.0
    max_violations: int = 2000
    max_groups: int = 8


_ANSWER_TIMEOUT = object()


class Escalator:
    """Decides a command's violations: session memory, project rules, then one prompt."""

    def __init__(
        self,
        rules: RuleStore | None,
        session_memory: SessionMemory,
        ask: AskCallback | None,
        *,
        timeout_s: float = 300.0,
        frontend_name: str,
        on_violation: OnViolation = OnViolation.ASK,
        burst: BurstPolicy | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self.rules = rules
        self.memory = session_memory
        self.ask = ask
        self.timeout_s = timeout_s
        self.frontend_name = frontend_name
        self.on_violation = OnViolation(on_violation)
        self.burst = burst or BurstPolicy()
        self.notices: list[str] = []
        """Things the session may show the person (e.g. a rule that could not be stored)."""
        self._pending: list[PromptRecord] = []
        self._pending_lock = threading.Lock()
        self._prompt_lock = threading.Lock()

    # --- deciding ----------------------------------------------------------------------------------

    def decide(
        self,
        command: str,
        project: str | os.PathLike[str],
        violations: Sequence[Violation],
        *,
        fingerprints: Mapping[Violation, str] | None = None,
        records: list[PromptRecord] | None = None,
        description: str | None = None,
        deadline: float | None = None,
    ) -> dict[Violation, Decision]:
        """A decision for every violation of one command; at most one prompt.

        `fingerprints` binds session allowances of sensitive targets to content (e.g. a sha256 of the
        captured file). Decisions are appended as `PromptRecord`s to `records` when given, else kept for
        `take_records`. `deadline` (a `time.monotonic()` value) bounds the whole decision, waiting for
        another prompt included: a live connection that is refused at its deadline must not leave a
        prompt open, nor a rule stored by a late answer.
        """
        unique = list(dict.fromkeys(violations))
        if not unique:
            return {}
        prints = fingerprints or {}
        project_key = canonical_project(project)
        decided: dict[Violation, tuple[Decision, DecidedBy, float | None]] = {}
        # One prompt at a time per session: a second caller (e.g. the proxy) waits, then finds the
        # first prompt's session answers in memory instead of asking again.
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and (wait <= 0 or not self._prompt_lock.acquire(timeout=wait)):
            decided.update((v, (DENY, DecidedBy.TIMEOUT, None)) for v in unique)  # Fail closed: too late.
        else:
            if wait is None:
                self._prompt_lock.acquire()
            try:
                undecided = self._recall(project_key, unique, prints, decided)
                if undecided:
                    self._escalate(command, project_key, undecided, prints, decided, description, deadline)
            finally:
                self._prompt_lock.release()
        out = {v: decided[v][0] for v in unique}
        new_records = [self._record(v, *decided[v]) for v in unique]
        if records is not None:
            records.extend(new_records)
        else:
            with self._pending_lock:
                self._pending.extend(new_records)
        return out

    def decide_one(
        self,
        command: str,
        project: str | os.PathLike[str],
        violation: Violation,
        description: str | None = None,
        *,
        deadline: float | None = None,
    ) -> Decision:
        """`decide` for a single violation (live network decisions, bounded by the connection's deadline)."""
        return self.decide(command, project, [violation], description=description, deadline=deadline)[
            violation
        ]

    def _recall(
        self,
        project_key: str,
        violations: list[Violation],
        prints: Mapping[Violation, str],
        decided: dict[Violation, tuple[Decision, DecidedBy, float | None]],
    ) -> list[Violation]:
        undecided: list[Violation] = []
        for violation in violations:
            remembered = self.memory.recall(violation, prints.get(violation))
            if remembered is not None:
                decided[violation] = (remembered, DecidedBy.SESSION, None)
            else:
                undecided.append(violation)
        if undecided and self.rules is not None:
            try:
                by_rule = self.rules.matching(project_key, undecided)
            except (sqlite3.Error, OSError) as error:
                # An unreadable rules store allows nothing; the violations are asked (or denied) below.
                self.notices.append(f"corral: rules unavailable ({error}); asking instead")
                by_rule = {}
            for violation in by_rule:
                decided[violation] = (Decision(Scope.PROJECT), DecidedBy.RULE, None)
            undecided = [v for v in undecided if v not in by_rule]
        return undecided

    def _escalate(
        self,
        command: str,
        project_key: str,
        undecided: list[Violation],
        prints: Mapping[Violation, str],
        decided: dict[Violation, tuple[Decision, DecidedBy, float | None]],
        description: str | None = None,
        deadline: float | None = None,
    ) -> None:
        def deny_all(reason: DecidedBy) -> None:
            for violation in undecided:
                decided[violation] = (DENY, reason, None)

        if self.on_violation is OnViolation.DENY:
            deny_all(DecidedBy.FLAG)  # `--on-violation deny`: nobody is asked.
            return
        if self.ask is None:
            deny_all(DecidedBy.NO_FRONTEND)  # Fail closed: no one to ask means deny.
            return
        if len(undecided) > self.burst.max_violations:
            deny_all(DecidedBy.LIMIT)  # Fail closed: too many to review is deny, never ask-and-hope.
            return
        if self.memory.recent_denials(self.burst.window_s) >= self.burst.max_denials:
            deny_all(DecidedBy.BURST)  # A09: stop asking after repeated denials; never auto-accept.
            return

        timeout_s = self.timeout_s if deadline is None else min(self.timeout_s, deadline - time.monotonic())
        if timeout_s <= 0:
            deny_all(DecidedBy.TIMEOUT)  # Fail closed: the connection's deadline already passed.
            return
        request = PromptRequest(
            command=command,
            project=Path(project_key),
            violations=tuple(undecided),
            groups=group_violations(undecided, self.burst.max_groups),
            sensitive=frozenset(v for v in undecided if is_sensitive(v)),
            reasons={v.target: why_it_matters(v) for v in undecided},
            summary=summarize(undecided),
            timeout_s=timeout_s,
            description=description,
        )
        started = time.monotonic()
        answer = self._ask_in_time(request, timeout_s)
        latency_ms = (time.monotonic() - started) * 1000.0
        if answer is _ANSWER_TIMEOUT or (deadline is not None and time.monotonic() >= deadline):
            # Fail closed: no answer in time is deny. For a live connection the deadline is the
            # connection's own: an answer after it would concern a connection already refused, so it is
            # never applied and never stored as a rule.
            request.cancelled.set()
            deny_all(DecidedBy.TIMEOUT)
            self.memory.note_denial()
            return
        if isinstance(answer, BaseException):
            deny_all(DecidedBy.ERROR)  # Fail closed: a broken front end denies.
            self.notices.append(f"corral: the prompt failed ({type(answer).__name__}: {answer}); denied")
            return

        any_denied = False
        for violation in undecided:
            try:
                decision, reason = _interpret(answer, violation)
            except Exception:
                decision, reason = DENY, DecidedBy.INVALID  # Fail closed: a misbehaving answer object.
            if decision.scope is Scope.PROJECT and decision.allows:
                decision, reason = self._store_rule(project_key, violation, decision)
            decided[violation] = (decision, reason, latency_ms)
            any_denied = any_denied or not decision.allows
            self.memory.remember(violation, decision, prints.get(violation))
        if any_denied:
            self.memory.note_denial()

    def _ask_in_time(self, request: PromptRequest, timeout_s: float) -> object:
        """The callback's answer, the exception it raised, or `_ANSWER_TIMEOUT`."""
        ask = self.ask
        assert ask is not None
        box: list[object] = []
        done = threading.Event()

        def run() -> None:
            try:
                box.append(ask(request))
            except BaseException as error:  # Any failure inside the front end is a denial.
                box.append(error)
            finally:
                done.set()

        threading.Thread(target=run, name="corral-ask", daemon=True).start()
        if not done.wait(timeout_s):
            request.cancelled.set()  # Tell the front end to dismiss; a late answer is ignored.
            return _ANSWER_TIMEOUT
        return box[0] if box else RuntimeError("the prompt returned nothing")

    def _store_rule(
        self, project_key: str, violation: Violation, decision: Decision
    ) -> tuple[Decision, DecidedBy]:
        if is_sensitive(violation) and not decision.confirmed_sensitive:
            # Fail closed: a rule for a protected or credential path needs the explicit confirmation.
            return DENY, DecidedBy.UNCONFIRMED
        if self.rules is None:
            self.notices.append(f"corral: no rules store; {violation.target} allowed for this session only")
            return Decision(Scope.SESSION, decision.confirmed_sensitive, decision.one_port), DecidedBy.PERSON
        try:
            self.rules.add_for(
                project_key, violation, confirmed=decision.confirmed_sensitive, one_port=decision.one_port
            )
        except (RuleError, sqlite3.Error, OSError) as error:
            self.notices.append(
                f"corral: could not store a rule for {violation.target} ({error}); session only"
            )
            return Decision(Scope.SESSION, decision.confirmed_sensitive, decision.one_port), DecidedBy.PERSON
        return decision, DecidedBy.PERSON

    def _record(
        self, violation: Violation, decision: Decision, reason: DecidedBy, latency_ms: float | None
    ) -> PromptRecord:
        return PromptRecord(
            kind=violation.kind.value,
            target=violation.target,
            operation=violation.operation,
            scope=decision.scope.value,
            asked=reason is DecidedBy.PERSON or reason is DecidedBy.UNCONFIRMED,
            decided_by=reason.value,
            frontend=self.frontend_name,
            latency_ms=latency_ms,
        )

    # --- recording ---------------------------------------------------------------------------------

    def take_records(self) -> list[PromptRecord]:
        """The decisions made since the last call (and forget them)."""
        with self._pending_lock:
            taken, self._pending = self._pending, []
        return taken


def _interpret(answer: object, violation: Violation) -> tuple[Decision, DecidedBy]:
    """The front end's answer for one violation; anything unexpected is a denial."""
    if isinstance(answer, Decision):
        chosen: object = answer
    elif isinstance(answer, Mapping):
        chosen = answer.get(violation)
        if chosen is None:
            return DENY, DecidedBy.INVALID  # Fail closed: a violation left unanswered is denied.
    else:
        return DENY, DecidedBy.INVALID  # Fail closed: not an answer we understand.
    if not isinstance(chosen, Decision):
        return DENY, DecidedBy.INVALID
    try:
        scope = Scope(chosen.scope)
    except (ValueError, TypeError):
        return DENY, DecidedBy.INVALID
    one_port = violation.kind is ViolationKind.NET and chosen.one_port is True
    return Decision(scope, bool(chosen.confirmed_sensitive is True), one_port), DecidedBy.PERSON
