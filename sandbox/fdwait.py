"""Waiting for descriptors to become readable, whatever their number.

`select.select` refuses descriptors above FD_SETSIZE (1024) with "filedescriptor out of range": a long
session with many connections, or a test run holding many files, gets there. Every wait in corral's own
process goes through `poll` instead.
"""

from __future__ import annotations

import select
from collections.abc import Iterable
from typing import Protocol


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def readable(sources: Iterable[int | _HasFileno], timeout_s: float | None) -> list[int]:
    """The descriptors among `sources` that are readable (or hung up) within `timeout_s` seconds.

    None waits without a limit; a negative timeout is an immediate check. Returns descriptor numbers.
    """
    poller = select.poll()
    for source in sources:
        fd = source if isinstance(source, int) else source.fileno()
        poller.register(fd, select.POLLIN | select.POLLPRI)
    timeout_ms = None if timeout_s is None else max(0, int(timeout_s * 1000 + 0.999))
    while True:
        try:
            return [fd for fd, _events in poller.poll(timeout_ms)]
        except InterruptedError:  # pragma: no cover - PEP 475 retries poll already
            continue
