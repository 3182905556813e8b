"""The network gate's second way in: traffic that ignores the proxy, decided by the proxy's own pipeline.

`Interceptor` owns, for one sandbox network namespace, what `sandbox.egress.interception` opened
inside it (transparent TCP listeners, DNS sockets, the NAT rules), and once the proxy exists serves
them: the DNS responder (`sandbox.egress.dns`) and the transparent service
(`sandbox.egress.transparent`), which hands every redirected connection to `EgressProxy.open_upstream`
— the same decision, resolution, address checks and reports as proxied traffic. `NetworkGate` calls
`open` when it attaches to a namespace, adds `fds()` to what it waits on, calls `serve(proxy)` once
the proxy exists, and `close()` when it shuts the proxy.

Fail closed: when the namespace cannot be given interception, `open` says why (`error`) and the
sandbox keeps no route out (every direct connect fails with ENETUNREACH).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sandbox.egress.interception import Interception, open_interception_in

if TYPE_CHECKING:
    from sandbox.egress.dns import DnsResponder
    from sandbox.egress.names import NamePool
    from sandbox.egress.proxy import EgressProxy
    from sandbox.egress.transparent import TransparentService

OnLookup = Callable[[str, str], None]
OnRefusal = Callable[[str, int, str], None]


class Interceptor:
    """Interception for one namespace at a time: open, serve with a proxy, close."""

    def __init__(self, on_lookup: OnLookup, on_refusal: OnRefusal) -> None:
        self._on_lookup = on_lookup
        self._on_refusal = on_refusal
        self._lock = threading.Lock()
        self._interception: Interception | None = None
        self._transparent: TransparentService | None = None
        self._responder: DnsResponder | None = None
        self._pool: NamePool | None = None
        self.error: str | None = None
        """Why traffic that ignores the proxy is not steered to corral here (None: it is)."""

    def open(self, child_pid: int, proxy_port: int) -> None:
        """Open interception in `child_pid`'s network namespace (closing any earlier one)."""
        self.close()
        try:
            interception = open_interception_in(child_pid, proxy_port)
        except OSError as error:
            self.error = f"could not steer traffic that ignores the proxy to corral: {error}"
            return
        self.error = interception.nat_error
        with self._lock:
            self._interception = interception

    def fds(self) -> list[int]:
        """The descriptors whose first activity should start the proxy."""
        with self._lock:
            interception = self._interception
        if interception is None or self._transparent is not None:
            return []
        return [sock.fileno() for sock in (*interception.tcp, *interception.dns)]

    def serve(self, proxy: EgressProxy) -> None:
        """Serve the transparent listeners and the DNS responder with `proxy`'s pipeline."""
        from sandbox.egress.dns import DnsResponder, start_udp
        from sandbox.egress.names import NamePool
        from sandbox.egress.transparent import TransparentService

        if self._pool is None:
            # One pool for the gate's lifetime (the session): a name looked up in one command still
            # maps back from its placeholder in the next, whichever namespace that command runs in.
            self._pool = NamePool()
        responder = DnsResponder(self._pool, on_lookup=self._on_lookup)
        service = TransparentService(
            proxy.open_upstream,
            proxy.tunnel,  # relays, or terminates TLS for a brokered host like a proxied tunnel
            responder.pool,
            responder,
            on_refusal=self._on_refusal,
        )
        with self._lock:
            interception = self._interception
            if interception is None or self._transparent is not None:
                service.close()
                return
            self._transparent = service
            self._responder = responder
            listeners, interception.tcp = interception.tcp, []
        for listener in listeners:
            service.serve(listener)
        start_udp(responder, interception.dns)

    def close(self) -> None:
        """Stop serving and close every socket of the namespace's interception."""
        with self._lock:
            transparent, self._transparent = self._transparent, None
            interception, self._interception = self._interception, None
            responder, self._responder = self._responder, None
        if responder is not None:
            responder.stop()
        if transparent is not None:
            transparent.close()
        if interception is not None:
            for sock in interception.dns:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            interception.close()
