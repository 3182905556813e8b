"""How a sandboxed command's output reaches a terminal, and Ctrl-C reaches the command: once for
`corral run` and both shells.

A front end never hands the sandbox its terminal: the command writes to a pipe, and a pump reads it.
`filtered_pump` copies through `corral.termsafe.copy_filtered` (colours kept, every other control
sequence made visible); the Textual app supplies its own batching reader through the same
`PumpFactory` shape. `sigint_interrupts` routes Ctrl-C to the sandboxed command while it runs, so it
stops the command, never corral halfway through applying or recording.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from corral.termsafe import OutputHold, copy_filtered

if TYPE_CHECKING:
    from corral.session import Session


class Pump(Protocol):
    """What reads a command's output pipe: started by its factory, joined when the command is done."""

    def join(self, timeout: float, /) -> None: ...


PumpFactory = Callable[[int], Pump]
"""Given the pipe's read end (which the pump then owns and closes), start reading and return the pump."""


@contextlib.contextmanager
def sigint_interrupts(session: Session) -> Iterator[None]:
    """While the body runs, Ctrl-C interrupts the sandboxed command (main thread only)."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: session.interrupt(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def filtered_pump(target_fd: int, hold: OutputHold | None = None) -> PumpFactory:
    """A `PumpFactory` copying the pipe to `target_fd` through the terminal filter, on its own thread.

    With `hold`, the output waits while a prompt is on screen (`OutputHold.around(ask)`)."""

    def start(read_end: int) -> threading.Thread:
        pump = threading.Thread(
            target=copy_filtered, args=(read_end, target_fd, hold), daemon=True, name="corral-output"
        )
        pump.start()
        return pump

    return start
