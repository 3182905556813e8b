"""One Session per project: compose policy, run in the sandbox, decide on violations, record.

    Session.run(command):
      1. trust gate            -> the project's config only when trusted (nothing parsed before)
      2. policy                = defaults + user config + trusted project config
      3. sandbox run           -> RunResult (exit code, captured changes, violations)
      4. violations            -> a decision per violation (rules, session memory, the `ask` callback)
      5. apply or discard      captured changes; record command and prompts in the ledger

The session never talks to a person itself: it calls the `ask` callback it was given (a front end),
and every failure on that path is a denial.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from boundary.violations import Change, Violation, ViolationKind
from corral.decision import DENY, AskCallback, Decision
from corral.escalation import Escalator, OnViolation
from corral.githooks import configured_hooks_dirs
from corral.ledger import Ledger, PromptRecord
from corral.locations import Locations
from corral.network import NetworkGate, Resolver
from corral.project import ProjectContext
from corral.rules import RuleStore
from corral.session_memory import SessionMemory
from sandbox.egress.hostpolicy import HostPolicy
from sandbox.policy import NetworkAccess, Policy, build_policy
from sandbox.report import RunResult
from sandbox.runner import NetworkHook, SandboxRunner, StdioSpec

NO_REDIRECT = StdioSpec()
"""Inherit corral's stdin, stdout and stderr."""

EXIT_DENIED = 77
"""corral's exit status when the command exited 0 but a violation was denied (EX_NOPERM)."""


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
        }


def _home_path(text: str, environ: Mapping[str, str]) -> Path:
    """A `[filesystem] readable` entry as an absolute path (`~/` is the sandbox's home)."""
    if text.startswith("~/"):
        return Path(environ.get("HOME") or Path.home()) / text[2:]
    return Path(text)


def shell_argv(text: str) -> list[str]:
    """The argv that runs one shell string (the way CLAUDE_CODE_SHELL_PREFIX hands a command over)."""
    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    return [shell, "-c", text]


def command_text(argv: Sequence[str]) -> str:
    import shlex

    if len(argv) == 3 and argv[1] == "-c" and argv[0] in ("/bin/bash", "/bin/sh"):
        return argv[2]
    return shlex.join(argv)


class Session:
    """Runs commands for one project. Construct it once per shell (or once per `corral run`).

    `ask` is the front end's callback (None: nobody to ask, so every crossing is denied unless a rule or
    this session already allowed it); `on_violation` DENY denies without asking even with a callback.
    """

    def __init__(
        self,
        workspace: Path,
        *,
        locations: Locations,
        ask: AskCallback | None = None,
        frontend: str = "cli",
        on_violation: OnViolation = OnViolation.DENY,
        ask_timeout_s: float = 300.0,
        environ: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        extra_writable: Sequence[Path] = (),
        extra_hidden: Sequence[Path] = (),
        network: NetworkAccess | None = None,
        record: bool = True,
        project: ProjectContext | None = None,
        hosts: HostPolicy | None = None,
        resolver: Resolver | None = None,
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
        self.gate: NetworkGate | None = None
        self._current_command = ""
        self._current_description: str | None = None
        if hosts is not None:
            if config is not None and config.allowed_hosts:
                hosts.extend(source=str(workspace / ".corral/config.toml"), allow=config.allowed_hosts)
            self.gate = NetworkGate(hosts, self._ask_host, resolver)
            network = self.gate.access()
        self.network = network
        self.runner = SandboxRunner(
            runtime_dir=locations.runtime_dir,
            cache_dir=locations.cache_dir,
            layers_dir=locations.cache_layers_dir,
        )
        locations.ensure(locations.data_dir)
        self.rules = RuleStore.open(locations.rules_path)
        self.ledger: Ledger | None = Ledger.open(locations.ledger_path) if record else None
        self.escalator = Escalator(
            self.rules,
            SessionMemory(),
            ask,
            timeout_s=ask_timeout_s,
            frontend_name=frontend,
            ledger=self.ledger,
            on_violation=on_violation,
        )
        self._session_id: int | None = None
        self._policies: dict[Path, Policy] = {}

    @property
    def session_id(self) -> int | None:
        if self._session_id is None and self.ledger is not None:
            self._session_id = self.ledger.start_session(str(self.workspace), self.frontend)
        return self._session_id

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None

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
            extra_env=self.extra_env,
            extra_writable=self.extra_writable,
            extra_readable=[_home_path(p, self.environ) for p in self.extra_readable],
            network=self.network,
        )

    def _allowed_reads(self) -> list[Path]:
        """Credential paths this project's fs-read rules allow (read when the policy is composed)."""
        try:
            rules = self.rules.list(self.workspace)
        except Exception:
            return []  # Fail closed: without the rules, everything stays hidden.
        return [Path(rule.target.rstrip("/")) for rule in rules if rule.kind is ViolationKind.FS_READ]

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        stdio: StdioSpec = NO_REDIRECT,
        network_hook: NetworkHook | None = None,
        description: str | None = None,
    ) -> CommandOutcome:
        """Run `argv` sandboxed, decide on what it crossed, apply or discard, record. Raises
        SandboxSetupError (nothing ran) when the sandbox cannot start."""
        policy = self.policy(cwd)
        text = command_text(argv)
        self._current_command = text
        self._current_description = description
        started_at = time.time()
        hook = network_hook if network_hook is not None else self.gate
        try:
            result: RunResult = self.runner.run(list(argv), policy, stdio=stdio, network=hook)
        finally:
            refused_net, allowed_net = self.gate.detach() if self.gate is not None else ([], [])
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
        decisions.update((v, DENY) for v in reads)
        records.extend(_reported(v, self.frontend) for v in reads)
        try:
            decisions.update(
                self.escalator.decide(
                    text,
                    self.workspace,
                    crossings,
                    records=records,
                    fingerprints=_fingerprints(crossings),
                    description=description,
                )
            )
        except Exception:
            decisions = {}  # Fail closed: an error while deciding denies everything below.
        finally:
            allowed = [v for v in result.violations if (d := decisions.get(v)) is not None and d.allows]
            outcome.refused.extend(self.runner.finish(result, allowed))
        records.extend(self.escalator.take_records())  # live network decisions made while it ran
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
        outcome.notices.extend(self.escalator.notices)
        self.escalator.notices.clear()
        self._record(outcome, policy.cwd, started_at, records)
        return outcome

    def run_with_hooks(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        stdio: StdioSpec = NO_REDIRECT,
        description: str | None = None,
    ) -> CommandOutcome:
        """`run`, with the trusted project's hooks around it: `session_start` before the session's first
        command (see `start`), then before_command, the command, after_command — each sandboxed and
        decided like any command; their outcomes are in `hook_outcomes`, in the order they ran."""
        started = self.start(stdio=stdio)
        before = self.run_hook("before_command", stdio=stdio)
        outcome = self.run(argv, cwd=cwd, stdio=stdio, description=description)
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

    def _ask_host(self, violation: Violation) -> Decision:
        """Live decision for a new host while the command waits (from the proxy's thread)."""
        return self.escalator.decide_one(
            self._current_command, self.workspace, violation, self._current_description
        )

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
        return self.run(argv, cwd=self.workspace, stdio=stdio)

    def _record(
        self, outcome: CommandOutcome, cwd: Path, started_at: float, records: list[PromptRecord]
    ) -> None:
        if self.ledger is None:
            return
        try:
            self.escalator.record_command(
                session_id=self.session_id,
                project=self.workspace,
                command=outcome.command,
                cwd=cwd,
                started_at=started_at,
                duration_ms=outcome.duration_ms,
                exit_code=outcome.exit_code,
                violation_count=len(outcome.outcomes),
                classic_would_prompt=_classic(outcome.command),
                records=records,
            )
        except Exception as error:  # the ledger must never change what the command did
            outcome.notices.append(f"could not record the command in the ledger: {error}")


def _reported(violation: Violation, frontend: str) -> PromptRecord:
    return PromptRecord(
        kind=violation.kind.value,
        target=violation.target,
        operation=violation.operation,
        scope="deny",
        asked=False,
        decided_by="sandbox",
        frontend=frontend,
    )


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
                try:
                    digest.update(hashlib.sha256(change.source.read_bytes()).digest())
                except OSError:
                    digest.update(b"unreadable")
        prints[violation] = digest.hexdigest()
    return prints


def _classic(command: str) -> bool | None:
    try:
        from corral.fatigue.classic import would_prompt
    except ImportError:
        return None
    try:
        return would_prompt(command)
    except Exception:
        return None


def _own_installation() -> list[Path]:
    """corral's interpreter prefix and package directories: when they live inside the workspace (corral
    installed in the project's virtualenv) a sandboxed command must not change what runs corral next."""
    import sys

    import corral
    import sandbox
    import trust

    paths = [Path(sys.prefix), Path(sys.executable)]
    paths.extend(Path(m.__file__).parent for m in (corral, sandbox, trust) if m.__file__)
    return paths


def resolve_command(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> str | None:
    """The executable `argv[0]` names, looked up like the shell would; None when there is none."""
    name = argv[0]
    if "/" in name:
        path = name if os.path.isabs(name) else os.path.join(cwd, name)
        return path if os.path.exists(path) else None
    return shutil.which(name, path=env.get("PATH", os.defpath))
