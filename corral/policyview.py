"""A plain description of a `Policy` for `corral policy`, the report and the front ends' header."""

from __future__ import annotations

import os

from sandbox.policy import Policy


def policy_summary(policy: Policy) -> dict[str, object]:
    """The policy as plain data: every list the sandbox enforces, in the words of the docs."""
    return {
        "workspace (read-write, applied after each command)": str(policy.workspace),
        "cwd": str(policy.cwd),
        "read-only": "everything else",
        "captured writes (ask before applying)": [str(p) for p in policy.capture_roots],
        "tool-chain caches (per-project layer, never written back)": [str(p) for p in policy.cache_dirs],
        "homes (only the read allow-list shows through)": [str(p) for p in policy.homes],
        "readable in the home (read allow-list, read-only)": [
            str(p) for p in policy.readable if os.path.lexists(p)
        ],
        "readable in the home when present": [str(p) for p in policy.readable if not os.path.lexists(p)],
        "private caches (start empty, per project)": [str(p) for p in policy.private_caches],
        "hidden (reads reported)": [str(p) for p in policy.hidden],
        "corral's own state (blank inside)": [str(p) for p in policy.blanked],
        "protected in the workspace (any depth; `/…` only at the top)": [
            ("/" if row.top else "") + row.pattern + ("/" if row.subtree else "")
            for row in policy.protected.rows
        ]
        + [str(p) + "/" for p in policy.protected_roots],
        "writable paths refused (a symlink on the way)": [str(p) for p in policy.refused_writable],
        "private": ["/tmp", "/var/tmp"] if policy.private_tmp else [],
        "environment": sorted(policy.env),
        "network": "through corral's egress proxy"
        if policy.network is not None
        else "none (empty namespace)",
    }


def one_line(policy: Policy) -> str:
    network = "proxy" if policy.network is not None else "off"
    return f"writable: {policy.workspace} · captured: {len(policy.capture_roots)} roots · network: {network}"
