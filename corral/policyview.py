"""The effective policy as plain data, for `corral policy`, the report and the front ends' header.

`effective_policy` merges what a command actually gets: the defaults, the user's config (hosts,
presets), a trusted project's config (writable and hidden paths, hosts, environment, hooks), the
project's rules (hosts allowed, credential paths made readable) and the proxy variables. Its keys are
stable machine names (`EFFECTIVE_KEYS`; `schema` is bumped when they change); the prose lives only in
`render_effective`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corral.project import ProjectContext
from corral.rules import Rule
from corral.userconfig import UserConfig
from sandbox.backend import BackendTraits
from sandbox.egress.hostpolicy import PRESETS
from sandbox.policy import Policy

EFFECTIVE_SCHEMA = 2
EFFECTIVE_KEYS = (
    "schema",
    "workspace",
    "cwd",
    "home",
    "trust",
    "filesystem",
    "environment",
    "network",
    "hooks",
    "rules",
    "backend",
)
"""The top-level keys of `effective_policy`, in order."""


@dataclass(frozen=True, slots=True)
class PolicySources:
    """What was merged into the policy besides the defaults."""

    project: ProjectContext | None
    user: UserConfig
    rules: Sequence[Rule]
    cache_layer: Path | None = None
    """Where the caches' writes are kept on the host (`corral cache path`)."""
    allow_hosts: Sequence[str] = ()
    backend: BackendTraits | None = None
    """The sandbox backend commands run under (None: not known, shown as bwrap)."""
    backend_reason: str = ""


def _paths(paths: Sequence[Path]) -> list[str]:
    return [str(path) for path in paths]


def _hosts(sources: PolicySources) -> list[dict[str, str]]:
    hosts = [{"host": host, "source": f"user:{sources.user.source}"} for host in sources.user.network_allow]
    for name in sources.user.network_presets:
        preset = PRESETS.get(name)
        hosts.extend({"host": host, "source": f"preset:{name}"} for host in (preset.hosts if preset else ()))
    config = sources.project.config if sources.project is not None else None
    if config is not None:
        hosts.extend({"host": host, "source": "project:.corral/config.toml"} for host in config.allowed_hosts)
    hosts.extend({"host": host, "source": "flag:--allow-host"} for host in sources.allow_hosts)
    hosts.extend(
        {"host": rule.target, "source": f"rule:{rule.id}"}
        for rule in sources.rules
        if rule.kind.value == "net"
    )
    return hosts


def _brokered(sources: PolicySources) -> list[dict[str, object]]:
    """Brokered hosts with the credential's name, header and source kind: never a value."""
    return [
        {
            "host": f"{host}:443",
            "credential": entry.name,
            "header": route.header,
            "scheme": route.scheme,
            "from": entry.source.partition(":")[0],
            "placeholders": list(entry.env),
            "source": f"user:{sources.user.source}",
        }
        for entry in sources.user.credentials
        for route in entry.routes
        for host in route.hosts
    ]


def effective_policy(policy: Policy, sources: PolicySources) -> dict[str, object]:
    """The merged policy with stable keys (see `EFFECTIVE_KEYS`)."""
    project = sources.project
    config = project.config if project is not None else None
    project_env = dict(config.env) if config is not None else {}
    proxy_env = dict(policy.network.proxy_env) if policy.network is not None else {}
    return {
        "schema": EFFECTIVE_SCHEMA,
        "workspace": str(policy.workspace),
        "cwd": str(policy.cwd),
        "home": str(policy.home),
        "trust": {
            "state": project.gate.state.value if project is not None else "untrusted",
            "config_loaded": config is not None,
        },
        "filesystem": {
            "default": "read-only",
            "workspace": {"path": str(policy.workspace), "access": "read-write", "applied": "after-command"},
            "captured": _paths(policy.capture_roots),
            "caches": _paths(policy.cache_dirs),
            "cache_layer": str(sources.cache_layer) if sources.cache_layer is not None else None,
            "homes": _paths(policy.homes),
            "readable": [str(p) for p in policy.readable if os.path.lexists(p)],
            "readable_when_present": [str(p) for p in policy.readable if not os.path.lexists(p)],
            "private_caches": _paths(policy.private_caches),
            "hidden": _paths(policy.hidden),
            "readable_by_rule": [rule.target for rule in sources.rules if rule.kind.value == "fs-read"],
            "blanked": _paths(policy.blanked),
            "protected_patterns": [
                ("/" if row.top else "") + row.pattern + ("/" if row.subtree else "")
                for row in policy.protected.rows
            ],
            "protected_paths": _paths(policy.protected_roots),
            "project_writable": _paths(policy.extra_writable),
            "project_writable_refused": _paths(policy.refused_writable),
            "private": ["/tmp", "/var/tmp"] if policy.private_tmp else [],
        },
        "environment": {
            "names": sorted(policy.env),
            "project": project_env,
            "proxy": proxy_env,
        },
        "network": {
            "mode": "proxy" if policy.network is not None else "none",
            "proxy": proxy_env.get("HTTP_PROXY"),
            "allow": _hosts(sources),
            "deny": [
                {"host": host, "source": f"user:{sources.user.source}"} for host in sources.user.network_deny
            ],
            "unknown_hosts": "ask" if policy.network is not None else "refused",
            "brokered": _brokered(sources),
            "ssh_agent": proxy_env.get("SSH_AUTH_SOCK"),
        },
        "hooks": {hook.event: hook.command for hook in (config.hooks if config is not None else ())},
        "rules": [rule.to_json() for rule in sources.rules],
        "backend": _backend(sources),
    }


def _backend(sources: PolicySources) -> dict[str, object]:
    traits = sources.backend
    if traits is None:
        return {"name": "bwrap", "reason": sources.backend_reason, "cannot": [], "captures_writes": True}
    return {
        "name": traits.name,
        "title": traits.title,
        "reason": sources.backend_reason,
        "enforces": traits.enforces,
        "cannot": list(traits.cannot),
        "captures_writes": traits.captures_writes,
    }


_TITLES = {
    "captured": "captured writes (asked before they are applied)",
    "caches": "tool-chain caches (per-project layer, never written back)",
    "homes": "homes (nothing in them is readable but the read allow-list)",
    "readable": "readable in the home (read allow-list, read-only; widen with [filesystem] readable)",
    "readable_when_present": "also readable once they exist",
    "private_caches": "private caches (start empty per project; the host's copy stays hidden)",
    "hidden": "hidden (empty stand-ins; reads reported)",
    "readable_by_rule": "readable by an fs-read rule",
    "blanked": "corral's own state (blank inside)",
    "protected_patterns": "protected in the workspace (any depth; a leading / only at the top)",
    "protected_paths": "protected paths",
    "project_writable": "writable by the project config",
    "project_writable_refused": "project writable paths refused (a symlink on the way)",
    "private": "private",
}


def render_effective(view: dict[str, object]) -> str:
    """The effective policy in words (the same facts as the JSON)."""
    lines: list[str] = []
    trust = view["trust"]
    files = view["filesystem"]
    env = view["environment"]
    network = view["network"]
    assert isinstance(trust, dict) and isinstance(files, dict) and isinstance(env, dict)
    assert isinstance(network, dict)
    loaded = "loaded" if trust["config_loaded"] else "not loaded"
    backend = view["backend"]
    captures = not isinstance(backend, dict) or backend.get("captures_writes", True)
    how = "applied after each command" if captures else "written directly: this backend captures nothing"
    lines.append(f"workspace: {view['workspace']} (read-write, {how})")
    lines.append(f"cwd: {view['cwd']}")
    lines.append(f"trust: {trust['state']} (project config {loaded})")
    lines.append("everything else: read-only")
    if files["cache_layer"]:
        lines.append(f"cache writes kept in: {files['cache_layer']} (corral cache path|clean)")
    for key, title in _TITLES.items():
        values = files[key]
        assert isinstance(values, list)
        if values:
            lines.append(f"{title}:")
            lines.extend(f"  {value}" for value in values)
    lines.append(f"environment (names passed): {', '.join(env['names'])}")
    for name, value in {**env["project"], **env["proxy"]}.items():
        lines.append(f"  {name}={value}")
    if network["mode"] == "proxy":
        lines.append(f"network: through corral's proxy at {network['proxy']}; other hosts: ask")
    else:
        lines.append("network: none (empty namespace)")
    for title, key in (("allowed hosts", "allow"), ("denied hosts", "deny")):
        entries = network[key]
        assert isinstance(entries, list)
        if entries:
            lines.append(f"{title}:")
            lines.extend(f"  {entry['host']}  ({entry['source']})" for entry in entries)
    brokered = network.get("brokered", [])
    assert isinstance(brokered, list)
    if brokered:
        lines.append(
            "brokered credentials (placeholders inside; corral's proxy adds the secret, TLS terminated):"
        )
        lines.extend(
            f"  {entry['host']}  {entry['credential']} in {entry['header']} ({entry['scheme']}; from {entry['from']})"
            for entry in brokered
        )
    if network.get("ssh_agent"):
        lines.append(
            f"ssh agent: SSH_AUTH_SOCK={network['ssh_agent']} inside (ssh.agent); corral's filter signs only "
            "for hosts commands were allowed to reach whose key is in your known_hosts; your keys stay outside"
        )
    hooks = view["hooks"]
    assert isinstance(hooks, dict)
    if hooks:
        lines.append("hooks (run inside the sandbox):")
        lines.extend(f"  {event}: {command}" for event, command in hooks.items())
    rules = view["rules"]
    assert isinstance(rules, list)
    lines.append(f"project rules: {len(rules)} (corral rules list --project {view['workspace']})")
    backend = view["backend"]
    assert isinstance(backend, dict)
    lines.append(f"backend: {backend.get('title', backend['name'])} ({backend['reason']})")
    cannot = backend["cannot"]
    assert isinstance(cannot, list)
    lines.extend(f"  cannot (compared with bwrap): {item}" for item in cannot)
    return "\n".join(lines) + "\n"


def one_line(policy: Policy) -> str:
    network = "proxy" if policy.network is not None else "off"
    return f"writable: {policy.workspace} · captured: {len(policy.capture_roots)} roots · network: {network}"
