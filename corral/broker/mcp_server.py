"""`corral mcp [DIR]`: an MCP server over stdio (the official `mcp` SDK) with one tool, `run_command`.

Any MCP client (Codex CLI, Gemini CLI, Cursor, Claude Code, …) gets a contained shell: each call runs
in the sandbox for the project the server was started in. When the project has a live session
(`corral shell` or `corral session`), the command joins it through the broker, exactly like `corral
run`: prompts go to the person there, session answers hold, the ledger names this process. Without a
live session, the server runs it in its own deny-only Session: every crossing no rule allows is
denied, and the result says why and how to start a session.

The result (structured content and the same JSON as text): `exit_status` (corral's: the command's own,
77 when a crossing was denied, 125 when the sandbox could not start, 127 not found), `stdout` and
`stderr` (UTF-8 with replacement, at most 1 MiB each), `violations` with their decisions,
and `messages` (the lines `corral run` would print). `cwd` must resolve inside the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel

from corral.broker import protocol
from corral.broker.oneshot import CommandRunner, Ran
from corral.locations import Locations


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
            ran = await anyio.to_thread.run_sync(runner.run, command, cwd, timeout_s, description)
        except (ValueError, protocol.ProtocolError) as error:  # a bad argument: nothing ran
            raise ToolError(str(error)) from error
        return _result(ran)

    return server


def _result(ran: Ran) -> CommandResult:
    return CommandResult(
        exit_status=ran.status,
        exit_code=ran.exit_code,
        stdout=ran.stdout,
        stderr=ran.stderr,
        truncated=ran.truncated,
        violations=[Violation(**v) for v in ran.violations],
        messages=ran.messages,
        session=ran.session,
    )


def serve(workspace: Path) -> int:
    runner = CommandRunner(workspace, Locations.default())
    try:
        build_server(runner).run("stdio")
    finally:
        runner.close()
    return 0
