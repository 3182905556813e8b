"""Live host decisions keep one deadline, the core's: the proxy never gives up before the prompt does,
and an answer that comes after the deadline never stores a rule for a connection already refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from boundary.violations import Violation, ViolationKind
from corral.decision import Decision, PromptAnswer, PromptRequest, Scope
from corral.escalation import Escalator, OnViolation
from corral.network import PROXY_GRACE_S, LiveDecisions, NetworkGate
from corral.rules import RuleStore
from corral.session_memory import SessionMemory
from sandbox.egress.hostpolicy import HostPolicy


@pytest.fixture
def project(isolated_home: Path) -> Path:
    path = isolated_home / "proj"
    path.mkdir()
    return path


@pytest.fixture
def rules(tmp_path: Path) -> Iterator[RuleStore]:
    store = RuleStore.open(tmp_path / "rules.sqlite3")
    yield store
    store.close()


class LatePerson:
    """Answers "allow for this project" after `delay_s`, unless the prompt was dismissed first."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.requests: list[PromptRequest] = []
        self.dismissed = threading.Event()

    def __call__(self, request: PromptRequest) -> PromptAnswer:
        self.requests.append(request)
        if request.cancelled.wait(self.delay_s):
            self.dismissed.set()
        return Decision(Scope.PROJECT)


def _gate(
    rules: RuleStore, project: Path, ask: LatePerson, timeout_s: float, prompt_timeout_s: float = 300.0
) -> NetworkGate:
    """A gate whose connections wait `timeout_s`, over an escalator whose prompts may wait longer."""
    escalator = Escalator(
        rules,
        SessionMemory(),
        ask,
        timeout_s=prompt_timeout_s,
        frontend_name="test",
        on_violation=OnViolation.ASK,
    )
    return NetworkGate(HostPolicy(), LiveDecisions(escalator, project), decide_timeout_s=timeout_s)


def test_a_late_project_answer_stores_no_rule_and_the_prompt_is_dismissed(
    rules: RuleStore, project: Path
) -> None:
    """Regression: the proxy gave up after 120 s while the prompt stayed open for 300 s, and a late
    "allow for this project" stored a rule for a connection that never happened. Here the prompt
    timeout is 300 s and the connection's deadline 0.3 s: the connection's deadline wins."""
    person = LatePerson(delay_s=1.5)
    gate = _gate(rules, project, person, timeout_s=0.3)
    started = time.monotonic()
    assert gate.decide("late.example", 443) is False
    assert time.monotonic() - started < 1.0  # the core's deadline, not the person's pace
    assert person.dismissed.wait(2.0)  # the prompt was told to go away
    time.sleep(0.2)
    assert rules.list(project) == []
    assert gate.allowed == []


def test_an_answer_in_time_allows_and_stores_the_rule(rules: RuleStore, project: Path) -> None:
    person = LatePerson(delay_s=0.05)
    gate = _gate(rules, project, person, timeout_s=5.0)
    assert gate.decide("soon.example", 443) is True
    [rule] = rules.list(project)
    assert (rule.kind, rule.target) == (ViolationKind.NET, "soon.example")  # the host, on any port


def test_the_prompt_is_given_only_the_time_the_connection_has_left(rules: RuleStore, project: Path) -> None:
    person = LatePerson(delay_s=0.0)
    escalator = Escalator(rules, SessionMemory(), person, timeout_s=300.0, frontend_name="test")
    live = LiveDecisions(escalator, project)
    live(Violation(ViolationKind.NET, "a.example:443", "connect"), time.monotonic() + 2.0)
    [request] = person.requests
    assert 0 < request.timeout_s <= 2.0


def test_a_deadline_spent_waiting_for_another_prompt_is_a_denial_without_asking(
    rules: RuleStore, project: Path
) -> None:
    """While one prompt is open, a second host waits for it; if its connection's deadline passes
    meanwhile it is denied, and its prompt is never shown afterwards."""
    first = threading.Event()
    release = threading.Event()
    asked: list[str] = []

    def person(request: PromptRequest) -> PromptAnswer:
        asked.append(request.violations[0].target)
        first.set()
        release.wait(5)
        return Decision(Scope.ONCE)

    escalator = Escalator(rules, SessionMemory(), person, timeout_s=10.0, frontend_name="test")
    live = LiveDecisions(escalator, project)
    holder = threading.Thread(
        target=live, args=(Violation(ViolationKind.NET, "one.example:443", "connect"), time.monotonic() + 10)
    )
    holder.start()
    assert first.wait(5)
    decision = live(Violation(ViolationKind.NET, "two.example:443", "connect"), time.monotonic() + 0.2)
    release.set()
    holder.join(5)
    assert not decision.allows
    assert asked == ["one.example:443"]


def test_the_proxy_waits_the_cores_deadline_plus_a_grace(rules: RuleStore, project: Path) -> None:
    gate = _gate(rules, project, LatePerson(0.0), timeout_s=42.0)
    assert gate.proxy_timeouts().decide == 42.0 + PROXY_GRACE_S
    assert PROXY_GRACE_S > 0
