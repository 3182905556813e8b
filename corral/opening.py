"""Open a Session for a workspace the one way every front end does it (`corral run`, both shells, the
broker and MCP server): the trust gate first, then the user's config and host policy.

This is also the one place a Session is composed (`compose_session`): the sandbox runner, the rules
store, the ledger and its recorder, the escalator and the network gate are built here and handed to
the Session, which builds none of them. So what a Session runs with is visible in one function, and a
test or a front end that needs a different part passes it here instead of reaching into a Session.

Raises `corral.errors.UsageError` for a config that cannot be used (one line naming the file and key)
and `corral.errors.StateError` when corral's own rules or ledger database is damaged.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from corral.backendchoice import BackendRequest, effective_request, open_backend
from corral.credentialmap import ResolvedCredentials, resolve_credentials
from corral.decision import AskCallback
from corral.errors import UsageError, state_error
from corral.escalation import BurstPolicy, Escalator, OnViolation
from corral.ledger import Ledger, LedgerError
from corral.locations import Locations
from corral.network import LiveDecisions, NetworkGate, Resolver
from corral.project import ConfigError, ProjectContext, open_project
from corral.recording import CommandRecorder
from corral.rules import RuleError, RuleStore
from corral.session import Session, SessionParts
from corral.session_memory import SessionMemory
from corral.userconfig import load_user_config
from sandbox.egress.environment import DEFAULT_PROXY_PORT
from sandbox.egress.hostpolicy import HostPolicy, PolicyError
from sandbox.limits import ResourceLimits
from sandbox.policy import NetworkAccess

if TYPE_CHECKING:
    import ssl  # a type only: the TLS module loads when a brokered host first needs it

    from corral.sshagent import TerminalTurn


def open_session(
    workspace: Path,
    locations: Locations,
    *,
    ask: AskCallback | None,
    frontend: str,
    on_violation: OnViolation = OnViolation.ASK,
    allow_hosts: Sequence[str] = (),
    project: ProjectContext | None = None,
    environ: Mapping[str, str] | None = None,
    session_start: bool = True,
    record: bool = True,
    burst: BurstPolicy | None = None,
    terminal_turn: TerminalTurn | None = None,
) -> tuple[Session, list[str]]:
    """The Session for `workspace`, and the warnings to show (e.g. user-content hosts allowed).

    `session_start=False` for a Session that is not a session (one standalone `corral run`): the
    project's `session_start` hook then never runs (see `Session.start`)."""
    try:
        if project is None:
            project = open_project(workspace, locations)
        user = load_user_config(locations.user_config_path)
        hosts = HostPolicy.from_config(
            source=user.source, allow=user.network_allow, deny=user.network_deny, presets=user.network_presets
        )
        if allow_hosts:
            hosts.extend(source="--allow-host", allow=allow_hosts, allow_key="--allow-host")
    except (ConfigError, PolicyError) as error:
        raise UsageError(str(error)) from error
    resolved = resolve_credentials(user.credentials, os.environ if environ is None else environ)
    notes: list[str] = []
    try:
        session = compose_session(
            workspace,
            locations=locations,
            ask=ask,
            frontend=frontend,
            on_violation=on_violation,
            ask_timeout_s=user.prompt_timeout_s,
            project=project,
            hosts=hosts,
            environ=environ,
            session_start=session_start,
            record=record,
            burst=burst,
            extra_readable=user.filesystem_readable,
            limits=user.resource_limits(),
            credentials=resolved,
            ssh_agent=user.ssh_agent,
            terminal_turn=terminal_turn,
            notes=notes,
            backend=effective_request(
                user.sandbox_backend, user.source, landlock_layer=user.sandbox_landlock_layer
            ),
        )
    except (LedgerError, RuleError, sqlite3.DatabaseError) as error:
        # corral's own state is damaged: refuse (nothing ran) and leave the file for the person to inspect.
        raise state_error(error) from error
    warning = session.backend.warning()
    return session, [*hosts.warnings, *([warning] if warning else []), *resolved.warnings, *notes]


def compose_session(
    workspace: Path,
    *,
    locations: Locations,
    ask: AskCallback | None = None,
    frontend: str = "cli",
    on_violation: OnViolation = OnViolation.DENY,
    ask_timeout_s: float = 300.0,
    environ: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    extra_writable: Sequence[Path] = (),
    extra_hidden: Sequence[Path] = (),
    network: NetworkAccess | None = None,
    record: bool = True,
    project: ProjectContext | None = None,
    hosts: HostPolicy | None = None,
    resolver: Resolver | None = None,
    session_start: bool = True,
    burst: BurstPolicy | None = None,
    proxy_port: int = DEFAULT_PROXY_PORT,
    extra_readable: Sequence[str] = (),
    limits: ResourceLimits | None = None,
    credentials: ResolvedCredentials | None = None,
    upstream_tls: ssl.SSLContext | None = None,
    backend: BackendRequest | None = None,
    ssh_agent: bool = False,
    terminal_turn: TerminalTurn | None = None,
    notes: list[str] | None = None,
) -> Session:
    """Build a Session's parts and the Session. `hosts` opens the network through corral's proxy (a
    trusted project's hosts are added to it); without it the network is `network` (closed by default).

    `ask` is the front end's callback (None: nobody to ask, so every crossing is denied unless a rule or
    this session already allowed it); `on_violation` DENY denies without asking even with a callback.
    `ask_timeout_s` is the one deadline for every prompt, the live host prompts included. `backend` is
    the sandbox backend asked for (default: `--backend` of this process, else `auto`); one that cannot
    run raises SetupError (exit 125) before anything is opened.
    `credentials` are brokered for their hosts (TLS terminated by the proxy, verified upstream with
    `upstream_tls` or the system CAs); they need the network open (`hosts`). `ssh_agent` offers the
    sandbox an ssh agent that signs only for allowed hosts (`corral.sshagent`; needs `hosts` too);
    `terminal_turn` lends it the person's terminal for a key's passphrase; why it is not offered, when
    asked for, is added to `notes`.
    """
    chosen = open_backend(
        backend if backend is not None else effective_request(None, ""),
        locations,
        workspace=workspace,
        limits=limits,
    )
    locations.ensure(locations.data_dir)
    rules = RuleStore.open(locations.rules_path)
    ledger = Ledger.open(locations.ledger_path) if record else None
    escalator = Escalator(
        rules,
        SessionMemory(),
        ask,
        timeout_s=ask_timeout_s,
        frontend_name=frontend,
        on_violation=on_violation,
        burst=burst,
    )
    live: LiveDecisions | None = None
    gate: NetworkGate | None = None
    if hosts is not None:
        config = project.config if project is not None else None
        if config is not None and config.allowed_hosts:
            hosts.extend(source=str(workspace / ".corral/config.toml"), allow=config.allowed_hosts)
        live = LiveDecisions(escalator, workspace)
        broker = None
        if credentials is not None and credentials.credentials:
            from sandbox.egress.brokersession import BrokerSession, own_bundles
            from sandbox.egress.credentials import CredentialBroker

            broker = BrokerSession(
                CredentialBroker(credentials.credentials),
                fixed_env=credentials.fixed_env,
                upstream_context=upstream_tls,
                own_bundles=own_bundles(os.environ if environ is None else environ),
            )
        gate = NetworkGate(
            hosts,
            live,
            resolver,
            decide_timeout_s=ask_timeout_s,
            port=proxy_port,
            rules_allow_address=functools.partial(rules.allows_address, workspace),
            broker=broker,
        )
        if ssh_agent:
            refused = _offer_ssh_agent(gate, chosen.backend, locations, environ, terminal_turn)
            if refused is not None and notes is not None:
                notes.append(f"ssh.agent is on, but no ssh agent is offered inside: {refused}")
    parts = SessionParts(
        runner=chosen.backend,
        backend=chosen,
        rules=rules,
        escalator=escalator,
        recorder=CommandRecorder(ledger, workspace, frontend),
        live=live,
        gate=gate,
    )
    return Session(
        workspace,
        locations=locations,
        parts=parts,
        frontend=frontend,
        environ=environ,
        extra_env=extra_env,
        extra_writable=extra_writable,
        extra_hidden=extra_hidden,
        network=network,
        project=project,
        session_start=session_start,
        extra_readable=extra_readable,
    )


def _offer_ssh_agent(
    gate: NetworkGate,
    runner: object,
    locations: Locations,
    environ: Mapping[str, str] | None,
    terminal_turn: TerminalTurn | None,
) -> str | None:
    """Offer the sandbox an ssh agent (`corral.sshagent`) when there is one to offer and the backend can
    hand it Unix sockets (bwrap's own filter; not gVisor's, Landlock's or Seatbelt's); else why not."""
    from sandbox.bwrap_backend import BwrapBackend
    from sandbox.seccomp import BWRAP_FILTER

    if not isinstance(runner, BwrapBackend) or runner.filter_profile != BWRAP_FILTER:
        return "the sandbox backend is not bwrap"
    if runner.mechanism().scope_argv:
        return "commands are bounded by a systemd-run scope, whose D-Bus call the agent's filter would take"
    from corral.sshagent import AGENT_PATH_INSIDE, SshAgentBridge
    from sandbox.unixgate import UnixGate, UnixGateUnavailable

    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    bridge = SshAgentBridge.offer(
        env,
        home,
        locations.runtime_dir,
        gate.reached,
        gate.on_ssh_refusal,
        terminal_turn=terminal_turn,
    )
    if bridge is None:
        return "no agent to offer (SSH_AUTH_SOCK is not set and ~/.ssh has no default key file)"
    try:
        runner.unix_gate = UnixGate(AGENT_PATH_INSIDE, bridge.serve)
    except UnixGateUnavailable as error:
        return str(error)
    gate.ssh = bridge
    return None
