"""The broker's wire format: versioned JSON lines over a Unix stream socket.

Every message is one JSON object on one line (UTF-8, `\\n`-terminated, at most `MAX_LINE` bytes) with
a string field `type`. A conversation:

    client -> {"type": "hello", "version": 1}
    server -> {"type": "hello", "version": 1, "project": "/real/path", "frontend": "textual"}
    client -> {"type": "run", "argv": [...]} or {"type": "run", "text": "shell string"},
              optional "cwd" (absolute), "description" (the agent's narration, shown unverified),
              "timeout_s" (number > 0)
    server -> {"type": "stdout"|"stderr", "data": "<base64>"}   any number, as the command writes
    server -> {"type": "exit", "status": N, "exit_code": N, "report": {...}, "messages": [...]}
    client -> {"type": "cancel"} at any time (or just close the socket): the command is killed

or, when the request is refused, `{"type": "error", "message": "...", "status": N}` and the server
closes the connection. Output bytes travel base64-encoded, so any byte sequence crosses unchanged.

Security reasoning: everything read from the socket is untrusted (any process of the same user can
connect). `decode` accepts only what `validate_*` describe — known types, expected field types, bounded
sizes — and raises `ProtocolError` for anything else; the server answers one `error` frame and closes
that connection only, so a malformed or oversized message never reaches the Session.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

VERSION = 1
"""The protocol version; a hello with another version is refused."""

MAX_LINE = 1 << 20
"""The longest message accepted, in bytes (a run request with a long script fits; output is chunked)."""

MAX_ARGS = 4096
CHUNK = 48 * 1024
"""Output bytes per stream frame (base64 keeps the frame well under `MAX_LINE`)."""


class ProtocolError(ValueError):
    """A message that is not valid protocol; the text is one line safe to send back."""


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One command to run in the session."""

    argv: tuple[str, ...] | None = None
    text: str | None = None
    cwd: str | None = None
    description: str | None = None
    timeout_s: float | None = None

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "run"}
        if self.argv is not None:
            message["argv"] = list(self.argv)
        if self.text is not None:
            message["text"] = self.text
        for name in ("cwd", "description", "timeout_s"):
            value = getattr(self, name)
            if value is not None:
                message[name] = value
        return message


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of bytes."""
    line = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message too long ({len(line)} bytes, at most {MAX_LINE})")
    return line


def decode(line: bytes) -> dict[str, Any]:
    """A message from one line (with or without its newline); ProtocolError when it is not one."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message too long (at most {MAX_LINE} bytes)")
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ProtocolError("not a JSON line") from error
    if not isinstance(value, dict):
        raise ProtocolError("a message is a JSON object")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("a message needs a string `type`")
    return value


def stream_frame(stream: str, data: bytes) -> dict[str, Any]:
    return {"type": stream, "data": base64.b64encode(data).decode("ascii")}


def frame_bytes(message: dict[str, Any]) -> bytes:
    """The bytes of a stdout/stderr frame; ProtocolError when `data` is not base64."""
    data = message.get("data")
    if not isinstance(data, str):
        raise ProtocolError("a stream frame needs base64 `data`")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ProtocolError("stream `data` is not base64") from error


def validate_hello(message: dict[str, Any]) -> None:
    """Raise ProtocolError unless `message` is a hello of this version."""
    if message.get("type") != "hello":
        raise ProtocolError("expected a hello first")
    version = message.get("version")
    if type(version) is not int or version != VERSION:
        raise ProtocolError(f"unsupported protocol version {version!r} (this corral speaks {VERSION})")


def _optional_str(message: dict[str, Any], name: str, limit: int) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"`{name}` must be a string")
    if len(value) > limit:
        raise ProtocolError(f"`{name}` is too long")
    if "\0" in value:
        raise ProtocolError(f"`{name}` holds a NUL byte")
    return value


def validate_run(message: dict[str, Any]) -> RunRequest:
    """The RunRequest in `message`, or ProtocolError naming the first bad field."""
    if message.get("type") != "run":
        raise ProtocolError("expected a run request")
    known = {"type", "argv", "text", "cwd", "description", "timeout_s"}
    unknown = sorted(set(message) - known)
    if unknown:
        raise ProtocolError(f"unknown field `{unknown[0][:40]}` in a run request")
    argv_value = message.get("argv")
    text = _optional_str(message, "text", MAX_LINE)
    if (argv_value is None) == (text is None):
        raise ProtocolError("a run request needs exactly one of `argv` and `text`")
    argv: tuple[str, ...] | None = None
    if argv_value is not None:
        if not isinstance(argv_value, list) or not argv_value or len(argv_value) > MAX_ARGS:
            raise ProtocolError("`argv` must be a non-empty list of strings")
        if not all(isinstance(arg, str) and "\0" not in arg for arg in argv_value):
            raise ProtocolError("`argv` must be a non-empty list of strings without NUL")
        if not argv_value[0]:
            raise ProtocolError("`argv[0]` is empty")
        argv = tuple(argv_value)
    cwd = _optional_str(message, "cwd", 4096)
    if cwd is not None and not cwd.startswith("/"):
        raise ProtocolError("`cwd` must be an absolute path")
    description = _optional_str(message, "description", 8192)
    timeout = message.get("timeout_s")
    if timeout is not None:
        if type(timeout) not in (int, float) or not (0 < timeout <= 7 * 24 * 3600):
            raise ProtocolError("`timeout_s` must be a positive number of seconds")
        timeout = float(timeout)
    return RunRequest(argv, text, cwd, description, timeout)


def validate_exit(message: dict[str, Any]) -> tuple[int, dict[str, Any], list[str]]:
    """(status, report, messages) from an exit frame; ProtocolError when malformed."""
    status = message.get("status")
    if type(status) is not int or not (0 <= status <= 255):
        raise ProtocolError("an exit frame needs an integer `status` 0-255")
    report = message.get("report", {})
    messages = message.get("messages", [])
    if not isinstance(report, dict) or not isinstance(messages, list):
        raise ProtocolError("malformed exit frame")
    return status, report, [str(line) for line in messages]


class LineReader:
    """Reads protocol lines from a socket; never buffers more than `MAX_LINE` bytes of one line."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._eof = False

    def read_message(self) -> dict[str, Any] | None:
        """The next message, None at end of input; ProtocolError on a bad or oversized line."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return decode(line)
            if len(self._buffer) > MAX_LINE:
                raise ProtocolError(f"message too long (at most {MAX_LINE} bytes)")
            if self._eof:
                if self._buffer:
                    raise ProtocolError("connection closed in the middle of a message")
                return None
            chunk = self._sock.recv(65536)
            if not chunk:
                self._eof = True
            self._buffer.extend(chunk)
