"""Attack catalog group 5 (Unix sockets, local daemons, host loopback) and N03 (direct sockets), with
the real bubblewrap, as root and as a normal user. Each test runs a real server on the host, proves it
is reachable from the host (the control), attacks it from the sandbox, and checks afterwards that the
server saw no connection at all.

The principle: the seccomp filter refuses AF_UNIX `socket()` (so no path or abstract Unix socket can
be reached, whatever its permissions), and the network namespace holds only a loopback (so neither the
host's loopback nor the internet exists); the one way out is corral's egress proxy, when present, which
must not lead to the host's loopback either. Filtering of allowed hosts is the egress issue's.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Actor


class CountingServer:
    """Accepts connections on a listening socket in a thread and counts them."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.connections = 0
        self._stop = threading.Event()
        listener.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            try:
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK")
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.listener.close()


@contextmanager
def unix_server(path: Path | str, actor: Actor) -> Iterator[CountingServer]:
    """A Unix stream server at `path` (a filesystem path, or an abstract name starting with NUL),
    connectable by the actor; yields after the host-side control connection, with the count reset."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    if isinstance(path, Path):
        os.chmod(path, 0o777)
        os.lchown(path, actor.uid, actor.gid)
    listener.listen(8)
    server = CountingServer(listener)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:  # control
            probe.connect(str(path))
            assert probe.recv(64).startswith(b"HTTP/1.0 200")
        _wait_for(lambda: server.connections == 1)
        server.connections = 0
        yield server
    finally:
        server.close()


@contextmanager
def tcp_server(family: socket.AddressFamily, host: str) -> Iterator[tuple[CountingServer, int]]:
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    server = CountingServer(listener)
    try:
        with socket.create_connection((host, port), timeout=2) as probe:  # control
            assert probe.recv(64).startswith(b"HTTP/1.0 200")
        _wait_for(lambda: server.connections == 1)
        server.connections = 0
        yield server, port
    finally:
        server.close()


def _wait_for(condition: object, timeout: float = 2.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


PY_UNIX_CONNECT = (
    "python3 -c 'import socket,sys\n"
    "try:\n"
    '    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1]); print("CONNECTED")\n'
    'except OSError as e: print("unix-refused", e.errno)\' '
)


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_U01_unix_socket_daemon_unreachable(actor: Actor) -> None:
    """docker.sock-style daemon: curl, Python, and a socket in the workspace itself; socketpair (which
    reaches nothing outside the process tree) still works."""
    docker_dir = actor.own_dir / ".docker/run"
    docker_dir.mkdir(parents=True, exist_ok=True)
    actor.chown_path(docker_dir)
    sock = docker_dir / "docker.sock"
    in_workspace = actor.workspace / "dev.sock"
    with unix_server(sock, actor) as server, unix_server(in_workspace, actor) as ws_server:
        script = f"""
            curl -sS --max-time 3 --unix-socket {sock} http://x/_ping 2>&1 || echo curl-refused
            curl -sS --max-time 3 --unix-socket {in_workspace} http://x/_ping 2>&1 || echo curl-refused
            {PY_UNIX_CONNECT} {sock}
            {PY_UNIX_CONNECT} {in_workspace}
            python3 -c 'import socket; a, b = socket.socketpair(); a.send(b"pair"); print(b.recv(4).decode())'
            echo end
        """
        result = actor.sandboxed(script)
        assert server.connections == 0 and ws_server.connections == 0
    assert "end" in result.stdout, result.stderr
    assert "CONNECTED" not in result.stdout and "OK" not in result.stdout.replace("curl-refused", "")
    assert result.stdout.count("curl-refused") == 2
    assert result.stdout.count("unix-refused 1") == 2  # EPERM from the filter
    assert "pair" in result.stdout


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_U02_ssh_agent_unreachable(actor: Actor) -> None:
    """SSH_AUTH_SOCK is scrubbed from the environment, and naming the socket explicitly fails too."""
    agent = actor.own_dir / "agent.sock"
    with unix_server(agent, actor) as server:
        actor.env["SSH_AUTH_SOCK"] = str(agent)
        script = f"""
            echo "sock=[$SSH_AUTH_SOCK]"
            ssh-add -L 2>&1 || echo ssh-add-failed
            SSH_AUTH_SOCK={agent} ssh-add -L 2>&1 || echo ssh-add-explicit-failed
            {PY_UNIX_CONNECT} {agent}
            echo end
        """
        result = actor.sandboxed(script)
        assert server.connections == 0
    assert "sock=[]" in result.stdout
    assert "ssh-add-failed" in result.stdout and "ssh-add-explicit-failed" in result.stdout
    assert "CONNECTED" not in result.stdout


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_U03_abstract_sockets_and_session_daemons(actor: Actor) -> None:
    """An abstract-namespace server (not reachable through any path, and per network namespace), D-Bus
    and systemd user services: all fail, no marker appears."""
    name = f"\0corral-test-{secrets.token_hex(4)}"
    marker = actor.outside / "U03"
    runtime = Path(actor.env["XDG_RUNTIME_DIR"])
    (runtime / "bus").touch()  # where a session bus would listen
    actor.chown_tree(actor.base)
    with unix_server(name, actor) as server:
        script = f"""
            python3 -c 'import socket
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect("\\0{name[1:]}"); print("CONNECTED")
except OSError as e: print("abstract-refused", e.errno)'
            systemd-run --user touch {marker} 2>/dev/null || echo systemd-run-failed
            busctl --user list 2>/dev/null || echo busctl-failed
            DBUS_SESSION_BUS_ADDRESS=unix:path={runtime}/bus busctl --user list 2>/dev/null || echo busctl-path-failed
            echo end
        """
        result = actor.sandboxed(script)
        assert server.connections == 0
    assert "abstract-refused 1" in result.stdout
    assert "CONNECTED" not in result.stdout
    for failed in ("systemd-run-failed", "busctl-failed", "busctl-path-failed"):
        assert failed in result.stdout
    assert not marker.exists()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_U05_host_loopback_services_unreachable(actor: Actor, family: str) -> None:
    """A service on the host's loopback (IDE WebSocket, database, docker :2375): curl, Python and bash's
    /dev/tcp reach the sandbox's own empty loopback, never the host's."""
    if family == "ipv6" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    fam, host = (socket.AF_INET, "127.0.0.1") if family == "ipv4" else (socket.AF_INET6, "::1")
    url_host = host if family == "ipv4" else f"[{host}]"
    try:
        context = tcp_server(fam, host)
        server_port = context.__enter__()
    except OSError as error:
        pytest.skip(f"cannot listen on {host}: {error}")
    server, port = server_port
    try:
        script = f"""
            curl -sS --max-time 3 http://{url_host}:{port}/ 2>&1 || echo curl-failed
            python3 -c 'import socket
try:
    socket.create_connection(("{host}", {port}), timeout=3); print("CONNECTED")
except OSError as e: print("tcp-failed", e.errno)'
            (exec 3<>/dev/tcp/{host}/{port}) 2>/dev/null && echo devtcp-connected || echo devtcp-failed
            curl -sS --max-time 3 http://localhost:{port}/ 2>&1 || echo curl-localhost-failed
            for proxy in "$HTTP_PROXY" "$ALL_PROXY"; do
                [ -n "$proxy" ] && curl -fsS --max-time 3 --proxy "$proxy" http://{url_host}:{port}/ >/dev/null 2>&1 \
                    && echo via-proxy-connected
            done
            echo end
        """
        result = actor.sandboxed(script)
        assert server.connections == 0
    finally:
        context.__exit__(None, None, None)
    assert "end" in result.stdout, result.stderr
    assert "CONNECTED" not in result.stdout and "devtcp-connected" not in result.stdout
    assert "via-proxy-connected" not in result.stdout  # corral's egress proxy, when present, refuses loopback
    for failed in ("curl-failed", "tcp-failed", "devtcp-failed", "curl-localhost-failed"):
        assert failed in result.stdout


def test_N03_no_direct_network(actor: Actor) -> None:
    """TCP to public addresses (IPv4 and IPv6), UDP, raw and packet sockets, /dev/tcp: nothing gets out.

    Since issue 13 a TCP connect that ignores the proxy is redirected to corral's transparent listener
    inside the sandbox, so the handshake completes locally; the connection is then decided (here:
    denied, no terminal) and reset before a byte leaves, and the denial names the destination. A DNS
    look-up gets a placeholder address from corral's responder (no question leaves the machine)."""
    script = r"""
        python3 - <<'EOF'
import ipaddress, socket
def attempt(label, fn):
    try:
        fn(); print(label, "OK")
    except OSError as e:
        print(label, "failed", e.errno)
def talk(address):
    s = socket.create_connection((address, 443), timeout=5); s.sendall(b"hello"); s.settimeout(5)
    if not s.recv(10): raise OSError("closed without data")
attempt("tcp4", lambda: talk("1.1.1.1"))
attempt("tcp6", lambda: talk("2606:4700:4700::1111"))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", ("8.8.8.8", 53)); s.settimeout(1); s.recv(10)
attempt("udp", udp)
attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
found = {info[4][0] for info in socket.getaddrinfo("example.com", 443, socket.AF_INET)}
pool = ipaddress.ip_network("198.18.0.0/15")
print("dns", "placeholder" if found and all(ipaddress.ip_address(a) in pool for a in found) else found)
print("interfaces", sorted(name for _, name in socket.if_nameindex()))
EOF
        (exec 3<>/dev/tcp/1.1.1.1/80; printf 'GET / HTTP/1.0\r\n\r\n' >&3; read -r line <&3; [ -n "$line" ]) 2>/dev/null \
            && echo devtcp-connected || echo devtcp-failed
        curl -fsS --noproxy '*' --max-time 3 http://1.1.1.1/ >/dev/null 2>&1 || echo curl-failed
        echo end
    """
    result = actor.sandboxed(script)
    out = result.stdout
    assert "end" in out, result.stderr
    for label in ("tcp4", "tcp6", "udp", "raw", "packet"):
        assert f"{label} failed" in out, f"{label}: {out}"
    assert "dns placeholder" in out, out
    assert "interfaces ['lo']" in out
    assert "devtcp-failed" in out and "curl-failed" in out
    for target in ("1.1.1.1:443", "[2606:4700:4700::1111]:443", "1.1.1.1:80"):
        assert f"denied net {target}" in result.stderr, result.stderr


PY_DGRAM_PAIRS = (
    "python3 -c 'import socket,sys\n"
    "for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC):\n"
    "    try:\n"
    "        a, b = socket.socketpair(socket.AF_UNIX, kind)\n"
    '        a.sendto(b"planted", sys.argv[1]); print("SENT", kind)\n'
    '    except OSError as e: print("pair-refused", e.errno)\n'
    "a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
    "try:\n"
    '    a.sendto(b"planted", sys.argv[1]); print("seqpacket-to", b.recv(16).decode())\n'
    'except OSError as e: print("seqpacket-refused", e.errno)\n'
    "'"
)


@pytest.mark.backends("bwrap", "landlock")
def test_U06_a_datagram_socketpair_cannot_send_to_a_host_socket(actor: Actor) -> None:
    """`socket(AF_UNIX)` is refused, but a datagram socketpair's `sendto()` takes a path: it reached any
    datagram socket the sandbox can see (journald's, /run/systemd/notify). Datagram (and raw, which is a
    datagram for AF_UNIX) pairs are refused; stream and seqpacket pairs, which cannot address a third
    socket, still work (the seqpacket send goes to its own peer, never to the path)."""
    directory = actor.own_dir / "notify"
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o777)
    actor.chown_path(directory)
    path = directory / f"journal-{secrets.token_hex(4)}.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    os.chmod(path, 0o777)
    receiver.settimeout(0.5)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as control:  # the host can reach it
            control.sendto(b"control", str(path))
        assert receiver.recv(64) == b"control"
        result = actor.sandboxed(f"{PY_DGRAM_PAIRS} {path}; echo end")
        with pytest.raises(TimeoutError):
            print("received from the sandbox:", receiver.recv(64))
    finally:
        receiver.close()
    assert "end" in result.stdout, result.stderr
    assert "SENT" not in result.stdout, result.stdout
    assert result.stdout.count("pair-refused 1") == 3, result.stdout  # EPERM from the filter
    assert "seqpacket-to planted" in result.stdout, result.stdout
