"""One command for a project from a process that is not a front end (`corral mcp`, `corral-claude`):
through the project's live session when there is one, else in this process's own deny-only Session.

With a live session the command joins it through the broker exactly like `corral run` (prompts go to
the person there, session answers hold, the ledger names this process). Without one, every crossing
no rule allows is denied and the messages say so and how to start a session. Output goes to a sink
as it arrives, or is collected (at most `MAX_OUTPUT` bytes per stream). `cwd` must resolve inside the
project. The sandbox machinery is imported only on the deny-only path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.broker import client, protocol
from corral.broker.address import AddressError
from corral.locations import Locations

MAX_OUTPUT = 1 << 20
EXIT_NOT_FOUND = 127
EXIT_SETUP_FAILED = 125
NO_SESSION_NOTE = (
    "no live corral session for this project: crossings were denied without asking; to have them"
    " asked, the person runs `corral session {workspace}` (or `corral shell`)"
)

Sink = Callable[[str, bytes], None]


@dataclass
class Ran:
    """What one command did: corral's status, the command's own exit code, output, decisions."""

    status: int
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    violations: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    session: str = "none"
    """`live` when the project's session ran it (prompts reached a person), `none` otherwise."""


class _Collector:
    def __init__(self, sink: Sink | None = None) -> None:
        self.sink = sink
        self.parts: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.truncated = False
        self.lock = threading.Lock()

    def __call__(self, stream: str, data: bytes) -> None:
        if self.sink is not None:
            self.sink(stream, data)
            return
        with self.lock:
            buffer = self.parts[stream]
            room = MAX_OUTPUT - len(buffer)
            if len(data) > room:
                self.truncated = True
            buffer.extend(data[: max(room, 0)])

    def text(self, stream: str) -> str:
        return bytes(self.parts[stream]).decode("utf-8", "replace")


class CommandRunner:
    """Runs tool calls for one project: through its live session when there is one."""

    def __init__(self, workspace: Path, locations: Locations) -> None:
        self.workspace = Path(os.path.realpath(workspace))
        self.locations = locations
        self._lock = threading.Lock()
        self._own: Any = None  # the deny-only Session, opened on first need

    def resolve_cwd(self, cwd: str | None) -> Path:
        if cwd is None:
            return self.workspace
        candidate = Path(os.path.realpath(self.workspace / os.path.expanduser(cwd)))
        if candidate != self.workspace and self.workspace not in candidate.parents:
            raise ValueError(f"cwd {cwd!r} is outside the project {self.workspace}")
        if not candidate.is_dir():
            raise ValueError(f"cwd {cwd!r} is not a directory")
        return candidate

    def run(
        self,
        command: str,
        cwd: str | None,
        timeout_s: float | None,
        description: str | None,
        sink: Sink | None = None,
    ) -> Ran:
        where = self.resolve_cwd(cwd)
        request = protocol.RunRequest(
            text=command, cwd=str(where), description=description, timeout_s=timeout_s
        )
        protocol.validate_run(request.to_message())  # the same limits as the socket
        collected = _Collector(sink)
        try:
            sock = client.connect(self.locations.runtime_dir, self.workspace)
        except (AddressError, OSError) as error:
            sock = None
            collected("stderr", f"corral: not joining the live session: {error}\n".encode())
        if sock is not None:
            try:
                result = client.run(sock, request, on_output=collected)
            except client.BrokerError as error:
                return self._result(collected, error.status, None, {}, [f"corral: {error}"], "live")
            return self._result(
                collected, result.status, result.exit_code, result.report, result.messages, "live"
            )
        return self._run_own(command, where, timeout_s, description, collected)

    def _run_own(
        self, command: str, cwd: Path, timeout_s: float | None, description: str | None, collected: _Collector
    ) -> Ran:
        from corral.broker.execution import StreamedRun, outcome_messages
        from corral.command import Command
        from corral.escalation import OnViolation
        from corral.opening import open_session
        from corral.session import resolve_command
        from sandbox.bwrap import SandboxSetupError

        note = NO_SESSION_NOTE.format(workspace=self.workspace)
        with self._lock:
            if self._own is None:
                self._own, _warnings = open_session(
                    self.workspace,
                    self.locations,
                    ask=None,
                    frontend="mcp",
                    on_violation=OnViolation.DENY,
                )
            session = self._own
            run = Command.from_shell(command, description)
            policy = session.policy(cwd)
            if resolve_command(run.argv, policy.env, policy.cwd) is None:
                return self._result(collected, EXIT_NOT_FOUND, None, {}, ["corral: shell not found"], "none")
            try:
                outcome = StreamedRun(session, collected).run(run, cwd=cwd, timeout_s=timeout_s)
            except SandboxSetupError as error:
                message = f"corral: the sandbox could not start, so nothing ran: {error}"
                return self._result(collected, EXIT_SETUP_FAILED, None, {}, [message], "none")
            messages = outcome_messages(self.workspace, outcome)
            if outcome.denied:
                messages.append(f"corral: {note}")
            return self._result(
                collected, outcome.status & 0xFF, outcome.exit_code, outcome.report(), messages, "none"
            )

    def _result(
        self,
        collected: _Collector,
        status: int,
        exit_code: int | None,
        report: dict[str, Any],
        messages: list[str],
        session: str,
    ) -> Ran:
        raw = report.get("violations", [])
        violations = [
            {
                "kind": str(v.get("kind", "")),
                "target": str(v.get("target", "")),
                "operation": str(v.get("operation", "")),
                "decision": str(v.get("decision", "deny")),
                "asked": bool(v.get("asked", False)),
            }
            for v in (raw if isinstance(raw, list) else [])
            if isinstance(v, dict)
        ]
        return Ran(
            status=status,
            exit_code=exit_code,
            stdout=collected.text("stdout"),
            stderr=collected.text("stderr"),
            truncated=collected.truncated,
            violations=violations,
            messages=messages,
            session=session,
        )

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = None
