"""Replay a workload of agent commands through the real sandbox and count the prompts.

A workload is JSON Lines, one object per line:

    {"command": "make test", "cwd": "src", "category": "test"}

`command` (required, a shell string) runs with `bash -c` like an agent's shell tool would; `cwd`
(optional) is relative to the project — a cwd that is absolute, escapes the project or does not exist
is an error for that line, which is then not run (M02: input never widens policy); `category`
(optional) only groups the report. Blank lines are skipped. A malformed line (bad JSON, not an object,
missing or non-string `command`, unknown key) stops the replay before anything runs:
`WorkloadError` names the file and line (`corral replay` exits 2), because numbers from part of a
workload would be reported as numbers for all of it.

Every command runs through `corral.session.Session` in the project, exactly as `corral run` would,
and is recorded in the ledger, so `corral stats` shows the same numbers afterwards. The person is
simulated by `ReplayAnswers`:

- `allow`: "allow for this project" for every target — one round of project rules, the goal's
  setting. Sensitive targets (credentials, protected paths, shell start-up files) need an explicit
  confirmation for a rule; the simulated person never gives it and answers "allow once" instead, so
  those targets keep prompting on every later run.
- `deny`: deny every prompt. corral remembers a denial for the session, so a target is asked once.

Burst limiting (stop asking after repeated denials) is switched off in a replay: it depends on how
fast the answers come, and the replay must count every prompt a person would see.

`dry_run=True` runs nothing: every line is classified by the classic baseline only (the project is
optional then, so a dry run works anywhere, a clone of corral included).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from boundary.violations import Violation, ViolationKind
from corral.decision import Decision, PromptAnswer, PromptRequest, Scope
from corral.fatigue.classic import classify
from corral.fatigue.stats import FatigueStats
from corral.sensitivity import is_sensitive
from corral.termsafe import raw_stream

OnViolationAnswer = Literal["allow", "deny"]
_KNOWN_KEYS = frozenset({"command", "cwd", "category"})


class WorkloadError(ValueError):
    """A malformed workload line; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class WorkloadLine:
    """One command of a workload, with its line number in the file."""

    number: int
    command: str
    cwd: str | None = None
    category: str | None = None


def load_workload(path: Path) -> list[WorkloadLine]:
    """Parse a workload file; raise WorkloadError at the first malformed line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WorkloadError(f"{path}: cannot read: {error}") from error
    lines: list[WorkloadLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as error:
            raise WorkloadError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(item, dict):
            raise WorkloadError(f"{where}: expected a JSON object")
        unknown = sorted(set(item) - _KNOWN_KEYS)
        if unknown:
            raise WorkloadError(f"{where}: unknown key {unknown[0]!r} (allowed: command, cwd, category)")
        command = item.get("command")
        if not isinstance(command, str) or not command.strip():
            raise WorkloadError(f"{where}: key 'command' must be a non-empty string")
        for key in ("cwd", "category"):
            if key in item and not isinstance(item[key], str):
                raise WorkloadError(f"{where}: key {key!r} must be a string")
        lines.append(WorkloadLine(number, command, item.get("cwd"), item.get("category")))
    return lines


def resolve_cwd(project: Path, cwd: str | None) -> Path:
    """The directory a line runs in; ValueError when `cwd` is absolute, escapes or is missing."""
    if cwd is None or cwd in ("", "."):
        return project
    if os.path.isabs(cwd):
        raise ValueError(f"cwd {cwd!r} must be relative to the project")
    real = Path(os.path.realpath(project / cwd))
    if real != project and project not in real.parents:
        raise ValueError(f"cwd {cwd!r} is outside the project")
    if not real.is_dir():
        raise ValueError(f"cwd {cwd!r} is not a directory in the project")
    return real


class ReplayAnswers:
    """The simulated person: answers every prompt with the chosen policy (see the module docstring)."""

    def __init__(self, answer: OnViolationAnswer, confine: tuple[Path, ...] = ()) -> None:
        self.answer = answer
        self.confine = tuple(Path(os.path.realpath(root)) for root in confine)
        self.prompts = 0

    def _outside(self, violation: Violation) -> bool:
        """A file target outside every confining root (the project, the replay's home)."""
        if not self.confine or violation.kind is ViolationKind.NET:
            return False
        target = Path(os.path.realpath(violation.target))
        return not any(target == root or root in target.parents for root in self.confine)

    def __call__(self, request: PromptRequest) -> PromptAnswer:
        """Answer one prompt. The prompt counts whatever the answer; with `confine`, a file outside the
        project and the replay's home is denied even under `allow`, so nothing lands elsewhere."""
        self.prompts += 1
        if self.answer == "deny":
            return Decision(Scope.DENY)
        return {
            violation: Decision(Scope.DENY)
            if self._outside(violation)
            else Decision(Scope.ONCE)
            if is_sensitive(violation)
            else Decision(Scope.PROJECT)
            for violation in request.violations
        }


@dataclass(slots=True)
class LineResult:
    """What happened to one workload line."""

    line: WorkloadLine
    classic_prompt: bool
    classic_reason: str
    ran: bool = False
    exit_code: int | None = None
    prompted: bool = False
    violations: list[dict[str, object]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "line": self.line.number,
            "command": self.line.command,
            "cwd": self.line.cwd,
            "category": self.line.category,
            "classic_prompt": self.classic_prompt,
            "classic_reason": self.classic_reason,
            "ran": self.ran,
            "exit_code": self.exit_code,
            "prompted": self.prompted,
            "violations": self.violations,
            "error": self.error,
        }


@dataclass(slots=True)
class ReplayReport:
    """The fatigue report of one replay."""

    workload: str
    project: str
    on_violation: OnViolationAnswer
    dry_run: bool
    results: list[LineResult]
    session_id: int | None = None
    seconds: float = 0.0

    def summary(self) -> FatigueStats:
        """Totals in the same shape `corral stats` uses (lines in error are not counted)."""
        stats = FatigueStats(project=self.project, session_id=self.session_id)
        for result in self.results:
            if result.error is not None:
                continue
            stats.commands += 1
            stats.classic_known += 1
            stats.classic_prompts += int(result.classic_prompt)
            stats.prompts += int(result.prompted)
            stats.approved += int(
                result.prompted and not any(v["asked"] and v["decision"] == "deny" for v in result.violations)
            )
            stats.violations += len(result.violations)
            for violation in result.violations:
                stats.decisions += 1
                if violation["asked"]:
                    stats.asked += 1
                    stats.asked_allowed += int(violation["decision"] != "deny")
                    kind = str(violation["kind"])
                    stats.asked_by_kind[kind] = stats.asked_by_kind.get(kind, 0) + 1
        return stats

    def by_category(self) -> dict[str, dict[str, int]]:
        """Per category: commands, classic prompts, corral prompts."""
        table: dict[str, dict[str, int]] = {}
        for result in self.results:
            if result.error is not None:
                continue
            row = table.setdefault(result.line.category or "-", {"commands": 0, "classic": 0, "corral": 0})
            row["commands"] += 1
            row["classic"] += int(result.classic_prompt)
            row["corral"] += int(result.prompted)
        return dict(sorted(table.items(), key=lambda item: -item[1]["commands"]))

    def errors(self) -> list[LineResult]:
        """Lines that were not run because of an error."""
        return [r for r in self.results if r.error is not None]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "workload": self.workload,
            "project": self.project,
            "on_violation": self.on_violation,
            "dry_run": self.dry_run,
            "session_id": self.session_id,
            "seconds": round(self.seconds, 2),
            "summary": self.summary().to_dict(),
            "by_category": self.by_category(),
            "lines": [r.to_dict() for r in self.results],
        }


ProgressCallback = Callable[[int, int, int], None]
"""Called after each line with (done, total, prompts so far)."""


def replay(
    workload: Path,
    lines: list[WorkloadLine],
    project: Path | None,
    *,
    on_violation: OnViolationAnswer = "deny",
    dry_run: bool = False,
    timeout_s: float = 120.0,
    progress: ProgressCallback | None = None,
    environ: Mapping[str, str] | None = None,
) -> ReplayReport:
    """Run (or with `dry_run`, only classify) every line in `project` (a canonical workspace; None
    only for a dry run, which then checks no cwd). Commands run with `environ`'s HOME (the CLI passes
    a throwaway one, `corral.fatigue.replayhome`), and under `allow` the simulated person allows
    nothing outside the project and that home."""
    started = time.monotonic()
    report = ReplayReport(str(workload), str(project or "(none)"), on_violation, dry_run, [])
    prompts = 0
    if dry_run:
        for index, line in enumerate(lines, start=1):
            report.results.append(_classified(line, project))
            if progress is not None:
                progress(index, len(lines), 0)
        report.seconds = time.monotonic() - started
        return report

    from corral.command import Command
    from corral.escalation import BurstPolicy, OnViolation
    from corral.locations import Locations
    from corral.opening import open_session
    from sandbox.runner import StdioSpec

    if project is None:
        raise ValueError("a replay that runs commands needs a project")
    home = (environ if environ is not None else os.environ).get("HOME") or str(Path.home())
    answers = ReplayAnswers(on_violation, confine=(project, Path(home)))
    session, _warnings = open_session(
        project,
        Locations.default(),
        ask=answers,
        frontend="replay",
        on_violation=OnViolation.ASK,
        environ=environ,
        burst=BurstPolicy(max_denials=1 << 30),
    )
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for index, line in enumerate(lines, start=1):
            result = _classified(line, project)
            report.results.append(result)
            if result.error is None:
                cwd = resolve_cwd(project, line.cwd)
                with _deadline(timeout_s, lambda: session.interrupt(signal.SIGKILL)):
                    outcome = session.run(
                        Command.from_shell(line.command), cwd=cwd, stdio=StdioSpec(devnull, devnull, devnull)
                    )
                result.ran = True
                result.exit_code = outcome.exit_code
                result.violations = [
                    {
                        "kind": o.violation.kind.value,
                        "target": o.violation.target,
                        "decision": o.scope,
                        "asked": o.asked,
                    }
                    for o in outcome.outcomes
                ]
                result.prompted = any(o.asked for o in outcome.outcomes)
                prompts += int(result.prompted)
            if progress is not None:
                progress(index, len(lines), prompts)
        report.session_id = session.session_id
    finally:
        os.close(devnull)
        session.close()
    report.seconds = time.monotonic() - started
    return report


def _classified(line: WorkloadLine, project: Path | None) -> LineResult:
    verdict = classify(line.command)
    result = LineResult(line, verdict.prompt, verdict.reason)
    if project is None:
        return result  # a dry run without a project: nothing runs, so no cwd to check
    try:
        resolve_cwd(project, line.cwd)
    except ValueError as error:
        result.error = str(error)
    return result


class _deadline:
    """Call `on_expiry` once if the block is still running after `seconds`."""

    def __init__(self, seconds: float, on_expiry: Callable[[], None]) -> None:
        self._timer = threading.Timer(seconds, on_expiry)
        self._timer.daemon = True

    def __enter__(self) -> None:
        self._timer.start()

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


# --- rendering -----------------------------------------------------------------------------------


def render_report(report: ReplayReport) -> str:
    """The fatigue report for a person: classic baseline and corral side by side, then by category."""
    from corral.fatigue.stats import fatigue_lines

    summary = report.summary()
    mode = (
        "dry run (classic baseline only; nothing ran)"
        if report.dry_run
        else f"--on-violation {report.on_violation}"
    )
    out = [f"replayed {report.workload} in {report.project} ({mode}, {report.seconds:.1f} s)", ""]
    lines = fatigue_lines(summary)
    if report.dry_run:
        lines = [line for line in lines if not line.startswith(("corral asked", "reduction"))]
    out += lines
    if not report.dry_run:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.asked_by_kind.items())) or "-"
        out.append(f"asked by kind                {kinds}")
    out += ["", f"  {'category':<12} {'commands':>8} {'classic':>8} {'corral':>8}"]
    for category, row in report.by_category().items():
        corral = "-" if report.dry_run else str(row["corral"])
        out.append(f"  {category:<12} {row['commands']:>8} {row['classic']:>8} {corral:>8}")
    errors = report.errors()
    if errors:
        out += ["", f"{len(errors)} line(s) not run:"]
        out += [f"  {report.workload}:{r.line.number}: {r.error}" for r in errors]
    if report.session_id is not None:
        out += ["", f"recorded as session #{report.session_id}: `corral stats` shows the same numbers"]
    return "\n".join(out) + "\n"


def progress_bar(stream: IO[str]) -> Iterator[ProgressCallback]:
    """A one-line `\\r` progress bar on `stream` (a terminal); yields the callback, then ends the line."""
    width = 30
    stream = raw_stream(stream)  # corral's own `\r`, not untrusted text: it must reach the terminal

    def show(done: int, total: int, prompts: int) -> None:
        filled = width * done // total if total else width
        bar = "#" * filled + "." * (width - filled)
        stream.write(f"\r[{bar}] {done}/{total} commands, {prompts} prompts")
        stream.flush()

    yield show
    stream.write("\n")
    stream.flush()


def stderr_is_terminal() -> bool:
    """True when a progress bar makes sense."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
