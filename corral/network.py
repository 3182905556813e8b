"""The sandbox's network: corral's egress proxy, answered by the session's host rules and prompts.

`NetworkGate` is the `NetworkHook` the sandbox runner calls with the sandbox's first pid: it opens a
listener inside the sandbox's empty network namespace and serves it with an `EgressProxy` whose
`decide(host, port)` asks, in order: the host policy (user config, presets, `--allow-host`, a trusted
project's hosts; deny beats allow), then the session's escalation (project rules, session memory, the
person). Any error on that path is a denial. Every refused destination becomes a `net` violation of
the command that made it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.egress.environment import DEFAULT_PROXY_PORT, proxy_environment
from sandbox.egress.hostpolicy import HostDecision, HostPolicy
from sandbox.egress.hosts import format_authority
from sandbox.egress.netns import open_listener_in
from sandbox.egress.proxy import EgressProxy, Resolver
from sandbox.policy import NetworkAccess
from sandbox.report import Violation, ViolationKind

AskHost = Callable[[Violation], bool]
"""Asks the session about one `net` violation (rules, memory, the person); True only to allow."""


@dataclass
class NetworkGate:
    hosts: HostPolicy
    ask_host: AskHost
    resolver: Resolver | None = None
    port: int = DEFAULT_PROXY_PORT
    violations: list[Violation] = field(default_factory=list)
    allowed: list[Violation] = field(default_factory=list)
    _proxy: EgressProxy | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def access(self) -> NetworkAccess:
        return NetworkAccess(proxy_env=proxy_environment(self.port))

    def attach(self, child_pid: int) -> None:
        listener = open_listener_in(child_pid, self.port)
        proxy = EgressProxy(
            self._decide,
            self.resolver,
            on_violation=self._on_refusal,
            is_address_allowed=self.hosts.allows_address,
        )
        proxy.serve(listener)
        self._proxy = proxy

    def detach(self) -> tuple[list[Violation], list[Violation]]:
        """Close the command's proxy (cutting its connections); return (refused, allowed-by-prompt)."""
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None
        with self._lock:
            refused, self.violations = self.violations, []
            allowed, self.allowed = self.allowed, []
        return refused, allowed

    def _decide(self, host: str, port: int) -> bool:
        try:
            verdict = self.hosts.match(host)
            if verdict is HostDecision.ALLOW:
                return True
            if verdict is HostDecision.DENY:
                return False
            violation = Violation(ViolationKind.NET, format_authority(host, port), "connect", "new host")
            allowed = self.ask_host(violation) is True
        except Exception:
            return False  # Fail closed: an error while deciding is a denial.
        if allowed:
            with self._lock:
                self.allowed.append(violation)
        return allowed

    def _on_refusal(self, host: str, port: int, reason: str) -> None:
        violation = Violation(ViolationKind.NET, format_authority(host, port), "connect", reason)
        with self._lock:
            if violation not in self.violations:
                self.violations.append(violation)
