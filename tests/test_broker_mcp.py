"""`corral mcp` end to end with the official SDK's own stdio client: the server is the real `corral
mcp` process, commands run in the real sandbox. Without a live session a crossing is denied with the
reason in the result; with one, the prompt is answered in that session and the answer comes back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from corral.broker.server import BrokerServer, SessionHost
from corral.decision import Decision, PromptRequest, Scope
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import compose_session
from tests.conftest import CORRAL


@pytest.fixture
def workspace(isolated_home: Path) -> Path:
    ws = isolated_home / "project"
    (ws / "sub").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    return ws


def _call(workspace: Path, calls: list[dict[str, Any]]) -> list[tuple[bool, dict[str, Any]]]:
    """Start `corral mcp WORKSPACE` with the SDK's stdio client and call run_command for each."""

    async def session() -> list[tuple[bool, dict[str, Any]]]:
        params = StdioServerParameters(command=CORRAL, args=["mcp", str(workspace)], env=dict(os.environ))
        results: list[tuple[bool, dict[str, Any]]] = []
        async with stdio_client(params) as (read, write), ClientSession(read, write) as mcp:
            await mcp.initialize()
            tools = await mcp.list_tools()
            assert [tool.name for tool in tools.tools] == ["run_command"]
            schema = tools.tools[0].input_schema
            assert set(schema["properties"]) == {"command", "cwd", "timeout_s", "description"}
            for arguments in calls:
                result = await mcp.call_tool("run_command", arguments)
                text = "".join(getattr(block, "text", "") for block in result.content)
                if result.is_error:
                    results.append((True, {"error": text}))
                    continue
                structured = result.structured_content
                assert isinstance(structured, dict)
                assert json.loads(text) == structured
                results.append((False, structured))
        return results

    return anyio.run(session)


def test_without_a_session_crossings_are_denied_with_the_reason(workspace: Path, isolated_home: Path) -> None:
    results = _call(
        workspace,
        [
            {"command": "echo hi; echo oops >&2; touch ~/x; pwd", "cwd": "sub", "description": "greets"},
            {"command": "exit 5"},
            {"command": "sleep 30", "timeout_s": 0.5},
            {"command": "true", "cwd": "/etc"},
        ],
    )
    (error1, first), (error2, second), (error3, third), (error4, fourth) = results
    assert not error1
    assert first["exit_status"] == 77
    assert first["stdout"] == f"hi\n{workspace}/sub\n"
    assert first["stderr"] == "oops\n"
    assert first["session"] == "none"
    assert first["violations"] == [
        {
            "kind": "fs-write",
            "target": str(isolated_home / "x"),
            "operation": "create",
            "decision": "deny",
            "asked": False,
        }
    ]
    assert any("no live corral session" in line for line in first["messages"])
    assert not (isolated_home / "x").exists()
    assert not error2 and second["exit_status"] == 5 and second["violations"] == []
    assert not error3 and third["exit_status"] != 0 and "timed out" in third["stderr"]
    assert error4 and "outside the project" in fourth["error"]


class Person:
    def __init__(self) -> None:
        self.requests: list[PromptRequest] = []

    def __call__(self, request: PromptRequest) -> Decision:
        self.requests.append(request)
        return Decision(Scope.SESSION)


def test_a_prompt_is_answered_in_the_running_session(workspace: Path, isolated_home: Path) -> None:
    locations = Locations.default()
    person = Person()
    session = compose_session(
        workspace, locations=locations, ask=person, frontend="test", on_violation=OnViolation.ASK
    )
    server = BrokerServer(
        workspace,
        locations.runtime_dir,
        SessionHost(lambda: session),
        frontend="test",
        ledger_path=locations.ledger_path,
    )
    with server:
        results = _call(
            workspace,
            [
                {"command": "touch ~/x && echo made", "description": "makes a marker"},
                {"command": "echo again >> ~/x"},
            ],
        )
    session.close()
    (_e1, first), (_e2, second) = results
    assert first["session"] == "live"
    assert first["exit_status"] == 0 and first["stdout"] == "made\n"
    assert first["violations"][0]["decision"] == "session" and first["violations"][0]["asked"] is True
    assert second["exit_status"] == 0 and second["violations"][0]["asked"] is False
    assert (isolated_home / "x").read_text() == "again\n"
    assert len(person.requests) == 1
    assert person.requests[0].command == "touch ~/x && echo made"
    assert person.requests[0].description == "makes a marker"
