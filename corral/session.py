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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corral.locations import Locations
from sandbox.policy import NetworkAccess, Policy, build_policy
from sandbox.report import Change, RunResult, Violation
from sandbox.runner import SandboxRunner, StdioSpec

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


Decider = Callable[[str, Sequence[Violation]], list[ViolationOutcome]]
"""Decides every violation of one command (the escalation layer); must fail closed."""


def deny_all(_command: str, violations: Sequence[Violation]) -> list[ViolationOutcome]:
    return [ViolationOutcome(v, "deny", asked=False) for v in violations]


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
    """Runs commands for one project. Construct it once per shell (or once per `corral run`)."""

    def __init__(
        self,
        workspace: Path,
        *,
        locations: Locations,
        decider: Decider = deny_all,
        environ: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        extra_writable: Sequence[Path] = (),
        extra_hidden: Sequence[Path] = (),
        network: NetworkAccess | None = None,
    ) -> None:
        self.workspace = workspace
        self.locations = locations
        self.decider = decider
        self.environ = dict(os.environ if environ is None else environ)
        self.extra_env = dict(extra_env or {})
        self.extra_writable = tuple(extra_writable)
        self.extra_hidden = tuple(extra_hidden)
        self.network = network
        self.runner = SandboxRunner(
            runtime_dir=locations.runtime_dir,
            cache_dir=locations.cache_dir,
            layers_dir=locations.data_dir / "layers",
        )

    def policy(self, cwd: Path | None = None) -> Policy:
        """The effective policy for a command run from `cwd` (the workspace when outside it)."""
        start = Path(os.path.realpath(cwd)) if cwd is not None else self.workspace
        if not (start == self.workspace or self.workspace in start.parents):
            start = self.workspace
        return build_policy(
            workspace=self.workspace,
            cwd=start,
            home=Path(self.environ.get("HOME") or Path.home()),
            environ=self.environ,
            own_state=self.locations.all(),
            protected_roots=_own_installation(),
            extra_hidden=self.extra_hidden,
            extra_env=self.extra_env,
            extra_writable=self.extra_writable,
            network=self.network,
        )

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        stdio: StdioSpec = StdioSpec(),
        network_hook: object | None = None,
    ) -> CommandOutcome:
        """Run `argv` sandboxed, decide on what it crossed, apply or discard. Raises SandboxSetupError
        (nothing ran) when the sandbox cannot start."""
        policy = self.policy(cwd)
        text = command_text(argv)
        result: RunResult = self.runner.run(list(argv), policy, stdio=stdio, network=network_hook)  # type: ignore[arg-type]
        outcome = CommandOutcome(command=text, exit_code=result.exit_code, duration_ms=result.duration_ms)
        outcome.applied.extend(result.applied)
        outcome.refused.extend(result.refused)
        try:
            outcome.outcomes = self._decide(text, result.violations)
        finally:
            allowed = [o.violation for o in outcome.outcomes if o.allowed]
            outcome.refused.extend(self.runner.finish(result, allowed))
        return outcome

    def _decide(self, text: str, violations: Sequence[Violation]) -> list[ViolationOutcome]:
        if not violations:
            return []
        try:
            decided = self.decider(text, violations)
        except Exception:
            # Fail closed: an error anywhere in deciding is a denial of everything.
            return deny_all(text, violations)
        by_violation = {o.violation: o for o in decided}
        return [by_violation.get(v) or ViolationOutcome(v, "deny", asked=False) for v in violations]


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
