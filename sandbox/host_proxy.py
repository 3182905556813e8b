"""corral's proxy on the host's loopback, for backends with no network namespace of their own (Landlock,
Seatbelt): a listener on a port chosen for this command, the command's proxy variables pointing at it,
and the network hook serving the proxy on it. The backend then limits the command's TCP to that port
(Landlock's port rules, Seatbelt's `(remote tcp "localhost:PORT")`)."""

from __future__ import annotations

import socket
from typing import Protocol, cast

from sandbox.bwrap import SandboxSetupError
from sandbox.egress.environment import proxy_environment
from sandbox.policy import Policy
from sandbox.runner import NetworkHook

_PROXY_NAMES = frozenset(proxy_environment(1))


class HostListenerHook(Protocol):
    """A network hook that can serve the proxy on a listener corral opened on the host."""

    def serve_on(self, listener: socket.socket) -> None: ...


def open_listener(
    policy: Policy, network: NetworkHook | None, env: dict[str, str], backend: str
) -> socket.socket | None:
    """The command's listener (None when the policy has no network), with `env`'s proxy variables set to
    its port. Raises SandboxSetupError when there is no hook to serve it: nothing runs."""
    if policy.network is None:
        return None
    if network is None or not hasattr(network, "serve_on"):
        raise SandboxSetupError(f"the {backend} backend needs a network proxy it can serve on loopback")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
    except OSError as error:
        listener.close()
        raise SandboxSetupError(f"could not open the command's proxy listener: {error}") from error
    port = int(listener.getsockname()[1])
    env.update({k: v for k, v in proxy_environment(port).items() if k in env or k in _PROXY_NAMES})
    return listener


def serve(network: NetworkHook | None, listener: socket.socket) -> None:
    """Have the hook serve the proxy on `listener` (SandboxSetupError when it cannot: nothing runs)."""
    try:
        cast(HostListenerHook, network).serve_on(listener)
    except Exception as error:
        raise SandboxSetupError(f"could not give the command its network proxy: {error}") from error
