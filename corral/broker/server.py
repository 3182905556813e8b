"""The owner's side of the broker: serve a project's live Session on its Unix socket.

`BrokerServer` binds the project's socket (see `corral.broker.address`), accepts connections on a
thread, and serves each on its own thread: check the peer's uid (SO_PEERCRED), read the hello and one
run request (`corral.broker.protocol`), run it in the Session through `SessionHost` (the same lock
the front end takes for its own commands, so the Session runs one command at a time), stream stdout
and stderr back as frames while it runs, and send the exit frame.

Escalations go wherever the Session's `ask` callback goes: the TUI's dialog, the line shell's inline
prompt, or the headless session's terminal. Session-scope answers and burst limits are the Session's
own, so they hold across every client of the session.

Fail closed: a client that disconnects or sends `cancel` has its command killed (SIGTERM, then SIGKILL
after a grace period); a command that never started is never started. What the killed command crossed
is still decided by the Session (asked or denied), never applied without a decision. A malformed,
oversized or unexpected message gets one `error` frame and closes that connection only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from corral.broker import address, protocol
from corral.broker.address import AddressError, Peer
from corral.broker.execution import Cancelled, StreamedRun, outcome_messages
from corral.command import Command
from corral.session import CommandOutcome, Session, resolve_command
from sandbox.bwrap import SandboxSetupError
from sandbox.runner import EXIT_SETUP_FAILED

EXIT_NOT_FOUND = 127
HELLO_TIMEOUT_S = 10.0


class BrokerObserver(Protocol):
    """What a front end may show about agent commands (called on the connection's thread)."""

    def command_started(self, peer: Peer, text: str) -> object: ...

    def command_finished(self, token: object, outcome: CommandOutcome | None, error: str | None) -> None: ...


@dataclass
class SessionHost:
    """The live Session and the lock every command of it runs under (front end and broker alike).

    `current` returns the Session now (the TUI replaces its Session after a trust decision).
    """

    current: Callable[[], Session | None]
    lock: threading.Lock = field(default_factory=threading.Lock)


class AlreadyServed(RuntimeError):
    """Another live session already owns this project."""


class BrokerServer:
    """Listens on the project's socket and runs agents' commands in the live Session."""

    def __init__(
        self,
        workspace: Path,
        runtime_dir: Path,
        host: SessionHost,
        *,
        frontend: str,
        observer: BrokerObserver | None = None,
        ledger_path: Path | None = None,
    ) -> None:
        self.workspace = Path(os.path.realpath(workspace))
        self.runtime_dir = runtime_dir
        self.host = host
        self.frontend = frontend
        self.observer = observer
        self.ledger_path = ledger_path
        self.socket_path = address.socket_path(runtime_dir, self.workspace)
        self._lock_fd: int | None = None
        self._listener: socket.socket | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifetime --------------------------------------------------------------------------------

    def start(self) -> None:
        """Take the project's lock and listen; AlreadyServed or AddressError when that cannot be."""
        import fcntl

        directory = address.sessions_dir(self.runtime_dir)
        address.ensure_private_dir(directory)
        lock_fd = os.open(
            address.lock_path(self.runtime_dir, self.workspace),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
            0o600,
        )
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(lock_fd)
            raise AlreadyServed(f"a corral session is already running for {self.workspace}") from error
        try:
            if len(os.fsencode(self.socket_path)) > address.MAX_SOCKET_PATH:
                raise AddressError(f"{self.socket_path}: too long for a Unix socket")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)  # stale: its owner no longer holds the lock
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            old_umask = os.umask(0o177)
            try:
                listener.bind(os.fspath(self.socket_path))
            finally:
                os.umask(old_umask)
            os.chmod(self.socket_path, 0o600)
            listener.listen(64)
        except BaseException:
            os.close(lock_fd)
            raise
        os.ftruncate(lock_fd, 0)
        os.write(lock_fd, f"{os.getpid()}\n".encode())
        self._lock_fd = lock_fd
        self._listener = listener
        session = self.host.current()
        if session is not None:
            session.place.prepare_soon()  # the session's keeper and /tmp, before the first command
        self._thread = threading.Thread(target=self._accept_loop, name="corral-broker", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening and remove the socket (running commands finish on their own threads)."""
        self._closed.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> BrokerServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        listener = self._listener
        while listener is not None and not self._closed.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                if self._closed.is_set():
                    return
                time.sleep(0.05)
                continue
            threading.Thread(
                target=self._serve_safely, args=(connection,), name="corral-broker-client", daemon=True
            ).start()

    # --- one connection ----------------------------------------------------------------------------

    def _serve_safely(self, connection: socket.socket) -> None:
        with connection:
            try:
                _Connection(self, connection).serve()
            except Exception:  # noqa: S110 - one client's failure never harms the session
                pass

    def record_agent(self, peer: Peer, session: Session, after_id: int) -> None:
        """Note in the ledger which process asked for the commands recorded since `after_id`."""
        if self.ledger_path is None or session.session_id is None:
            return
        with contextlib.closing(sqlite3.connect(self.ledger_path, timeout=30)) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS command_agents (command_id INTEGER PRIMARY KEY,"
                " pid INTEGER NOT NULL, uid INTEGER NOT NULL, exe TEXT NOT NULL, cmdline TEXT NOT NULL,"
                " parent_pid INTEGER NOT NULL, parent_exe TEXT NOT NULL, parent_cmdline TEXT NOT NULL)"
            )
            rows = db.execute(
                "SELECT id FROM commands WHERE session_id = ? AND id > ?", (session.session_id, after_id)
            ).fetchall()
            db.executemany(
                "INSERT OR REPLACE INTO command_agents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        int(row[0]),
                        peer.pid,
                        peer.uid,
                        peer.exe,
                        peer.cmdline,
                        peer.parent_pid,
                        peer.parent_exe,
                        peer.parent_cmdline,
                    )
                    for row in rows
                ],
            )
            db.commit()

    def last_command_id(self, session: Session) -> int:
        if self.ledger_path is None or session.session_id is None:
            return 0
        try:
            with contextlib.closing(sqlite3.connect(self.ledger_path, timeout=30)) as db:
                row = db.execute("SELECT COALESCE(MAX(id), 0) FROM commands").fetchone()
        except sqlite3.Error:
            return 0
        return int(row[0])


class _Connection:
    """One client: hello, one run request, output frames, one exit frame."""

    def __init__(self, server: BrokerServer, connection: socket.socket) -> None:
        self.server = server
        self.sock = connection
        self.reader = protocol.LineReader(connection)
        self.send_lock = threading.Lock()
        self.cancelled = threading.Event()
        self.current_run: StreamedRun | None = None
        self.gone = False

    def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message)
        with self.send_lock:
            if self.gone:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.gone = True
                self.cancel()

    def refuse(self, text: str, status: int = 2) -> None:
        self.send({"type": "error", "message": text, "status": status})

    def serve(self) -> None:
        _pid, uid, _gid = address.peer_credentials(self.sock)
        if uid != os.getuid():
            return  # another user's process: not one word (their socket mode should stop them first)
        peer = address.describe_peer(self.sock)
        self.sock.settimeout(HELLO_TIMEOUT_S)
        try:
            hello = self.reader.read_message()
            if hello is None:
                return
            protocol.validate_hello(hello)
            self.send(
                {
                    "type": "hello",
                    "version": protocol.VERSION,
                    "project": str(self.server.workspace),
                    "frontend": self.server.frontend,
                }
            )
            message = self.reader.read_message()
            if message is None:
                return
            request = protocol.validate_run(message)
        except TimeoutError:
            self.refuse("no request in time")
            return
        except protocol.ProtocolError as error:
            self.refuse(str(error))
            return
        self.sock.settimeout(None)
        watcher = threading.Thread(target=self._watch, name="corral-broker-watch", daemon=True)
        watcher.start()
        self._run(peer, request)

    def _watch(self) -> None:
        """After the request: anything but more input is a cancel; end of input is the client gone."""
        try:
            while True:
                message = self.reader.read_message()
                if message is None or message.get("type") == "cancel":
                    break
        except (OSError, protocol.ProtocolError):
            pass
        self.cancel()

    def cancel(self) -> None:
        self.cancelled.set()
        run = self.current_run
        if run is not None:
            run.cancel()

    def _run(self, peer: Peer, request: protocol.RunRequest) -> None:
        # The Command is built once, here at the edge: the text shown is the text the agent sent.
        if request.argv is not None:
            command = Command.from_argv(request.argv, request.description)
        else:
            command = Command.from_shell(request.text or "", request.description)
        with self.server.host.lock:
            if self.cancelled.is_set():
                return  # the client left while it waited: never start its command
            session = self.server.host.current()
            if session is None:
                self.refuse("the session is not ready", EXIT_SETUP_FAILED)
                return
            cwd = Path(request.cwd) if request.cwd is not None else session.workspace
            policy = session.policy(cwd)
            if resolve_command(command.argv, policy.env, policy.cwd) is None:
                self.refuse(f"{command.argv[0]}: command not found", EXIT_NOT_FOUND)
                return
            run = StreamedRun(session, lambda stream, data: self.send(protocol.stream_frame(stream, data)))
            self.current_run = run
            if self.cancelled.is_set():
                run.cancel()
            observer = self.server.observer
            text = command.text
            token: object = None
            if observer is not None:
                with contextlib.suppress(Exception):  # a front end that cannot show it changes nothing
                    token = observer.command_started(peer, text)
            before = self.server.last_command_id(session)
            outcome: CommandOutcome | None = None
            error: str | None = None
            try:
                outcome = run.run(command, cwd=cwd, timeout_s=request.timeout_s)
            except Cancelled:
                error = "cancelled before it started"
            except SandboxSetupError as failure:
                error = f"{failure.summary}: {failure}"
            except Exception as failure:
                error = f"the session could not run the command: {type(failure).__name__}: {failure}"
            finally:
                if observer is not None:
                    with contextlib.suppress(Exception):
                        observer.command_finished(token, outcome, error)
            if outcome is not None:
                with contextlib.suppress(Exception):  # the ledger never changes what the command did
                    self.server.record_agent(peer, session, before)
        if outcome is None:
            self.refuse(error or "nothing ran", EXIT_SETUP_FAILED)
            return
        self.send(
            {
                "type": "exit",
                "status": outcome.status & 0xFF,
                "exit_code": outcome.exit_code,
                "report": outcome.report(),
                "messages": outcome_messages(session.workspace, outcome),
            }
        )
