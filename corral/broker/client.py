"""The client side of the broker: what `corral run` does when the project has a live session.

It connects to the project's socket, says hello, sends one run request and relays the session's
stdout/stderr frames to its own descriptors as they arrive (through the terminal filter when one is a
terminal), then returns the exact status from the exit frame. SIGINT, SIGTERM or SIGHUP on this process
sends `cancel`: the session kills the command, and this process still waits for the exit frame.

Lean by design: only the standard library, `corral.broker.protocol`/`address` and `corral.termsafe`
are imported here — no Textual, no gitpython, no sandbox machinery (tests check `sys.modules`), so a
command through a live session costs little more than the session's own run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.broker import address, protocol

CONNECT_TIMEOUT_S = 5.0


class BrokerError(RuntimeError):
    """The session refused the request or broke the protocol; carries corral's exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class SessionResult:
    """What came back: the status to exit with, the report, and the lines to print on stderr."""

    status: int
    exit_code: int
    report: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def connect(runtime_dir: Path, workspace: Path) -> socket.socket | None:
    """A connection to the project's live session, or None when no session is running.

    Raises AddressError when the session directory is not safe to use (not ours, open to others).
    """
    path = address.socket_path(runtime_dir, workspace)
    try:
        address.check_private_dir(path.parent)
    except FileNotFoundError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.connect(os.fspath(path))
    except OSError as error:
        sock.close()
        if error.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
            return None  # no session, or a stale socket whose owner is gone
        raise
    _pid, uid, _gid = address.peer_credentials(sock)
    if uid != os.getuid():
        sock.close()
        raise address.AddressError(f"{path}: served by uid {uid}, not you (refusing it)")
    return sock


class _Relay:
    """Writes stream frames to a descriptor, through the terminal filter when it is a terminal."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.filter: Any = None
        if os.isatty(fd):
            from boundary.termsafe import TerminalFilter

            self.filter = TerminalFilter()

    def write(self, data: bytes) -> None:
        if self.filter is not None:
            data = self.filter.feed(data)
        _write_all(self.fd, data)

    def flush(self) -> None:
        if self.filter is not None:
            _write_all(self.fd, self.filter.flush())


def run(
    sock: socket.socket,
    request: protocol.RunRequest,
    *,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
    on_output: Callable[[str, bytes], None] | None = None,
) -> SessionResult:
    """Run `request` in the session on `sock` and relay its output; BrokerError when refused."""
    relays = {"stdout": _Relay(stdout_fd), "stderr": _Relay(stderr_fd)}
    reader = protocol.LineReader(sock)
    with contextlib.closing(sock), _cancel_on_signals(sock):
        try:
            sock.sendall(protocol.encode({"type": "hello", "version": protocol.VERSION}))
            hello = reader.read_message()
            if hello is None:
                raise BrokerError("the session closed the connection", 125)
            if hello.get("type") == "error":
                raise _refusal(hello)
            protocol.validate_hello(hello)
            sock.settimeout(None)
            sock.sendall(protocol.encode(request.to_message()))
            while True:
                message = reader.read_message()
                if message is None:
                    raise BrokerError("the session ended before the command finished", 125)
                kind = message["type"]
                if kind in relays:
                    data = protocol.frame_bytes(message)
                    if on_output is not None:
                        on_output(kind, data)
                    else:
                        relays[kind].write(data)
                elif kind == "exit":
                    status, report, messages = protocol.validate_exit(message)
                    code = message.get("exit_code")
                    return SessionResult(status, code if type(code) is int else status, report, messages)
                elif kind == "error":
                    raise _refusal(message)
        except protocol.ProtocolError as error:
            raise BrokerError(f"the session sent something unexpected: {error}", 125) from error
        except OSError as error:
            raise BrokerError(f"lost the session: {error.strerror or error}", 125) from error
        finally:
            for relay in relays.values():
                with contextlib.suppress(OSError):
                    relay.flush()


def _refusal(message: dict[str, Any]) -> BrokerError:
    status = message.get("status")
    text = message.get("message")
    return BrokerError(
        str(text) if isinstance(text, str) else "refused",
        status if type(status) is int and 0 < status < 256 else 125,
    )


@contextlib.contextmanager
def _cancel_on_signals(sock: socket.socket) -> Iterator[None]:
    """While relaying: a terminating signal asks the session to kill the command (once)."""
    sent: list[bool] = []

    def handler(signum: int, frame: object) -> None:
        if sent:
            return
        sent.append(True)
        with contextlib.suppress(OSError):
            sock.sendall(protocol.encode({"type": "cancel"}))

    previous: dict[signal.Signals, Any] = {}
    for wanted in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            previous[wanted] = signal.signal(wanted, handler)
        except ValueError:  # not the main thread: the caller handles its own signals
            break
    try:
        yield
    finally:
        for restored, old in previous.items():
            signal.signal(restored, old)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            return
        view = view[written:]
