"""One command run in a Session with its output streamed as it comes, killable from another thread.

Used by the broker server (frames to a client) and by `corral mcp` without a live session (output
collected for the tool result). The command's stdin is /dev/null; stdout and stderr are pipes read by
two threads that hand each chunk to `on_output(stream, bytes)`.

`cancel()` (client gone, SIGINT/SIGTERM on the client, a timeout) sends SIGTERM to the sandboxed
command, then SIGKILL every 0.1 s after `KILL_GRACE_S` until it is gone; a cancel before the start
means the command never starts. The Session still decides what the killed command crossed, so nothing
of it is applied without a decision.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from corral.command import Command
from corral.denials import denial_lines
from corral.session import CommandOutcome, Session
from sandbox.runner import StdioSpec

KILL_GRACE_S = 2.0
KEPT_OUTPUT_GRACE_S = 0.3
CHUNK = 48 * 1024

OutputSink = Callable[[str, bytes], None]


class Cancelled(RuntimeError):
    """The run was cancelled before the command started (nothing ran)."""


class StreamedRun:
    """Runs one command in `session`; `cancel()` may be called from any thread at any time."""

    def __init__(self, session: Session, on_output: OutputSink) -> None:
        self.session = session
        self.on_output = on_output
        self.cancelled = threading.Event()
        self.running = threading.Event()
        self.output_closed = threading.Event()
        self.timed_out = False
        self._killer: threading.Thread | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled.is_set():
                return
            self.cancelled.set()
            if self.running.is_set():
                self._start_killer()

    def _start_killer(self) -> None:
        self._killer = threading.Thread(target=self._kill, name="corral-kill", daemon=True)
        self._killer.start()

    def _kill(self) -> None:
        self.session.interrupt(signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        while self.running.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        while self.running.is_set():
            self.session.interrupt(signal.SIGKILL)
            time.sleep(0.1)

    def _time_out(self) -> None:
        self.timed_out = True
        self.on_output("stderr", b"corral: timed out; the command was killed\n")
        self.cancel()

    def run(self, command: Command, *, cwd: Path, timeout_s: float | None = None) -> CommandOutcome:
        """Run `command` (with the project's hooks); Cancelled when cancelled before it started.
        SandboxSetupError (nothing ran) propagates."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        pumps = [
            threading.Thread(target=self._pump, args=(out_r, "stdout"), daemon=True),
            threading.Thread(target=self._pump, args=(err_r, "stderr"), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        timer = threading.Timer(timeout_s, self._time_out) if timeout_s is not None else None
        try:
            with self._lock:
                if self.cancelled.is_set():
                    raise Cancelled("cancelled before it started")
                self.running.set()
            if timer is not None:
                timer.daemon = True
                timer.start()
            return self.session.run_with_hooks(command, cwd=cwd, stdio=StdioSpec(stdin, out_w, err_w))
        finally:
            self.running.clear()
            if timer is not None:
                timer.cancel()
            for fd in (out_w, err_w, stdin):
                os.close(fd)
            # A process the command left in the background (kept by a live session) may hold the pipes
            # open: take what is there, then stop forwarding (the pumps keep draining, so it never gets
            # SIGPIPE for writing to its output).
            wait = KEPT_OUTPUT_GRACE_S if self.session.has_background() else 5
            for pump in pumps:
                pump.join(timeout=wait)
            self.output_closed.set()

    def _pump(self, fd: int, stream: str) -> None:
        try:
            while chunk := os.read(fd, CHUNK):
                if not self.output_closed.is_set():
                    self.on_output(stream, chunk)
        except OSError:
            pass
        finally:
            os.close(fd)


def outcome_messages(workspace: Path, outcome: CommandOutcome) -> list[str]:
    """The lines `corral run` prints on stderr after a run: denials with the command that would allow
    each, notices, changes not applied."""
    lines: list[str] = []
    for part in (*outcome.hook_outcomes, outcome):
        lines.extend(denial_lines(workspace, part.decisions))
    lines.extend(n if n.startswith("corral:") else f"corral: {n}" for n in outcome.notices)
    lines.extend(f"corral: not applied: {change.path}: {reason}" for change, reason in outcome.refused)
    return lines
