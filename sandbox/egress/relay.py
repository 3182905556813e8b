"""Copy bytes both ways between two connected sockets, fast, with an idle timeout and half-close.

On Linux each direction moves data with ``splice`` through a pipe (one thread per direction), so the
bytes never enter Python;
elsewhere (or if splice is refused) it falls back to ``recv_into``/``send`` on one reused 256 KiB
buffer. Either way there is no per-byte Python work.

When one side finishes sending (EOF), the other side's write half is shut down and the opposite
direction carries on: half-closed connections behave as they would without the proxy. When both
directions are idle for `idle_timeout_s`, or either side fails, both sockets are shut down.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket
import threading
import time

CHUNK_BYTES = 256 * 1024
PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = 1031
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_HAS_SPLICE = hasattr(os, "splice")


class _Readiness:
    """One descriptor and the event a pump waits for, with its poll object made once."""

    def __init__(self, target: socket.socket | int, event: int) -> None:
        self.poller = select.poll()
        self.poller.register(target, event | select.POLLERR | select.POLLHUP)


class _Link:
    """State shared by the two directions of one relayed connection."""

    def __init__(self, first: socket.socket, second: socket.socket, idle_timeout_s: float) -> None:
        self.sockets = (first, second)
        self.idle_timeout_s = idle_timeout_s
        self.last_activity = time.monotonic()
        self.aborted = False
        self.transferred = [0, 0]

    def abort(self) -> None:
        """Stop both directions now: shutting the sockets down wakes any waiting poll."""
        self.aborted = True
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def wait(self, sock: socket.socket | int, event: int) -> bool:
        """Wait until `sock` is ready for `event`; False when the link is idle too long or aborted."""
        return self.wait_ready(_Readiness(sock, event))

    def wait_ready(self, readiness: _Readiness) -> bool:
        """Wait until `readiness` is met; False when the link is idle too long or aborted."""
        poller = readiness.poller
        while not self.aborted:
            remaining = self.last_activity + self.idle_timeout_s - time.monotonic()
            if remaining <= 0:
                return False
            if poller.poll(max(1, int(min(remaining, 60.0) * 1000))):
                return not self.aborted
        return False


def relay(client: socket.socket, upstream: socket.socket, *, idle_timeout_s: float) -> tuple[int, int]:
    """Relay until both directions end; return bytes sent (client->upstream, upstream->client).

    The caller keeps ownership of both sockets and closes them afterwards.
    """
    client.setblocking(False)
    upstream.setblocking(False)
    link = _Link(client, upstream, idle_timeout_s)
    backwards = threading.Thread(
        target=_pump, args=(link, upstream, client, 1), name="corral-egress-relay", daemon=True
    )
    backwards.start()
    _pump(link, client, upstream, 0)
    backwards.join()
    return link.transferred[0], link.transferred[1]


def _pump(link: _Link, source: socket.socket, sink: socket.socket, direction: int) -> None:
    try:
        if _HAS_SPLICE and _pump_splice(link, source, sink, direction):
            return
        _pump_copy(link, source, sink, direction)
    except OSError:
        link.abort()


def _finish(link: _Link, sink: socket.socket) -> None:
    """The source said EOF: pass the half-close on; abort if the sink is already gone."""
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        link.abort()


def _pump_splice(link: _Link, source: socket.socket, sink: socket.socket, direction: int) -> bool:
    """Move data with splice; return False (having moved nothing) if splice is not supported.

    One thread per direction: fill the pipe from `source`, drain it into `sink`, again. The sockets'
    own buffers keep both ends streaming meanwhile, so a second thread per direction (and the switches
    between the two) would only cost CPU on a machine with few cores.
    """
    read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_BYTES)
    source_fd, sink_fd = source.fileno(), sink.fileno()
    readable = _Readiness(source, select.POLLIN)
    writable = _Readiness(sink, select.POLLOUT)
    in_pipe = 0
    moved_any = False
    try:
        while not link.aborted:
            if in_pipe == 0:
                try:
                    moved = os.splice(source_fd, write_end, PIPE_BYTES, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    if not link.wait_ready(readable):
                        link.abort()
                        return True
                    continue
                except OSError as error:
                    if error.errno in (errno.EINVAL, errno.ENOSYS) and not moved_any:
                        return False
                    raise
                if moved == 0:
                    _finish_if_not_aborted(link, sink)
                    return True
                in_pipe, moved_any = moved, True
                link.last_activity = time.monotonic()
            try:
                sent = os.splice(read_end, sink_fd, in_pipe, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                if not link.wait_ready(writable):
                    link.abort()
                    return True
                continue
            in_pipe -= sent
            link.transferred[direction] += sent
            link.last_activity = time.monotonic()
        return True
    finally:
        os.close(write_end)
        os.close(read_end)


def _finish_if_not_aborted(link: _Link, sink: socket.socket) -> None:
    if not link.aborted:
        _finish(link, sink)


def _pump_copy(link: _Link, source: socket.socket, sink: socket.socket, direction: int) -> None:
    # os.readv / os.write on the descriptors: socket methods would wait out a socket timeout first.
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    source_fd, sink_fd = source.fileno(), sink.fileno()
    while not link.aborted:
        try:
            received = os.readv(source_fd, [buffer])
        except BlockingIOError:
            if not link.wait(source, select.POLLIN):
                link.abort()
                return
            continue
        if received == 0:
            _finish(link, sink)
            return
        link.last_activity = time.monotonic()
        offset = 0
        while offset < received:
            try:
                offset += os.write(sink_fd, view[offset:received])
            except BlockingIOError:
                if not link.wait(sink, select.POLLOUT):
                    link.abort()
                    return
                continue
            link.last_activity = time.monotonic()
        link.transferred[direction] += received


def pump_one_way(source: socket.socket, sink: socket.socket, *, idle_timeout_s: float) -> int:
    """Copy `source` to `sink` until `source` ends (then half-close `sink`); return bytes copied.

    Both sockets must be in non-blocking mode at the OS level (any ``settimeout`` does that); their
    Python-level timeouts are left alone, so another thread may keep using the sockets meanwhile.
    """
    link = _Link(source, sink, idle_timeout_s)
    _pump(link, source, sink, 0)
    return link.transferred[0]
