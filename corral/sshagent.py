"""SSH without the key inside: the agent corral offers the sandbox, and the agent behind it.

Inside, `SSH_AUTH_SOCK` names `AGENT_PATH_INSIDE`; every Unix socket a sandboxed process creates is
connected to corral's agent filter (`sandbox.unixgate`), which speaks the agent protocol and forwards
only what it allows (`sandbox.sshagent`) to the real agent outside:

- the person's own agent, when corral's environment has `SSH_AUTH_SOCK`;
- else one corral starts on first use, `ssh-agent -D -a <private socket>`, loaded by `ssh-add` with the
  default key files of `~/.ssh` (which stay hidden from the sandbox). ssh-add asks for a passphrase on
  the person's terminal when the front end lends it (`TerminalTurn`: `corral run` on a terminal);
  otherwise a key that needs one is not loaded.

A signature is allowed for a host key that the person's known_hosts gives to a host this session's
commands reached through corral's network path with the network decision's allowance (rules, the
allow-list, an answered prompt): the host the person allowed. A refused one is a `net-credential`
violation of the command (`on_refusal`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sandbox.knownhosts import host_with_key, read_known_hosts
from sandbox.sshagent import AgentFilter

logger = logging.getLogger(__name__)

AGENT_PATH_INSIDE = "/run/corral/ssh-agent.sock"
"""`SSH_AUTH_SOCK` inside: no file is there; corral's supervisor answers every Unix socket."""
DEFAULT_KEY_NAMES = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_dsa")
"""ssh's default identity files, in its own order."""
KNOWN_HOSTS_NAMES = ("known_hosts", "known_hosts2")
AGENT_START_TIMEOUT_S = 10.0
SSH_ADD_TIMEOUT_S = 300.0

Reached = Callable[[], Iterable[tuple[str, int]]]
TerminalTurn = Callable[[Callable[[], None]], None]
"""Runs its argument while it may use the person's terminal (command input paused, output held)."""
OnRefusal = Callable[[str, str], None]


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _socket_file(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _open_terminal() -> int | None:
    """corral's controlling terminal, when it has one."""
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None


def _accepts(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


class SshAgentBridge:
    """The agent one session offers its sandbox (`offer` says whether there is one)."""

    def __init__(
        self,
        *,
        home: Path,
        user_agent: str | None,
        key_files: tuple[Path, ...],
        runtime_dir: Path,
        reached: Reached,
        on_refusal: OnRefusal,
        terminal_turn: TerminalTurn | None,
    ) -> None:
        self.home = home
        self._user_agent = user_agent
        self._key_files = key_files
        self._runtime_dir = runtime_dir
        self._reached = reached
        self._terminal_turn = terminal_turn
        self._lock = threading.Lock()
        self._own_agent: subprocess.Popen[bytes] | None = None
        self._own_dir: Path | None = None
        self._own_socket: str | None = None
        self.filter = AgentFilter(self._connect_upstream, self.host_for_key, on_refusal)

    @classmethod
    def offer(
        cls,
        environ: Mapping[str, str],
        home: Path,
        runtime_dir: Path,
        reached: Reached,
        on_refusal: OnRefusal,
        *,
        terminal_turn: TerminalTurn | None = None,
    ) -> SshAgentBridge | None:
        """The bridge when there is an agent to offer (the person's, or key files to start one with)."""
        user_agent = environ.get("SSH_AUTH_SOCK") or None
        if user_agent is not None and not _socket_file(user_agent):
            user_agent = None
        keys = tuple(
            home / ".ssh" / name for name in DEFAULT_KEY_NAMES if _regular_file(home / ".ssh" / name)
        )
        if user_agent is None and (not keys or shutil.which("ssh-agent") is None):
            return None
        return cls(
            home=home,
            user_agent=user_agent,
            key_files=keys,
            runtime_dir=runtime_dir,
            reached=reached,
            on_refusal=on_refusal,
            terminal_turn=terminal_turn,
        )

    def environment(self) -> dict[str, str]:
        return {"SSH_AUTH_SOCK": AGENT_PATH_INSIDE}

    def readable(self) -> tuple[Path, ...]:
        """The known_hosts files ssh inside needs to check the server (public keys, nothing secret)."""
        return tuple(path for name in KNOWN_HOSTS_NAMES if _regular_file(path := self.home / ".ssh" / name))

    def serve(self, client: socket.socket) -> None:
        self.filter.serve(client)

    def host_for_key(self, hostkey: bytes) -> str | None:
        paths = [self.home / ".ssh" / name for name in KNOWN_HOSTS_NAMES]
        return host_with_key(read_known_hosts(paths), hostkey, self._reached())

    def _connect_upstream(self) -> socket.socket:
        path = self._user_agent or self._start_own_agent()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.settimeout(30.0)
        try:
            upstream.connect(path)
        except OSError:
            upstream.close()
            raise
        return upstream

    def _start_own_agent(self) -> str:
        with self._lock:
            if (
                self._own_socket is not None
                and self._own_agent is not None
                and self._own_agent.poll() is None
            ):
                return self._own_socket
            self._stop_own_agent()
            agent = shutil.which("ssh-agent")
            adder = shutil.which("ssh-add")
            if agent is None or adder is None:
                raise OSError("ssh-agent or ssh-add is not installed")
            self._runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory = Path(tempfile.mkdtemp(prefix="ssh-agent-", dir=self._runtime_dir))
            path = str(directory / "agent.sock")
            process = subprocess.Popen(
                [agent, "-D", "-a", path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._own_agent, self._own_dir, self._own_socket = process, directory, path
            deadline = time.monotonic() + AGENT_START_TIMEOUT_S
            while not _accepts(path):  # bound before it listens: wait for a connection to succeed
                if process.poll() is not None or time.monotonic() > deadline:
                    self._stop_own_agent()
                    raise OSError("ssh-agent did not start")
                time.sleep(0.01)
            self._add_keys(adder, path)
            return path

    def _add_keys(self, adder: str, path: str) -> None:
        """ssh-add the key files into corral's agent: on the person's terminal when lent, else with no
        way to ask (a key that needs a passphrase is then left out)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_ASKPASS")}
        env["SSH_AUTH_SOCK"] = path
        turn = self._terminal_turn
        terminal = _open_terminal() if turn is not None else None
        if terminal is None:
            env.update(SSH_ASKPASS="/bin/false", SSH_ASKPASS_REQUIRE="force")

        def add() -> None:
            try:
                added = subprocess.run(
                    [adder, *map(str, self._key_files)],
                    stdin=terminal if terminal is not None else subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                    timeout=SSH_ADD_TIMEOUT_S,
                    check=False,
                )
                if added.returncode != 0:
                    logger.info("ssh-add: %s", added.stderr.decode(errors="replace").strip())
            except subprocess.TimeoutExpired:
                logger.info("ssh-add did not finish")

        try:
            if turn is not None and terminal is not None:
                turn(add)
            else:
                add()
        finally:
            if terminal is not None:
                os.close(terminal)

    def _stop_own_agent(self) -> None:
        process, self._own_agent = self._own_agent, None
        if process is not None:
            with contextlib.suppress(OSError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        directory, self._own_dir = self._own_dir, None
        self._own_socket = None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def close(self) -> None:
        """Stop the agent corral started (the person's own is theirs)."""
        with self._lock:
            self._stop_own_agent()
