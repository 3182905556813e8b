"""The environment that points every common tool inside the sandbox at corral's proxy."""

from __future__ import annotations

DEFAULT_PROXY_PORT = 3128
"""The port the proxy listens on inside the sandbox's own loopback (nothing else can hold it there)."""

NO_PROXY_HOSTS = "localhost,127.0.0.1,::1"
"""Only the sandbox's own loopback bypasses the proxy.

The sandbox has its own network namespace, so its loopback reaches only servers the sandboxed
command started itself (and the proxy's listener): never the host's loopback. Sending those through
the proxy would instead ask corral to connect to ``localhost`` on the host. No wildcard, no domain
suffix and nothing inherited from the person's own NO_PROXY: every other name goes to the proxy, and
a tool that ignores the proxy finds no route at all.
"""


def proxy_environment(port: int = DEFAULT_PROXY_PORT) -> dict[str, str]:
    """Variables that send HTTP, HTTPS and other proxy-aware traffic to the proxy at `port`.

    Both cases of each name are set: curl reads only lower-case ``http_proxy``, most other tools
    the upper case. ``ALL_PROXY`` uses ``socks5h`` so that SOCKS-capable tools (curl for other
    protocols, git's curl transport) let the proxy resolve names: the sandbox has no DNS. The
    variables replace any inherited ones, including a host-level NO_PROXY.
    """
    if not 0 < port < 65536:
        raise ValueError(f"invalid proxy port {port}")
    http_proxy = f"http://127.0.0.1:{port}"
    values = {
        "HTTP_PROXY": http_proxy,
        "HTTPS_PROXY": http_proxy,
        "ALL_PROXY": f"socks5h://127.0.0.1:{port}",
        "NO_PROXY": NO_PROXY_HOSTS,
    }
    environment = dict(values)
    environment.update({name.lower(): value for name, value in values.items()})
    return environment
