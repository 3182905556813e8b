"""One Session per project: compose policy, run in the sandbox, decide on violations, record.

    Session.run(command):
      1. trust gate            -> the project's config only when trusted (nothing parsed before)
      2. policy                = defaults + user config + trusted project config
      3. sandbox run           -> RunResult (exit code, captured changes, violations)
      4. violations            -> a decision per violation (rules, session memory, the `ask` callback)
      5. settle                one apply step for what was allowed (`applied`, `refused`), the rest
                               discarded; the command and its decisions recorded (`corral.recording`)

The Session is composed in `corral.opening.compose_session`: it receives its runner, rules store,
escalator, recorder and network gate and builds none of them. It never talks to a person itself: the
escalator calls the `ask` callback it was given (a front end), and every failure on that path is a
denial.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from boundary.repofiles import read_repo_file
from boundary.violations import Change, Violation, ViolationKind
from corral.backendchoice import ChosenBackend
from corral.background import BackgroundInfo, BackgroundJob, BackgroundJobs
from corral.carveouts import agent_readable
from corral.command import Command
from corral.decision import DENY, Decision
from corral.errors import EXIT_DENIED
from corral.escalation import Escalator, OnViolation
from corral.githooks import configured_hooks_dirs
from corral.ledger import PromptRecord
from corral.locations import Locations
from corral.network import LiveDecisions, NetworkGate
from corral.place import SessionPlace
from corral.project import ProjectContext
from corral.recording import CommandRecord, CommandRecorder, reported_read
from corral.rules import Rule, RuleStore
from sandbox.backend import Backend
from sandbox.bwrap import SandboxSetupError
from sandbox.limits import default_limits
from sandbox.policy import NetworkAccess, Policy, build_policy
from sandbox.report import RunResult
from sandbox.runner import EXIT_SETUP_FAILED, NetworkHook, SandboxRunner, StdioSpec

NO_REDIRECT = StdioSpec()
"""Inherit corral's stdin, stdout and stderr."""


@dataclass(frozen=True, slots=True)
class ViolationOutcome:
    """A violation and what was decided for it (`scope` is a `corral.decision.Scope` value)."""

    violation: Violation
    scope: str
    asked: bool
    latency_ms: float = 0.0

    @property
    def allowed(self) -> bool:
        return self.scope != "deny"


@dataclass
class CommandOutcome:
    """Everything about one command for a front end, the report file and the ledger."""

    command: str
    exit_code: int
    duration_ms: float
    outcomes: list[ViolationOutcome] = field(default_factory=list)
    applied: list[Change] = field(default_factory=list)
    refused: list[tuple[Change, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    decisions: dict[Violation, Decision] = field(default_factory=dict)
    hook_outcomes: list[CommandOutcome] = field(default_factory=list)
    """The project's before/after hooks that ran around this command (their decisions included)."""
    brokered: dict[tuple[str, str], int] = field(default_factory=dict)
    """Requests sent with a brokered credential: (host:port, credential name) -> count (names only)."""
    lookups: list[str] = field(default_factory=list)
    """The DNS questions the command asked corral's responder (``name (TYPE)``); none left the machine."""

    @property
    def denied(self) -> list[ViolationOutcome]:
        return [o for o in self.outcomes if not o.allowed]

    @property
    def status(self) -> int:
        """corral's exit status: the command's own, or EXIT_DENIED when it succeeded but was denied."""
        if self.exit_code == 0 and self.denied:
            return EXIT_DENIED
        return self.exit_code

    def report(self) -> dict[str, object]:
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            "violations": [
                {
                    "kind": o.violation.kind.value,
                    "target": o.violation.target,
                    "operation": o.violation.operation,
                    "detail": o.violation.detail,
                    "decision": o.scope,
                    "asked": o.asked,
                }
                for o in self.outcomes
            ],
            "applied": [str(c.path) for c in self.applied],
            "refused": [{"path": str(c.path), "reason": reason} for c, reason in self.refused],
            "brokered": [
                {"host": host, "credential": name, "requests": count}
                for (host, name), count in sorted(self.brokered.items())
            ],
            "lookups": list(self.lookups),
        }


def _home_path(text: str, environ: Mapping[str, str]) -> Path:
    """A `[filesystem] readable` entry as an absolute path (`~/` is the sandbox's home)."""
    if text.startswith("~/"):
        return Path(environ.get("HOME") or Path.home()) / text[2:]
    return Path(text)


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """What a front end shows about a session (its header, the status line): read-only values."""

    workspace: Path
    frontend: str
    trusted: bool
    allowed_hosts: tuple[str, ...]
    """The host patterns the network gate allows without asking; empty when the network is closed."""
    network: bool
    """Whether commands can reach the network at all (through corral's proxy)."""


@dataclass(frozen=True, slots=True)
class SessionParts:
    """The collaborators a Session runs with, built in one place (`corral.opening.compose_session`)."""

    runner: Backend
    rules: RuleStore
    escalator: Escalator
    recorder: CommandRecorder
    live: LiveDecisions | None = None
    """Answers the proxy about new hosts while a command runs; None when the network is closed."""
    gate: NetworkGate | None = None
    backend: ChosenBackend | None = None
    """Why `runner` is the backend it is (None: built by hand, it says nothing more)."""


class Session:
    """Runs commands for one project. Construct it with `corral.opening.compose_session` (or
    `open_session`, which reads the configs first); it receives its collaborators and never builds them.

    Callers talk to the Session only: `run`, `run_with_hooks`, `policy`, `interrupt`, `new_turn`,
    `summary`, `describe`, `project_rules`, `close` — never to its runner, escalator or gate.
    """

    def __init__(
        self,
        workspace: Path,
        *,
        locations: Locations,
        parts: SessionParts,
        frontend: str = "cli",
        environ: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        extra_writable: Sequence[Path] = (),
        extra_hidden: Sequence[Path] = (),
        network: NetworkAccess | None = None,
        project: ProjectContext | None = None,
        session_start: bool = True,
        extra_readable: Sequence[str] = (),
    ) -> None:
        self.workspace = workspace
        self._session_start_pending = session_start
        self.project = project
        config = project.config if project is not None else None
        if config is not None:
            # Only a trusted project's config reaches here (trust.gate parses nothing before trust).
            extra_env = {**config.env_dict(), **dict(extra_env or {})}
            extra_writable = (*extra_writable, *config.writable_paths())
            extra_hidden = (*extra_hidden, *config.hidden_paths())
        self.locations = locations
        self.frontend = frontend
        self.environ = dict(os.environ if environ is None else environ)
        self.extra_env = dict(extra_env or {})
        self.extra_writable = tuple(extra_writable)
        self.extra_hidden = tuple(extra_hidden)
        self.extra_readable = tuple(extra_readable)
        """The person's own `[filesystem] readable` (user config only: a repository never widens reads)."""
        self._runner = parts.runner
        self.backend = parts.backend or ChosenBackend(parts.runner, parts.runner.traits.name, fallback=False)
        """The sandbox backend commands run under and why (display only: the Session runs through
        `Backend` whatever it is)."""
        self._rules = parts.rules
        self._escalator = parts.escalator
        self._recorder = parts.recorder
        self._live = parts.live
        self._gate = parts.gate
        self.network = parts.gate.access() if parts.gate is not None else network
        self._policies: dict[Path, Policy] = {}
        self._jobs = BackgroundJobs()
        self._closed = False
        self.place = SessionPlace(
            locations.cache_dir,
            workspace,
            live=session_start,
            tmp_limit_bytes=(
                parts.runner.limits.tmpfs_bytes
                if isinstance(parts.runner, SandboxRunner)
                else default_limits().tmpfs_bytes
            ),
        )
        """What the session's commands share (`corral.place`): a live session's namespaces and /tmp, or
        a standalone run's project /tmp."""

    @property
    def session_id(self) -> int | None:
        """The ledger's id for this session (None when it does not record)."""
        return self._recorder.session_id

    def close(self) -> None:
        """End the session: its place (every process still running in it is killed, a live session's
        /tmp removed), its proxy (and the broker's generated files), the ledger and the rules store.
        Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self.end_background()
            if self._gate is not None:
                self._gate.close()
            self.place.close()
        finally:
            try:
                self._recorder.close()
            finally:
                self._rules.close()

    def background(self) -> list[BackgroundInfo]:
        """What the session's commands left running in the background (`corral.background`)."""
        namespace = self.place.namespace
        return self._jobs.infos(namespace.pid if namespace is not None else None)

    def has_background(self) -> bool:
        """Whether any command of the session left processes in the background (cheap: no /proc read)."""
        return self._jobs.count() > 0

    def stop_background(self, job_id: int) -> CommandOutcome | None:
        """Stop one background job (every process of its sandbox) and decide what it wrote since its
        command ended, like a command's writes; None when there is no such job."""
        job = self._jobs.take(job_id)
        return self._finish_job(job, stop=True) if job is not None else None

    def end_background(self) -> list[CommandOutcome]:
        """The session ends: stop every background job. What they wrote inside the workspace is applied;
        crossings are denied without asking (nobody can be asked any more) and recorded as needed."""
        jobs = self._jobs.take_all()
        if not jobs:
            return []
        asking = self._escalator.on_violation
        self._escalator.on_violation = OnViolation.DENY
        try:
            return [self._finish_job(job, stop=True) for job in jobs]
        finally:
            self._escalator.on_violation = asking

    def _finish_job(self, job: BackgroundJob, *, stop: bool) -> CommandOutcome:
        command = Command(job.kept.command, f"{job.command}  [background, ended]")
        started_at = time.time()
        runner = self._runner
        assert isinstance(runner, SandboxRunner)
        try:
            result = runner.finish_background(job.kept, stop=stop)
        except SandboxSetupError as error:
            outcome = CommandOutcome(command=command.text, exit_code=EXIT_SETUP_FAILED, duration_ms=0.0)
            outcome.notices.append(f"corral: {error}")
            return outcome
        return self._decide(
            command, result, job.kept.policy.cwd, started_at, hook_event="background", already=job.decided
        )

    def interrupt(self, signal_number: int) -> None:
        """Send `signal_number` to the command running now (Ctrl-C, a cancelled client, a timeout)."""
        self._runner.interrupt(signal_number)

    def new_turn(self) -> None:
        """The person started a new turn: prompts stopped by the burst limit may be asked again."""
        self._escalator.memory.reset_burst()

    def summary(self) -> SessionSummary:
        """Values a front end shows about this session."""
        hosts = tuple(str(pattern) for pattern in self._gate.hosts.allow) if self._gate is not None else ()
        return SessionSummary(
            workspace=self.workspace,
            frontend=self.frontend,
            trusted=self.project is not None and self.project.trusted,
            allowed_hosts=hosts,
            network=self.network is not None,
        )

    def describe(self, argv: Sequence[str], cwd: Path | None = None) -> list[str]:
        """The exact backend argv that would run `argv` (`corral policy --backend-args`)."""
        return self._runner.describe(self.policy(cwd), list(argv))

    def project_rules(self) -> list[Rule]:
        """This project's stored rules, oldest first."""
        return self._rules.list(self.workspace)

    def policy(self, cwd: Path | None = None) -> Policy:
        """The effective policy for a command run from `cwd` (the workspace when outside it)."""
        start = Path(os.path.realpath(cwd)) if cwd is not None else self.workspace
        if not (start == self.workspace or self.workspace in start.parents):
            start = self.workspace  # M02: a cwd from outside never widens anything
        cached = self._policies.get(start)
        if cached is None:
            cached = self._policies[start] = self._build_policy(start)
        return cached

    def invalidate_policy(self) -> None:
        """Forget composed policies (after the project config or trust changed)."""
        self._policies.clear()

    def _build_policy(self, start: Path) -> Policy:
        return build_policy(
            workspace=self.workspace,
            cwd=start,
            home=Path(self.environ.get("HOME") or Path.home()),
            environ=self.environ,
            own_state=self.locations.all(),
            protected_roots=[
                *_own_installation(),
                *configured_hooks_dirs(
                    self.workspace, Path(self.environ.get("HOME") or Path.home()), self.environ
                ),
            ],
            extra_hidden=self.extra_hidden,
            unhidden=self._allowed_reads(),
            shown_for_writing=self._allowed_writes(),
            extra_env=self.extra_env,
            extra_writable=self.extra_writable,
            extra_readable=[_home_path(p, self.environ) for p in self.extra_readable],
            network=self.network,
            readable=agent_readable(Path(self.environ.get("HOME") or Path.home()), os.getuid()),
        )

    def _allowed_writes(self) -> list[Path]:
        """Paths this project's fs-write rules allow: an existing home file there is shown with its
        content (copied into the capture layer) so a later command can change it as the rule allows."""
        try:
            rules = self._rules.list(self.workspace)
        except Exception:
            return []  # Fail closed: without the rules, the home stays hidden.
        return [Path(rule.target) for rule in rules if rule.kind is ViolationKind.FS_WRITE]

    def _allowed_reads(self) -> list[Path]:
        """Credential paths this project's fs-read rules allow (read when the policy is composed)."""
        try:
            rules = self._rules.list(self.workspace)
        except Exception:
            return []  # Fail closed: without the rules, everything stays hidden.
        return [Path(rule.target.rstrip("/")) for rule in rules if rule.kind is ViolationKind.FS_READ]

    def run(
        self,
        command: Command,
        *,
        cwd: Path | None = None,
        stdio: StdioSpec = NO_REDIRECT,
        network_hook: NetworkHook | None = None,
        hook_event: str | None = None,
    ) -> CommandOutcome:
        """Run `command` sandboxed, decide on what it crossed, apply or discard, record. Raises
        SandboxSetupError (nothing ran) when the sandbox cannot start. `hook_event` marks a project hook
        run: recorded as such, never counted as a command."""
        with self._runner.starting():  # a Ctrl-C from now on reaches this command
            return self._run(command, cwd=cwd, stdio=stdio, network_hook=network_hook, hook_event=hook_event)

    def _run(
        self,
        command: Command,
        *,
        cwd: Path | None,
        stdio: StdioSpec,
        network_hook: NetworkHook | None,
        hook_event: str | None,
    ) -> CommandOutcome:
        policy = self.policy(cwd)
        if self._live is not None:
            self._live.command = command  # what a live host prompt shows while this command runs
        started_at = time.time()
        hook = network_hook if network_hook is not None else self._gate
        ended = [self._finish_job(job, stop=False) for job in self._jobs.take_ended()]
        self._enter_place()
        try:
            result: RunResult = self._runner.run(list(command.argv), policy, stdio=stdio, network=hook)
        finally:
            refused_net, allowed_net = self._gate.detach() if self._gate is not None else ([], [])
        outcome = self._decide(
            command, result, policy.cwd, started_at, hook_event=hook_event, net=(refused_net, allowed_net)
        )
        if self._gate is not None:
            outcome.brokered = self._gate.take_brokered()
            outcome.lookups.extend(self._gate.take_lookups())
        outcome.hook_outcomes[:0] = ended  # background jobs that ended since the last command
        return outcome

    def _decide(
        self,
        command: Command,
        result: RunResult,
        cwd: Path,
        started_at: float,
        *,
        hook_event: str | None,
        net: tuple[list[Violation], list[tuple[Violation, Decision]]] = ([], []),
        already: frozenset[str] = frozenset(),
    ) -> CommandOutcome:
        """Decide what `result` crossed (rules, memory, the person), apply what was allowed, record.
        `already`: fingerprints of crossings decided before (a kept sandbox read again), not asked again."""
        text = command.text
        refused_net, allowed_net = net
        outcome = CommandOutcome(command=text, exit_code=result.exit_code, duration_ms=result.duration_ms)
        outcome.applied.extend(result.applied)
        outcome.refused.extend(result.refused)
        records: list[PromptRecord] = []
        decisions: dict[Violation, Decision] = {}
        # A read of a hidden path already failed inside the sandbox (the command got an empty decoy):
        # asking now could not change that, so reads are reported and recorded, never asked. An
        # fs-read rule ("corral rules add --kind fs-read") makes the path readable for later commands.
        reads = [v for v in result.violations if v.kind is ViolationKind.FS_READ]
        crossings = [v for v in result.violations if v.kind is not ViolationKind.FS_READ]
        prints = _fingerprints(crossings)
        if already:
            crossings = [v for v in crossings if prints.get(v) not in already]
            result.violations = [*reads, *crossings]
        decisions.update((v, DENY) for v in reads)
        records.extend(reported_read(v, self.frontend) for v in reads)
        try:
            decisions.update(
                self._escalator.decide(
                    text,
                    self.workspace,
                    crossings,
                    records=records,
                    fingerprints=prints,
                    description=command.description,
                )
            )
        except Exception:
            decisions = {}  # Fail closed: an error while deciding denies everything below.
        finally:
            allowed = [v for v in result.violations if (d := decisions.get(v)) is not None and d.allows]
            settled = self._runner.settle(result, allowed)
            outcome.applied.extend(settled.applied)  # what an allow applied outside the workspace
            outcome.refused.extend(settled.refused)
            # A backend that cannot capture writes re-runs the command on an allow (Seatbelt): the
            # re-run's exit status is the command's.
            outcome.exit_code = result.exit_code
        records.extend(self._escalator.take_records())  # live network decisions made while it ran
        asked = {(r.kind, r.target) for r in records if r.asked}
        outcome.decisions = {v: decisions.get(v, DENY) for v in result.violations}
        for violation, decision in allowed_net:
            outcome.decisions[violation] = decision
        for violation in refused_net:
            outcome.decisions[violation] = DENY
        outcome.outcomes = [
            ViolationOutcome(v, d.scope.value, asked=(v.kind.value, v.target) in asked)
            for v, d in outcome.decisions.items()
        ]
        outcome.notices.extend(result.notices)
        outcome.notices.extend(self._escalator.notices)
        self._escalator.notices.clear()
        outcome.notices.extend(self.place.take_notices())
        if result.background is not None:
            self._jobs.keep(result.background, text, frozenset(prints.values()))
        record = CommandRecord(
            command=text,
            cwd=cwd,
            started_at=started_at,
            duration_ms=outcome.duration_ms,
            exit_code=outcome.exit_code,
            violation_count=len(outcome.outcomes),
            hook=hook_event,
        )
        failure = self._recorder.record(
            record, records, [(host, name, count) for (host, name), count in outcome.brokered.items()]
        )
        if failure is not None:
            outcome.notices.append(failure)
        return outcome

    def _enter_place(self) -> None:
        """Hand the session's shared place to the backend that can use it (bwrap)."""
        if not isinstance(self._runner, SandboxRunner) or not self._runner.shares_place:
            return
        place = self.place.current()
        self._runner.place = place
        if self._gate is not None:
            self._gate.session_wide = place.namespace is not None

    def run_with_hooks(
        self, command: Command, *, cwd: Path | None = None, stdio: StdioSpec = NO_REDIRECT
    ) -> CommandOutcome:
        """`run`, with the trusted project's hooks around it: `session_start` before the session's first
        command (see `start`), then before_command, the command, after_command — each sandboxed and
        decided like any command; their outcomes are in `hook_outcomes`, in the order they ran."""
        started = self.start(stdio=stdio)
        before = self.run_hook("before_command", stdio=stdio)
        outcome = self.run(command, cwd=cwd, stdio=stdio)
        after = self.run_hook("after_command", stdio=stdio)
        outcome.hook_outcomes.extend(hook for hook in (started, before, after) if hook is not None)
        return outcome

    def start(self, *, stdio: StdioSpec = NO_REDIRECT) -> CommandOutcome | None:
        """Run the trusted project's `session_start` hook, once per Session: a front end may call this
        when the session opens; otherwise `run_with_hooks` calls it before the first command. A Session
        made with `session_start=False` (a standalone `corral run`, which is not a session) never runs
        it. The config only exists after trust (`trust.gate`), so nothing runs before trust; a Session
        reopened after a trust decision is a new session and runs the hook of what was trusted."""
        if not self._session_start_pending:
            return None
        self._session_start_pending = False
        return self.run_hook("session_start", stdio=stdio)

    def run_hook(self, event: str, *, stdio: StdioSpec = NO_REDIRECT) -> CommandOutcome | None:
        """Run the trusted project's hook for `event` inside the sandbox, like any command (its writes
        outside the workspace are captured and decided the same way). None when there is no hook."""
        config = self.project.config if self.project is not None else None
        hook = config.hook(event) if config is not None else None
        if hook is None or self.project is None:
            return None
        argv = hook.argv()
        if hook.script is not None:
            # Run the exact bytes that were trusted, not whatever is on disk by now (TT1).
            text = self.project.gate.trusted_bytes(hook.script).decode("utf-8", "replace")
            argv = ["/bin/sh", "-c", text, hook.script]
        command = Command(tuple(argv), hook.command)  # shown as the project wrote it
        return self.run(command, cwd=self.workspace, stdio=stdio, hook_event=event)


def _fingerprints(violations: Sequence[Violation]) -> dict[Violation, str]:
    """A content hash per captured-write violation, so that a session allowance of a sensitive target
    covers exactly the bytes that were shown (TT1): different content next time is asked again."""
    import hashlib

    prints: dict[Violation, str] = {}
    for violation in violations:
        if not violation.changes:
            continue
        digest = hashlib.sha256()
        for change in violation.changes:
            digest.update(f"{change.path}\0{change.op.value}\0{change.link_target or ''}\0".encode())
            if (
                change.source is not None
                and change.op.value in ("create", "modify")
                and change.size <= 16 << 20
            ):
                captured = read_repo_file(change.source, 16 << 20).content
                digest.update(hashlib.sha256(captured).digest() if captured is not None else b"unreadable")
        prints[violation] = digest.hexdigest()
    return prints


def _own_installation() -> list[Path]:
    """corral's interpreter prefix and package directories: when they live inside the workspace (corral
    installed in the project's virtualenv) a sandboxed command must not change what runs corral next."""
    import sys

    import boundary
    import corral
    import sandbox
    import trust

    paths = [Path(sys.prefix), Path(sys.executable)]
    paths.extend(Path(m.__file__).parent for m in (boundary, corral, sandbox, trust) if m.__file__)
    if corral.__file__:
        # The command line and the front ends sit beside the core (the core never imports them).
        beside = Path(corral.__file__).parent.parent
        paths.extend(beside / name for name in ("cli", "tui") if (beside / name / "__init__.py").exists())
    return paths


def resolve_command(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> str | None:
    """The executable `argv[0]` names, looked up like the shell would; None when there is none."""
    name = argv[0]
    if "/" in name:
        path = name if os.path.isabs(name) else os.path.join(cwd, name)
        return path if os.path.exists(path) else None
    return shutil.which(name, path=env.get("PATH", os.defpath))
