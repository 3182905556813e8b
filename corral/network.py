"""The sandbox's network: corral's egress proxy, answered by the session's host rules and prompts.

`NetworkGate` is the `NetworkHook` the sandbox runner calls with the sandbox's first pid: it opens a
listener inside the sandbox's empty network namespace and serves it with an `EgressProxy` whose
`decide(host, port)` asks, in order: the host policy (user config, presets, `--allow-host`, a trusted
project's hosts; deny beats allow), then the session's escalation (project rules, session memory, the
person). Any error on that path is a denial. Every refused destination becomes a `net` violation of
the command that made it.

One deadline, set by the core: a new host is decided within `decide_timeout_s` (the user's
`prompts.timeout_s`). The escalator gets the deadline and gives up at it, dismissing the prompt, so a
late answer can never store a rule for a connection that was already refused; the proxy itself waits a
little longer (`PROXY_GRACE_S`), so it always hears the core's answer and never gives up first.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from boundary.hosts import IPAddress, format_authority, ip_of
from boundary.violations import Violation, ViolationKind
from corral.command import Command
from corral.decision import Decision
from corral.escalation import Escalator
from corral.interceptor import Interceptor
from sandbox.egress.environment import DEFAULT_PROXY_PORT, proxy_environment
from sandbox.egress.hostpolicy import HostDecision, HostPolicy
from sandbox.egress.netns import open_listener_in
from sandbox.fdwait import readable
from sandbox.policy import NetworkAccess

if TYPE_CHECKING:
    from corral.sshagent import SshAgentBridge
    from sandbox.egress.brokersession import BrokerSession
    from sandbox.egress.credentials import BrokeredCredential
    from sandbox.egress.proxy import EgressProxy, ProxyTimeouts

Resolver = Callable[[str, int], Sequence[tuple[str, int]]]
"""Name resolution for the proxy (the system's by default; tests map names to local servers)."""

AskHost = Callable[[Violation, float], Decision]
"""Asks the session about one `net` violation (rules, memory, the person) before the deadline (a
`time.monotonic()` value); anything but an allowing `Decision` is a denial."""

PROXY_GRACE_S = 5.0
"""How much longer than the core's deadline the proxy holds a connection waiting for the answer."""


class LiveDecisions:
    """Decides new hosts while a command runs: the session's escalator, shown the running command.

    The Session sets `command` before each run; the proxy's thread calls this with each new host.
    """

    def __init__(self, escalator: Escalator, workspace: Path) -> None:
        self._escalator = escalator
        self._workspace = workspace
        self.command: Command | None = None

    def __call__(self, violation: Violation, deadline: float) -> Decision:
        command = self.command
        return self._escalator.decide_one(
            command.text if command is not None else "",
            self._workspace,
            violation,
            command.description if command is not None else None,
            deadline=deadline,
        )


@dataclass
class NetworkGate:
    hosts: HostPolicy
    ask_host: AskHost
    resolver: Resolver | None = None
    decide_timeout_s: float = 300.0
    """The one deadline for a live host decision (the user's `prompts.timeout_s`)."""
    port: int = DEFAULT_PROXY_PORT
    rules_allow_address: Callable[[IPAddress], bool] | None = None
    """Whether the project's rules name an address (or a range holding it): `RuleStore.allows_address`."""
    violations: list[Violation] = field(default_factory=list)
    allowed: list[tuple[Violation, Decision]] = field(default_factory=list)
    broker: BrokerSession | None = None
    """The session's brokered credentials (TLS termination for their hosts), when the person mapped any."""
    brokered: dict[tuple[str, str], int] = field(default_factory=dict)
    """Requests sent with a brokered credential while the command ran: (host:port, credential) -> count."""
    lookups: list[str] = field(default_factory=list)
    """DNS questions the command asked (``name (TYPE)``), in order, each once."""
    ssh: SshAgentBridge | None = None
    """The ssh agent offered inside (`corral.sshagent`), when there is one to offer."""
    _reached: set[tuple[str, int]] = field(default_factory=set)
    _proxy: EgressProxy | None = None
    _listener: socket.socket | None = None
    _interceptor: Interceptor | None = None
    _waiter: threading.Thread | None = None
    _stop_r: int = -1
    _stop_w: int = -1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _allowed_literals: set[str] = field(default_factory=set)
    session_wide: bool = False
    """The commands run in one network namespace for the whole session (`sandbox.sessionns`): the
    listener is opened there once and kept open between commands (a server a command left running can
    use the proxy too), until `close`."""
    _attached_ns: int = 0

    @property
    def interceptor(self) -> Interceptor:
        """Interception of traffic that ignores the proxy, reported into this gate."""
        if self._interceptor is None:
            self._interceptor = Interceptor(self._on_lookup, self._on_refusal)
        return self._interceptor

    def access(self) -> NetworkAccess:
        env = proxy_environment(self.port)
        readable: list[Path] = []
        if self.ssh is not None:
            env.update(self.ssh.environment())
            readable.extend(self.ssh.readable())
        if self.broker is not None:
            env.update(self.broker.environment())
            readable.append(self.broker.directory)
        return NetworkAccess(proxy_env=env, readable=tuple(readable))

    def reached(self) -> list[tuple[str, int]]:
        """The destinations this gate allowed so far (host as decided, port): what ssh signs for."""
        with self._lock:
            return sorted(self._reached)

    def on_ssh_refusal(self, target: str, reason: str) -> None:
        """A signature the agent filter refused: a `net-credential` violation of the running command."""
        violation = Violation(ViolationKind.NET_CREDENTIAL, target, "ssh-sign", reason)
        with self._lock:
            if violation not in self.violations:
                self.violations.append(violation)

    def attach(self, child_pid: int) -> None:
        """Open the listener inside the sandbox. The proxy itself (and its HTTP parser) is loaded only
        when the first connection arrives: commands that never touch the network never pay for it."""
        namespace = os.stat(f"/proc/{child_pid}/ns/net").st_ino
        if self.session_wide and namespace == self._attached_ns and self._serving():
            return  # the session's listener is already there
        self._shut()
        listener = open_listener_in(child_pid, self.port)
        self._attached_ns = namespace
        self._listener = listener
        self.interceptor.open(child_pid, self.port)  # traffic that ignores the proxy (corral.interceptor)
        self._wait_for_first_connection()

    def serve_on(self, listener: socket.socket) -> None:
        """Serve the proxy on `listener`: a backend with no network namespace (Landlock) opens it on the
        host's loopback, on a port of its own for the command. Loaded on its first connection, as `attach`;
        there is nothing to intercept (the backend refuses every other connection)."""
        self._shut()
        self._attached_ns = 0
        self._listener = listener
        self.interceptor.close()
        self._wait_for_first_connection()

    def _wait_for_first_connection(self) -> None:
        self._stop_r, self._stop_w = os.pipe()
        self._waiter = threading.Thread(
            target=self._start_on_first_connection, daemon=True, name="corral-egress-wait"
        )
        self._waiter.start()

    def _start_on_first_connection(self) -> None:
        listener = self._listener
        if listener is None:
            return
        if "sandbox.egress.proxy" not in sys.modules:
            # The first use in this process: load the proxy only when a connection needs it.
            ready = readable([listener.fileno(), *self.interceptor.fds(), self._stop_r], None)
            if self._stop_r in ready:
                return
        # else it costs nothing: serve at once, so the first connection waits for no start-up.
        try:
            from sandbox.egress.proxy import EgressProxy

            proxy = EgressProxy(
                self.decide,
                self.resolver,
                decide_now=self.decide_now,
                on_violation=self._on_refusal,
                is_address_allowed=self.allows_address,
                timeouts=self.proxy_timeouts(),
                tunnel_hook=(
                    self.broker.interceptor(self._on_foreign_credential, self._on_brokered)
                    if self.broker is not None
                    else None
                ),
            )
        except Exception:
            # Fail closed, and promptly: no proxy means the listener goes away (connections are refused
            # instead of waiting forever in its backlog).
            with self._lock:
                self._listener = None
            listener.close()
            return
        with self._lock:
            if self._listener is None:  # detached meanwhile
                proxy.close()
                return
            self._proxy = proxy
            self._listener = None
        proxy.serve(listener)
        self.interceptor.serve(proxy)

    def proxy_timeouts(self) -> ProxyTimeouts:
        """The proxy waits for a decision a little longer than the core's deadline, never less."""
        from sandbox.egress.proxy import ProxyTimeouts

        return ProxyTimeouts(decide=self.decide_timeout_s + PROXY_GRACE_S)

    def _serving(self) -> bool:
        with self._lock:
            return self._listener is not None or self._proxy is not None

    def detach(self) -> tuple[list[Violation], list[tuple[Violation, Decision]]]:
        """The command ended: close its proxy (cutting its connections; a session-wide one stays open);
        return (refused, allowed-by-prompt) since the last detach."""
        if not self.session_wide:
            self._shut()
        with self._lock:
            refused, self.violations = self.violations, []
            allowed, self.allowed = self.allowed, []
        return refused, allowed

    def close(self) -> None:
        """Close the listener and the proxy for good (the session ends); the broker's generated files
        go too (the CA key only ever lived in memory)."""
        try:
            self._shut()
        finally:
            if self.ssh is not None:
                self.ssh.close()
            if self.broker is not None:
                self.broker.close()

    def _shut(self) -> None:
        self._attached_ns = 0
        if self._stop_w >= 0:
            os.write(self._stop_w, b"x")
        if self._waiter is not None:
            self._waiter.join(timeout=5)
            self._waiter = None
        with self._lock:
            listener, self._listener = self._listener, None
            proxy, self._proxy = self._proxy, None
        self.interceptor.close()
        if listener is not None:
            listener.close()
        if proxy is not None:
            proxy.close()
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._stop_r = self._stop_w = -1

    def take_brokered(self) -> dict[tuple[str, str], int]:
        """The brokered requests counted since the last call (for the ledger)."""
        with self._lock:
            brokered, self.brokered = self.brokered, {}
        return brokered

    def decide_now(self, host: str, port: int) -> bool | None:
        """The proxy's static answer, on the connection's thread: the host policy's allow or deny;
        None when the session must be asked (`decide`)."""
        verdict = self.hosts.match(host)
        if verdict is HostDecision.ALLOW:
            with self._lock:
                self._reached.add((host, port))
            return True
        if verdict is HostDecision.DENY:
            return False
        return None

    def allows_address(self, address: IPAddress) -> bool:
        """An address is explicitly allowed by the host policy (config), the project's rules (an address
        or CIDR rule), or a person who was asked about that very address in this session."""
        if self.hosts.allows_address(address):
            return True
        with self._lock:
            if str(address) in self._allowed_literals:
                return True
        return self.rules_allow_address is not None and self.rules_allow_address(address)

    def decide(self, host: str, port: int) -> bool:
        """The proxy's `decide(host, port)`: the host policy, then the session, before the deadline."""
        try:
            static = self.decide_now(host, port)
            if static is not None:
                return static
            violation = Violation(ViolationKind.NET, format_authority(host, port), "connect", "new host")
            decision = self.ask_host(violation, time.monotonic() + self.decide_timeout_s)
            allowed = isinstance(decision, Decision) and decision.allows
        except Exception:
            return False  # Fail closed: an error while deciding is a denial.
        if allowed:
            with self._lock:
                self._reached.add((host, port))
                self.allowed.append((violation, decision))
                if ip_of(host) is not None:
                    self._allowed_literals.add(host)  # the person allowed this very address
        return allowed

    def take_lookups(self) -> list[str]:
        """The DNS questions of the last command (emptied)."""
        with self._lock:
            lookups, self.lookups = self.lookups, []
        return lookups

    def _on_lookup(self, name: str, qtype: str) -> None:
        entry = f"{name} ({qtype})"
        with self._lock:
            if entry not in self.lookups:
                self.lookups.append(entry)

    def _on_refusal(self, host: str, port: int, reason: str) -> None:
        violation = Violation(ViolationKind.NET, format_authority(host, port), "connect", reason)
        with self._lock:
            if violation not in self.violations:
                self.violations.append(violation)

    def _on_foreign_credential(self, host: str, port: int, reason: str) -> None:
        violation = Violation(ViolationKind.NET_CREDENTIAL, format_authority(host, port), "request", reason)
        with self._lock:
            if violation not in self.violations:
                self.violations.append(violation)

    def _on_brokered(self, host: str, port: int, credential: BrokeredCredential) -> None:
        key = (format_authority(host, port), credential.name)
        with self._lock:
            self.brokered[key] = self.brokered.get(key, 0) + 1


def preload_proxy() -> None:
    """Load the proxy in the background, for a live session: its commands' first connections then
    wait for no start-up (a one-off command keeps loading it only when a connection arrives)."""

    def load() -> None:
        with contextlib.suppress(Exception):
            import sandbox.egress.proxy  # noqa: F401

    threading.Thread(target=load, daemon=True, name="corral-egress-preload").start()
