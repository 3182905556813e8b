"""`corral mcp [DIR]`: an MCP server over stdio (the official `mcp` SDK) with one tool, `run_command`.

Any MCP client (Codex CLI, Gemini CLI, Cursor, Claude Code, …) gets a contained shell: each call runs
in the sandbox for the project the server was started in. When the project has a live session
(`corral shell` or `corral session`), the command joins it through the broker, exactly like `corral
run`: prompts go to the person there, session answers hold, the ledger names this process. Without a
live session, the server runs it in its own deny-only Session: every crossing no rule allows is
denied, and the result says why and how to start a session.

The result (structured content and the same JSON as text): `exit_status` (corral's: the command's own,
77 when a crossing was denied, 125 when the sandbox could not start, 127 not found), `stdout` and
`stderr` (UTF-8 with replacement, at most `MAX_OUTPUT` bytes each), `violations` with their decisions,
and `messages` (the lines `corral run` would print). `cwd` must resolve inside the project.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel

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


class Violation(BaseModel):
    """One boundary crossing and what was decided (`decision`: once, session, project or deny)."""

    kind: str
    target: str
    operation: str
    decision: str
    asked: bool


class CommandResult(BaseModel):
    """What one `run_command` call returns."""

    exit_status: int
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    violations: list[Violation]
    messages: list[str]
    session: str
    """`live` when the project's session ran it (prompts reached a person), `none` otherwise."""


class _Collector:
    def __init__(self) -> None:
        self.parts: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.truncated = False
        self.lock = threading.Lock()

    def __call__(self, stream: str, data: bytes) -> None:
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
        self, command: str, cwd: str | None, timeout_s: float | None, description: str | None
    ) -> CommandResult:
        where = self.resolve_cwd(cwd)
        request = protocol.RunRequest(
            text=command, cwd=str(where), description=description, timeout_s=timeout_s
        )
        protocol.validate_run(request.to_message())  # the same limits as the socket
        collected = _Collector()
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
    ) -> CommandResult:
        from corral.broker.execution import StreamedRun, outcome_messages
        from corral.escalation import OnViolation
        from corral.opening import open_session
        from corral.session import resolve_command, shell_argv
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
            argv = shell_argv(command)
            policy = session.policy(cwd)
            if resolve_command(argv, policy.env, policy.cwd) is None:
                return self._result(collected, EXIT_NOT_FOUND, None, {}, ["corral: shell not found"], "none")
            try:
                outcome = StreamedRun(session, collected).run(
                    argv, cwd=cwd, description=description, timeout_s=timeout_s
                )
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
    ) -> CommandResult:
        raw = report.get("violations", [])
        violations = [
            Violation(
                kind=str(v.get("kind", "")),
                target=str(v.get("target", "")),
                operation=str(v.get("operation", "")),
                decision=str(v.get("decision", "deny")),
                asked=bool(v.get("asked", False)),
            )
            for v in (raw if isinstance(raw, list) else [])
            if isinstance(v, dict)
        ]
        return CommandResult(
            exit_status=status,
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


def build_server(runner: CommandRunner) -> Any:
    """The MCP server with its `run_command` tool."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(
        "corral",
        instructions=(
            "run_command runs a shell command sandboxed in the project "
            f"{runner.workspace}: the workspace is writable, the rest of the disk read-only, "
            "credentials hidden, network only through corral's proxy; crossings are asked in the "
            "person's corral session or denied."
        ),
    )

    @server.tool(
        description=(
            "Run a shell command (bash -c) sandboxed in the project. Returns exit_status, stdout, "
            "stderr and the boundary violations with their decisions."
        )
    )
    async def run_command(
        command: str, cwd: str | None = None, timeout_s: float | None = None, description: str | None = None
    ) -> CommandResult:
        try:
            return await anyio.to_thread.run_sync(runner.run, command, cwd, timeout_s, description)
        except (ValueError, protocol.ProtocolError) as error:  # a bad argument: nothing ran
            raise ToolError(str(error)) from error

    return server


def serve(workspace: Path) -> int:
    runner = CommandRunner(workspace, Locations.default())
    try:
        build_server(runner).run("stdio")
    finally:
        runner.close()
    return 0
