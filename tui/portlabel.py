"""Which ports a "this port only" project rule would name, shared by both front ends' prompts."""

from __future__ import annotations

from boundary.violations import ViolationKind
from corral.decision import PromptRequest


def one_port_label(request: PromptRequest) -> str:
    """For a prompt about hosts only: the ports a one-port rule would name ("port 22"), else "" (a
    prompt that is not only about hosts has no such choice)."""
    if not request.violations or any(v.kind is not ViolationKind.NET for v in request.violations):
        return ""
    ports = sorted({v.target.rpartition(":")[2] for v in request.violations}, key=lambda p: (len(p), p))
    return ("port " if len(ports) == 1 else "ports ") + ", ".join(ports)
