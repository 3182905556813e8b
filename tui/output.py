"""Read a command's output from a pipe in a thread and hand it over in bounded batches.

A command may print 100,000 lines in a second. The reader keeps only the last `max_lines` lines it has
not yet handed over (counting the ones it dropped) and calls `on_batch` at most every `interval_s`, so
the UI receives a bounded amount of work however much the command prints. Lines are cut at
`max_line_chars` while reading, so one endless line cannot grow memory either.
"""

from __future__ import annotations

import codecs
import os
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_LINES = 500
"""Lines kept per command (the most recent ones)."""
MAX_LINE_CHARS = 4000
"""A line longer than this is cut where it is read."""

BatchCallback = Callable[[list[str], int], None]
"""Called from the reader thread with (new lines, lines dropped since the last batch)."""


class OutputReader:
    """Reads `fd` until EOF on its own thread; closes `fd` when done. Call `join` after the writer closed."""

    def __init__(
        self,
        fd: int,
        on_batch: BatchCallback,
        *,
        interval_s: float = 0.05,
        max_lines: int = MAX_LINES,
        max_line_chars: int = MAX_LINE_CHARS,
    ) -> None:
        self._fd = fd
        self._on_batch = on_batch
        self._interval_s = interval_s
        self._max_line_chars = max_line_chars
        self._pending: deque[str] = deque(maxlen=max_lines)
        self._dropped = 0
        self._partial = ""
        self._thread = threading.Thread(target=self._run, name="corral-output", daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait for EOF and the last batch."""
        self._thread.join(timeout_s)

    def _take(self, text: str) -> None:
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        if len(self._partial) > self._max_line_chars:
            pieces.append(self._partial[: self._max_line_chars])
            self._partial = ""
        for piece in pieces:
            if len(self._pending) == self._pending.maxlen:
                self._dropped += 1
            self._pending.append(
                piece[: self._max_line_chars] if len(piece) > self._max_line_chars else piece
            )

    def _flush(self) -> None:
        if self._pending or self._dropped:
            lines = list(self._pending)
            dropped = self._dropped
            self._pending.clear()
            self._dropped = 0
            self._on_batch(lines, dropped)

    def _run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        last = time.monotonic()
        try:
            while chunk := os.read(self._fd, 65536):
                self._take(decoder.decode(chunk))
                now = time.monotonic()
                if now - last >= self._interval_s:
                    self._flush()
                    last = now
            self._take(decoder.decode(b"", final=True))
        except OSError:
            pass
        finally:
            if self._partial:
                self._take("\n")
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._flush()


class BoundedLines:
    """The lines a UI keeps for one command: the last `max_lines`, and how many came before them."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.dropped = 0

    def extend(self, lines: list[str], dropped: int) -> None:
        """Add a batch (and the count the reader dropped before it)."""
        overflow = max(0, len(self.lines) + len(lines) - (self.lines.maxlen or 0))
        self.dropped += dropped + overflow
        self.lines.extend(lines)
