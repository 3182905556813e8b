"""Runs one command in a real corral session as whoever runs this script, for the transparent-path tests.

The tests run it as root and as the unprivileged test user (`actor` fixture), so the real bubblewrap,
the real netns helper and the real nft rules are exercised as both. Names map to local servers with
`static_resolver` (nothing reaches the internet). Input: one JSON argument; output: one JSON line.

    {"workspace": "...", "allow": [...], "names": {"db.example": ["127.0.0.1", 4242]},
     "script": "sh text", "answer": "deny" | "once" | "session" | "project" | "project-port" | "none"}
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from boundary.violations import Violation
from corral.command import Command
from corral.decision import Decision, PromptAnswer, PromptRequest, Scope
from corral.denials import denial_lines
from corral.escalation import OnViolation
from corral.locations import Locations
from corral.opening import compose_session
from corral.session import Session
from sandbox.egress.hostpolicy import HostPolicy
from sandbox.egress.proxy import static_resolver
from sandbox.runner import StdioSpec

ANSWERS = {
    "deny": Decision(Scope.DENY),
    "once": Decision(Scope.ONCE),
    "session": Decision(Scope.SESSION),
    "project": Decision(Scope.PROJECT),
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    workspace = Path(spec["workspace"])
    asked: list[dict[str, str]] = []
    answer_name = spec.get("answer", "none")

    def ask(request: PromptRequest) -> PromptAnswer:
        for violation in request.violations:
            asked.append(
                {
                    "target": violation.target,
                    "detail": violation.detail,
                    "reason": request.reasons.get(violation.target, ""),
                }
            )
        if answer_name == "project-port":
            return Decision(Scope.PROJECT, one_port=True)
        return ANSWERS[answer_name]

    names = {name: (address, int(port)) for name, (address, port) in spec.get("names", {}).items()}
    session = compose_session(
        workspace,
        locations=Locations.default(),
        hosts=HostPolicy.from_config(source="test", allow=spec.get("allow", [])),
        resolver=static_resolver(names),
        ask=None if answer_name == "none" else ask,
        on_violation=OnViolation.DENY if answer_name == "none" else OnViolation.ASK,
        ask_timeout_s=30.0,
    )
    scripts = spec["scripts"] if "scripts" in spec else [spec["script"]]
    results = []
    try:
        for script in scripts:
            results.append(_run_one(session, workspace, script, asked))
    finally:
        session.close()
    print(json.dumps(results[0] if "script" in spec else {"runs": results}))


def _run_one(
    session: Session, workspace: Path, script: str, asked: list[dict[str, str]]
) -> dict[str, object]:
    out_path = workspace.parent / f"net-driver-{os.getpid()}.out"
    try:
        with out_path.open("wb") as handle:
            outcome = session.run(
                Command.from_argv(["/bin/sh", "-c", script]),
                stdio=StdioSpec(stdout=handle.fileno(), stderr=handle.fileno()),
            )
        output = out_path.read_text(errors="replace")
    finally:
        out_path.unlink(missing_ok=True)
    decisions: dict[Violation, Decision] = dict(outcome.decisions)
    return {
        "exit_code": outcome.exit_code,
        "status": outcome.status,
        "output": output,
        "report": outcome.report(),
        "asked": list(asked),
        "denials": denial_lines(workspace, decisions, cwd=str(workspace)),
    }


if __name__ == "__main__":
    main()
