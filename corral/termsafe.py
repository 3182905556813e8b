"""Everything corral writes to a terminal: its own messages, a command's live output, and the hold-back
that keeps a prompt on screen.

* `inert_stdio()` replaces `sys.stdout` and `sys.stderr` with `InertStream`s at the CLI edge, for every
  sub-command that does not own the terminal (all but `shell`): whatever corral prints - denial lines,
  `rules add` hints, `not applied` lines, `rules list`, `trust`, `stats`, `doctor`, reports - goes
  through `boundary.termsafe.visible`, the one escaping function, so a hostile path, host, rule target
  or commit message is shown as visible labels and never reaches the terminal as a control sequence.
  Escaping at the sink leaves no print path to forget; corral's own words hold no control characters,
  so escaping whole lines costs nothing. `say` is the same for code that prints outside the CLI edge.
* `copy_filtered` pumps a command's output through `TerminalFilter` (SGR colours kept, all else inert).
* `OutputHold`: while a prompt is on screen the pumps buffer the command's output (bounded: a full buffer
  stops the pump, so the command blocks on its pipe and nothing is lost) and write it only after the
  answer, so output can neither scroll the prompt away nor draw a fake one under it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, TypeVar

from boundary.termsafe import TerminalFilter, visible

_Request = TypeVar("_Request")
_Answer = TypeVar("_Answer")

HOLD_LIMIT = 1 << 20
"""Bytes of output buffered per hold before the pump stops reading (the command then blocks)."""
ARMING_DELAY = 0.4
"""Seconds a new prompt ignores keys: input typed before it was read cannot answer it."""


class InertStream(io.TextIOBase):
    """A text stream that writes everything through the one escaping function to `raw`.

    `raw` stays reachable for corral's own control output (a `\r` progress bar) and for the descriptor:
    the pumps that copy a command's output write to `fileno()` through `TerminalFilter` themselves.
    """

    def __init__(self, raw: IO[str]) -> None:
        super().__init__()
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(visible(text))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def fileno(self) -> int:
        return self.raw.fileno()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.raw, "encoding", "utf-8") or "utf-8"


@contextlib.contextmanager
def inert_stdio() -> Iterator[None]:
    """`sys.stdout` and `sys.stderr` as `InertStream`s for the body (see the module docstring)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = InertStream(saved[0]), InertStream(saved[1])
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = saved


@contextlib.contextmanager
def terminal_owned() -> Iterator[None]:
    """The real `sys.stdout`/`sys.stderr` for a body that owns the terminal (the shell's front ends,
    which escape what they draw themselves and write their own control sequences)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = raw_stream(saved[0]), raw_stream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def raw_stream(stream: IO[str]) -> IO[str]:
    """The stream under an `InertStream` (for corral's own control output only), else `stream`."""
    return stream.raw if isinstance(stream, InertStream) else stream


def say(text: str = "", file: IO[str] | None = None, *, end: str = "\n") -> None:
    """Print corral's message `text`, every line made inert by the one escaping function."""
    stream = sys.stdout if file is None else file
    stream.write(visible(text) + end)
    stream.flush()


def err(text: str) -> None:
    """`say` on stderr."""
    say(text, sys.stderr)


class OutputHold:
    """Holds a command's output back while a prompt is open (see the module docstring)."""

    def __init__(self, limit: int = HOLD_LIMIT) -> None:
        self._limit = limit
        self._condition = threading.Condition()
        self._depth = 0
        self._held: list[tuple[int, bytes]] = []
        self._held_bytes = 0

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold output for the body (nestable); on leaving, write what was held, in order."""
        with self._condition:
            self._depth += 1  # taken under the lock: a write in progress has finished
        try:
            yield
        finally:
            with self._condition:
                self._depth -= 1
                if self._depth == 0:
                    held, self._held, self._held_bytes = self._held, [], 0
                    for fd, data in held:
                        _write_all(fd, data)
                    self._condition.notify_all()

    def around(self, ask: Callable[[_Request], _Answer]) -> Callable[[_Request], _Answer]:
        """`ask` with output held while it runs: the prompt it draws stays the last thing on screen."""

        def asking(request: _Request) -> _Answer:
            with self.holding():
                return ask(request)

        return asking

    @property
    def held(self) -> bool:
        """Whether a prompt holds output right now."""
        with self._condition:
            return self._depth > 0

    def write(self, fd: int, data: bytes) -> None:
        """Write `data` to `fd` now, or keep it for later while held (waits while the buffer is full)."""
        if not data:
            return
        with self._condition:
            while self._depth > 0 and self._held_bytes + len(data) > self._limit and self._held_bytes:
                self._condition.wait()
            if self._depth > 0:
                self._held.append((fd, data))
                self._held_bytes += len(data)
                return
            _write_all(fd, data)


def copy_filtered(read_end: int, target_fd: int, hold: OutputHold | None = None) -> None:
    """Copy everything from `read_end` to `target_fd` through a `TerminalFilter`; closes `read_end`.

    With `hold`, output is held back while a prompt is open.
    """
    terminal_filter = TerminalFilter()
    sink = hold or OutputHold()
    try:
        while chunk := os.read(read_end, 65536):
            sink.write(target_fd, terminal_filter.feed(chunk))
        sink.write(target_fd, terminal_filter.flush())
    except OSError:
        pass
    finally:
        os.close(read_end)


def discard_typed_ahead(fd: int) -> None:
    """Drop input the terminal `fd` received but nobody read yet (keys typed before a prompt opened)."""
    with contextlib.suppress(OSError, termios.error):
        termios.tcflush(fd, termios.TCIFLUSH)


def arm_prompt(fd: int, delay_s: float = ARMING_DELAY) -> None:
    """Open a prompt on the terminal `fd`: drop typed-ahead input, then ignore keys for `delay_s`
    (not echoed either, so nothing looks like an answer), then drop what arrived meanwhile."""
    discard_typed_ahead(fd)
    try:
        saved = termios.tcgetattr(fd)
    except (OSError, termios.error):
        time.sleep(delay_s)
        return
    quiet = list(saved)
    quiet[3] = quiet[3] & ~(termios.ECHO | termios.ICANON)
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
        time.sleep(delay_s)
    finally:
        discard_typed_ahead(fd)
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError:
        return  # the terminal went away: nothing more can be shown


__all__ = [
    "ARMING_DELAY",
    "InertStream",
    "OutputHold",
    "arm_prompt",
    "copy_filtered",
    "discard_typed_ahead",
    "err",
    "inert_stdio",
    "raw_stream",
    "say",
    "terminal_owned",
]
