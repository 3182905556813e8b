"""Issue 17 item 6: SSH without the key inside.

A real sshd (Debian's openssh-server, run as an unprivileged user with a generated host key) listens on
this machine's own non-loopback address (inside the sandbox 127.0.0.1 is the sandbox's own loopback;
the host's address goes through corral's network path), which each test allows explicitly. With
`ssh.agent = true` in the actor's config, `corral run -- ssh ...` and `git push`/`git fetch` over SSH
work with a key that corral's own agent holds outside (started from the hidden key file); the key's
bytes are nowhere the sandbox can read; `ssh-add -L` lists the public key only; `ssh-add -D` and adding
a key are refused; a signature for a host the person's known_hosts does not give that host key, or with
no session-bind, is refused and reported. Real bubblewrap, as root and as the unprivileged user.

The filter itself (`sandbox.sshagent`) is fuzzed against a real ssh-agent behind it.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shlex
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sandbox import sshagent
from sandbox.knownhosts import host_with_key
from tests.conftest import CORRAL, TEST_USER, Actor, _ensure_test_user

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
MISSING = [
    name
    for name, found in (
        ("sshd (Debian package openssh-server)", SSHD),
        ("ssh (openssh-client)", shutil.which("ssh")),
        ("ssh-agent (openssh-client)", shutil.which("ssh-agent")),
        ("ssh-keygen (openssh-client)", shutil.which("ssh-keygen")),
    )
    if found is None
]
needs_openssh = pytest.mark.skipif(bool(MISSING), reason=f"missing: {', '.join(MISSING)}")


# --- helpers -------------------------------------------------------------------------------------


def _host_address() -> str | None:
    """This machine's own non-loopback IPv4 address (its traffic stays on this machine)."""
    try:
        out = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return None
    found = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    return found.group(1) if found else None


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "corral-test", "-f", str(path)], check=True
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def _as(uid: int, gid: int, command: list[str]) -> list[str]:
    if uid == os.geteuid():
        return command
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--", *command]


def _wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout}s")


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _unix_accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


@dataclass
class SshServer:
    address: str
    port: int
    user: str
    directory: Path
    host_public: str
    bare: Path
    log: Path

    def url(self) -> str:
        return f"ssh://{self.user}@{self.address}:{self.port}{self.bare}"


@dataclass
class SshClient:
    home: Path
    key: Path
    public: str
    private_line: str
    """A line from the middle of the private key file (its secret bytes)."""
    events: list[str] = field(default_factory=list)


def _server_user() -> tuple[int, int, str]:
    """sshd runs unprivileged (root's needs /run/sshd, a fixed system path): as the test user when the
    tests run as root, else as whoever runs them."""
    if os.geteuid() != 0:
        import pwd

        return os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name
    user = _ensure_test_user()
    if user is None:
        pytest.skip(f"cannot create the unprivileged user {TEST_USER!r} for sshd")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run sshd unprivileged")
    return user.pw_uid, user.pw_gid, user.pw_name


@pytest.fixture
def sshd(actor: Actor) -> Iterator[SshServer]:
    if MISSING:
        pytest.skip(f"missing: {', '.join(MISSING)}")
    address = _host_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address for sshd")
    uid, gid, user = _server_user()
    directory = actor.base / "sshd"
    directory.mkdir()
    host_public = _keygen(directory / "host_key")
    bare = directory / "bare.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    (directory / "authorized_keys").write_text("")
    with socket.socket() as probe:
        probe.bind((address, 0))
        port = probe.getsockname()[1]
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {directory}/host_key\n"
        f"AuthorizedKeysFile {directory}/authorized_keys\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
        "PubkeyAuthentication yes\nLogLevel VERBOSE\n"
    )
    for root, dirs, files in os.walk(directory):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), uid, gid)
    os.chown(directory, uid, gid)
    log = directory / "sshd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            _as(uid, gid, [str(SSHD), "-D", "-e", "-f", str(config)]),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        _wait_until(lambda: _accepts(address, port) or process.poll() is not None, 20, "sshd listening")
        if process.poll() is not None:
            raise AssertionError(f"sshd did not start: {log.read_text()}")
        yield SshServer(address, port, user, directory, host_public, bare, log)
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def client(actor: Actor, sshd: SshServer) -> SshClient:
    """The actor's ssh set-up in a home of this test's own: a key sshd accepts, known_hosts with the
    server's key, and `ssh.agent = true` in corral's config."""
    home = actor.own_dir / "sshhome"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    key = home / ".ssh" / "id_ed25519"
    public = _keygen(key)
    (sshd.directory / "authorized_keys").write_text(public + "\n")
    known = f"[{sshd.address}]:{sshd.port} {' '.join(sshd.host_public.split()[:2])}\n"
    (home / ".ssh" / "known_hosts").write_text(known)
    config = actor.state_home / ".config" / "corral" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        config.read_text() + "\n[ssh]\nagent = true\n" if config.exists() else "[ssh]\nagent = true\n"
    )
    actor.env["HOME"] = str(home)
    actor.chown_tree(actor.own_dir)
    actor.chown_tree(actor.state_home / ".config")
    lines = key.read_text().splitlines()
    return SshClient(home, key, public, lines[len(lines) // 2])


SSH = 'ssh -o BatchMode=yes -o UserKnownHostsFile="$HOME/.ssh/known_hosts"'
"""ssh inside: known_hosts of $HOME (ssh itself reads the passwd entry's home, which the tests' homes are not)."""


def _commit(actor: Actor) -> str:
    git = ["git", "-c", "safe.directory=*", "-C", str(actor.workspace)]
    subprocess.run(
        [
            *git,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ],
        check=True,
    )
    actor.chown_tree(actor.workspace)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


# --- end to end ----------------------------------------------------------------------------------


@needs_openssh
@pytest.mark.backends("bwrap")
def test_ssh_and_git_push_work_with_the_key_outside(actor: Actor, sshd: SshServer, client: SshClient) -> None:
    head = _commit(actor)
    script = f"""
        ssh-add -D; echo "remove-all=$?"
        ssh-keygen -q -t ed25519 -N '' -f /tmp/inside_key && ssh-add /tmp/inside_key; echo "add=$?"
        echo "--- listed"; ssh-add -L; echo "--- end"
        {SSH} -p {sshd.port} {sshd.user}@{sshd.address} true; echo "ssh=$?"
        GIT_SSH_COMMAND='{SSH}' git push -q {sshd.url()} HEAD:refs/heads/main; echo "push=$?"
        GIT_SSH_COMMAND='{SSH}' git fetch -q {sshd.url()} main; echo "fetch=$?"
        cat "$HOME/.ssh/id_ed25519" 2>/dev/null | head -c 100 | grep -c PRIVATE; echo "read=done"
        for place in "$HOME" /tmp /run /var/tmp /dev/shm "$PWD"; do
            grep -rqsF -- '{client.private_line}' "$place" && echo "LEAK in $place"
        done
        cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -qsF -- '{client.private_line}' && echo "LEAK in environ"
        echo "sock=$SSH_AUTH_SOCK"
    """
    result = actor.run(
        "run", "--on-violation", "deny", "--allow-host", sshd.address, "-c", script, timeout=180
    )
    out = result.stdout
    assert "ssh=0" in out, out + result.stderr + sshd.log.read_text()
    assert "push=0" in out and "fetch=0" in out, out + result.stderr
    pushed = subprocess.run(
        ["git", "-c", "safe.directory=*", "--git-dir", str(sshd.bare), "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert pushed.stdout.strip() == head
    # The agent's management is refused; the key corral holds is still there (ssh worked after -D).
    assert "remove-all=0" not in out and "remove-all=" in out
    assert "add=0" not in out and "add=" in out
    listed = out.split("--- listed\n", 1)[1].split("--- end", 1)[0].strip().splitlines()
    assert listed == [client.public]
    assert "PRIVATE" not in out.split("--- listed", 1)[1].split("--- end", 1)[0]
    # The key file is a stand-in inside; its bytes appear nowhere the sandbox can read.
    assert "LEAK" not in out and client.private_line not in out + result.stderr
    assert "sock=/run/corral/ssh-agent.sock" in out
    assert "read=done" in out and not re.search(r"^[1-9]\d*\nread=done", out, re.M)
    assert "Accepted publickey" in sshd.log.read_text()


@needs_openssh
@pytest.mark.backends("bwrap")
def test_signing_for_a_host_the_person_did_not_vouch_for_is_refused(
    actor: Actor, sshd: SshServer, client: SshClient
) -> None:
    """The connection is allowed, but the person's known_hosts gives this host key to another
    destination: ssh inside trusts it (its own known_hosts in /tmp), corral's agent does not sign, and
    says so. A sign request with no session-bind before it is refused too."""
    (client.home / ".ssh" / "known_hosts").write_text(
        f"[other.invalid]:{sshd.port} {' '.join(sshd.host_public.split()[:2])}\n"
    )
    actor.chown_tree(client.home)
    blob = base64.b64decode(client.public.split()[1])
    raw_sign = (
        "python3 -c 'import os, socket, struct\n"
        's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(os.environ["SSH_AUTH_SOCK"])\n'
        f'key = bytes.fromhex("{blob.hex()}")\n'
        'body = bytes([13]) + struct.pack("!I", len(key)) + key + struct.pack("!I", 4) + b"data" + bytes(4)\n'
        's.sendall(struct.pack("!I", len(body)) + body); print("raw-sign", s.recv(5)[4])\''
    )
    script = f"""
        ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/tmp/kh \
            -p {sshd.port} {sshd.user}@{sshd.address} true; echo "ssh=$?"
        {raw_sign}
    """
    report_path = actor.base / "report.json"
    result = actor.run(
        "run",
        "--on-violation",
        "deny",
        "--report",
        str(report_path),
        "--allow-host",
        sshd.address,
        "-c",
        script,
        timeout=120,
    )
    assert "ssh=255" in result.stdout, result.stdout + result.stderr
    assert "raw-sign 5" in result.stdout  # SSH_AGENT_FAILURE
    assert result.returncode == 77, result.stderr
    assert "refused net-credential ssh host key SHA256:" in result.stderr
    assert "known_hosts" in result.stderr
    assert "no verified session-bind" in result.stderr
    assert "Accepted publickey" not in sshd.log.read_text()
    report = json.loads(report_path.read_text())
    crossed = json.dumps(report)
    assert "ssh-sign" in crossed and "ssh host key SHA256:" in crossed, crossed


@needs_openssh
@pytest.mark.backends("bwrap")
def test_unix_sockets_reach_only_the_agent(actor: Actor, client: SshClient) -> None:
    """With the agent offered, a Unix socket on the host (docker.sock-like), an abstract one and a
    datagram socket stay unreachable: the host server sees no connection."""
    path = actor.own_dir / "daemon.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o777)
    listener.listen()
    listener.settimeout(0.5)
    seen: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            seen.append(1)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    probe = (
        "python3 -c 'import socket, sys\n"
        'for target in (sys.argv[1], "\\0corral-abstract"):\n'
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        '    try: s.connect(target); print("CONNECTED")\n'
        '    except OSError as e: print("refused", e.errno)\n'
        'try: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); print("DGRAM")\n'
        'except OSError as e: print("dgram-refused", e.errno)\n'
        f"' {path}"
    )
    try:
        result = actor.run(
            "run",
            "--on-violation",
            "deny",
            "-c",
            f"{probe}; curl -s --unix-socket {path} http://x/ || echo curl-refused",
        )
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert result.stdout.count("refused 111") == 2, result.stdout + result.stderr
    assert "dgram-refused 1" in result.stdout and "curl-refused" in result.stdout
    assert "CONNECTED" not in result.stdout and "DGRAM" not in result.stdout
    assert seen == []


@needs_openssh
@pytest.mark.backends("bwrap")
def test_git_push_over_ssh_from_a_live_session(actor: Actor, sshd: SshServer, client: SshClient) -> None:
    """An agent's `corral run` joins a headless `corral session`: the session's sandbox gets the agent."""
    head = _commit(actor)
    config = actor.state_home / ".config" / "corral" / "config.toml"
    config.write_text(config.read_text() + f'\n[network]\nallow = ["{sshd.address}"]\n')
    actor.chown_tree(actor.state_home / ".config")
    log = actor.base / "session.log"
    with open(log, "wb") as out:
        owner = subprocess.Popen(
            _as(actor.uid, actor.gid, [CORRAL, "session"]),
            cwd=actor.workspace,
            env=actor.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        sessions = actor.base / "run" / "corral" / "sessions"
        _wait_until(lambda: bool(list(sessions.glob("*.sock"))), 60, "the session serving")
        script = f"GIT_SSH_COMMAND='{SSH}' git push -q {sshd.url()} HEAD:refs/heads/live 2>&1; echo push=$?"
        result = actor.run("run", "-c", script, timeout=180)
        assert "push=0" in result.stdout, (
            result.stdout + result.stderr + log.read_text() + sshd.log.read_text()
        )
        # It ran in the session (announced there), not standalone.
        _wait_until(lambda: "git push" in log.read_text(), 30, "the session announcing the command")
    finally:
        owner.terminate()
        try:
            owner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            owner.kill()
            owner.wait()
    pushed = subprocess.run(
        ["git", "-c", "safe.directory=*", "--git-dir", str(sshd.bare), "rev-parse", "live"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert pushed.stdout.strip() == head


@needs_openssh
@pytest.mark.backends("bwrap")
def test_policy_shows_the_agent(actor: Actor, client: SshClient) -> None:
    shown = actor.run("policy", "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["network"]["ssh_agent"] == "/run/corral/ssh-agent.sock"
    assert str(client.home / ".ssh" / "known_hosts") in view["filesystem"]["readable"]
    assert str(client.key) not in view["filesystem"]["readable"]
    text = actor.run("policy").stdout
    assert "ssh agent: SSH_AUTH_SOCK=/run/corral/ssh-agent.sock" in text


def test_agent_asked_for_but_not_offered_says_why(isolated_home: Path) -> None:
    """`ssh.agent = true` with no agent and no key file: one warning line, and the sandbox keeps
    refusing Unix sockets as without it."""
    config = isolated_home / ".config" / "corral" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[ssh]\nagent = true\n")
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    probe = "import socket\ntry:\n    socket.socket(socket.AF_UNIX)\n    print('made')\nexcept OSError as e:\n    print('errno', e.errno)"
    done = subprocess.run(
        [CORRAL, "run", "--", "python3", "-c", probe],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout == "errno 1\n", done.stdout + done.stderr
    assert "ssh.agent is on, but no ssh agent is offered inside: no agent to offer" in done.stderr


# --- the filter against a real ssh-agent ---------------------------------------------------------


def _string(data: bytes) -> bytes:
    return struct.pack("!I", len(data)) + data


@dataclass
class Agent:
    path: str
    public_blob: bytes
    public: ed25519.Ed25519PublicKey


@pytest.fixture
def real_agent(tmp_path: Path) -> Iterator[Agent]:
    if MISSING:
        pytest.skip(f"missing: {', '.join(MISSING)}")
    key = tmp_path / "id_ed25519"
    public_line = _keygen(key)
    path = str(tmp_path / "agent.sock")
    process = subprocess.Popen(
        ["ssh-agent", "-D", "-a", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_until(lambda: _unix_accepts(path), 10, "ssh-agent listening")
        subprocess.run(
            ["ssh-add", str(key)], env={**os.environ, "SSH_AUTH_SOCK": path}, capture_output=True, check=True
        )
        loaded = serialization.load_ssh_public_key(public_line.encode())
        assert isinstance(loaded, ed25519.Ed25519PublicKey)
        yield Agent(path, base64.b64decode(public_line.split()[1]), loaded)
    finally:
        process.kill()
        process.wait()


class Harness:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.allowed: dict[bytes, str] = {}
        self.refusals: list[tuple[str, str]] = []

        def upstream() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(agent.path)
            return sock

        self.filter = sshagent.AgentFilter(
            upstream, self.allowed.get, lambda target, reason: self.refusals.append((target, reason))
        )

    def connect(self) -> socket.socket:
        ours, theirs = socket.socketpair()
        threading.Thread(target=self.filter.serve, args=(ours,), daemon=True).start()
        theirs.settimeout(10)
        return theirs

    @staticmethod
    def ask(sock: socket.socket, payload: bytes) -> bytes:
        sock.sendall(sshagent.frame(payload))
        reply = sshagent.read_frame(sock)
        assert reply is not None
        return reply

    def identities(self) -> list[bytes]:
        with self.connect() as sock:
            reply = sshagent._Reader(self.ask(sock, bytes([sshagent.REQUEST_IDENTITIES]))[1:])
            blobs = []
            for _ in range(reply.uint32()):
                blobs.append(reply.string())
                reply.string()  # comment
            return blobs


def _bind(
    host_key: HostKey, blob: bytes, session_id: bytes, *, forwarding: int = 0, tamper: bool = False
) -> bytes:
    data = session_id + (b"x" if tamper else b"")
    if isinstance(host_key, ed25519.Ed25519PrivateKey):
        signature = _string(b"ssh-ed25519") + _string(host_key.sign(data))
    elif isinstance(host_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(host_key.sign(data, ec.ECDSA(hashes.SHA256())))
        mp = b"".join(_string(n.to_bytes((n.bit_length() + 8) // 8, "big")) for n in (r, s))
        signature = _string(b"ecdsa-sha2-nistp256") + _string(mp)
    else:
        assert isinstance(host_key, rsa.RSAPrivateKey)
        signature = _string(b"rsa-sha2-512") + _string(
            host_key.sign(data, padding.PKCS1v15(), hashes.SHA512())
        )
    return (
        bytes([sshagent.EXTENSION])
        + _string(sshagent.SESSION_BIND)
        + _string(blob)
        + _string(session_id)
        + _string(signature)
        + bytes([forwarding])
    )


def _host_blob(host_key: HostKey) -> bytes:
    public = host_key.public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def _userauth(session_id: bytes, key: bytes) -> bytes:
    return (
        _string(session_id)
        + bytes([50])
        + _string(b"git")
        + _string(b"ssh-connection")
        + _string(b"publickey")
        + bytes([1])
        + _string(b"ssh-ed25519")
        + _string(key)
    )


def _sign(key: bytes, data: bytes) -> bytes:
    return bytes([sshagent.SIGN_REQUEST]) + _string(key) + _string(data) + struct.pack("!I", 0)


HostKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _new_host_key(kind: str) -> HostKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


HOST_KEYS = ("ecdsa", "ed25519", "rsa")


@needs_openssh
@pytest.mark.parametrize("kind", HOST_KEYS)
def test_filter_signs_only_after_a_verified_bind_for_an_allowed_host(real_agent: Agent, kind: str) -> None:
    harness = Harness(real_agent)
    host_key = _new_host_key(kind)
    blob = _host_blob(host_key)
    sid = os.urandom(32)
    data = _userauth(sid, real_agent.public_blob)
    with harness.connect() as sock:
        # Before any bind: refused.
        assert harness.ask(sock, _sign(real_agent.public_blob, data)) == bytes([sshagent.FAILURE])
        # A bind whose signature does not verify: refused and reported.
        assert harness.ask(sock, _bind(host_key, blob, sid, tamper=True)) == bytes([sshagent.FAILURE])
        assert harness.ask(sock, _sign(real_agent.public_blob, data)) == bytes([sshagent.FAILURE])
        # A verified bind for a host key no allowed host has: refused and reported.
        assert harness.ask(sock, _bind(host_key, blob, sid)) == bytes([sshagent.SUCCESS])
        assert harness.ask(sock, _sign(real_agent.public_blob, data)) == bytes([sshagent.FAILURE])
        harness.allowed[blob] = "git.example:22"
        # For another session, or another key, or not a user-authentication: refused.
        assert harness.ask(
            sock, _sign(real_agent.public_blob, _userauth(os.urandom(32), real_agent.public_blob))
        ) == bytes([sshagent.FAILURE])
        assert harness.ask(sock, _sign(real_agent.public_blob, b"SSHSIG" + data)) == bytes([sshagent.FAILURE])
        # The real one: signed by the agent outside, with the client's key.
        reply = harness.ask(sock, _sign(real_agent.public_blob, data))
        assert reply[0] == sshagent.SIGN_RESPONSE
        signature = sshagent._Reader(sshagent._Reader(reply[1:]).string())
        assert signature.string() == b"ssh-ed25519"
        real_agent.public.verify(signature.string(), data)
    reasons = " | ".join(reason for _, reason in harness.refusals)
    assert "no verified session-bind" in reasons
    assert "session-bind signature does not verify" in reasons
    assert "known_hosts" in reasons
    assert "did not bind" in reasons and "the data is" in reasons
    assert all(target.startswith("ssh ") or target == "ssh agent" for target, _ in harness.refusals)


@needs_openssh
def test_filter_refuses_forwarded_connections(real_agent: Agent) -> None:
    harness = Harness(real_agent)
    host_key = ed25519.Ed25519PrivateKey.generate()
    blob = _host_blob(host_key)
    harness.allowed[blob] = "git.example:22"
    sid = os.urandom(32)
    with harness.connect() as sock:
        assert harness.ask(sock, _bind(host_key, blob, sid, forwarding=1)) == bytes([sshagent.SUCCESS])
        assert harness.ask(
            sock, _sign(real_agent.public_blob, _userauth(sid, real_agent.public_blob))
        ) == bytes([sshagent.FAILURE])
    assert "forwarded" in harness.refusals[-1][1]


@needs_openssh
def test_filter_fuzz(real_agent: Agent) -> None:
    """Every message type but the three it serves is refused and never reaches the agent outside (its
    key is still there after REMOVE_ALL, LOCK and friends); random frames are refused or end only their
    own connection; an oversized frame ends its connection; other connections keep working."""
    harness = Harness(real_agent)
    rng = random.Random(17)
    with harness.connect() as sock:
        for kind in range(256):
            if kind in (sshagent.REQUEST_IDENTITIES, sshagent.SIGN_REQUEST, sshagent.EXTENSION):
                continue
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
            assert harness.ask(sock, bytes([kind]) + body) == bytes([sshagent.FAILURE]), kind
        # The ones it serves, malformed: refused, the connection stays usable.
        for payload in (
            bytes([sshagent.REQUEST_IDENTITIES, 0]),
            bytes([sshagent.SIGN_REQUEST]) + b"\xff\xff\xff\xff",
            bytes([sshagent.SIGN_REQUEST]) + _string(b"k"),
            bytes([sshagent.EXTENSION]) + _string(b"query"),
            bytes([sshagent.EXTENSION]) + _string(sshagent.SESSION_BIND) + _string(b"x"),
            bytes([sshagent.EXTENSION]) + b"\x00\x00",
        ):
            assert harness.ask(sock, payload) == bytes([sshagent.FAILURE]), payload
        assert harness.ask(sock, bytes([sshagent.REQUEST_IDENTITIES]))[0] == sshagent.IDENTITIES_ANSWER
    for _ in range(200):
        with harness.connect() as sock:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            sock.sendall(sshagent.frame(body))
            reply = sshagent.read_frame(sock)
            assert reply is not None
            assert reply[0] in (sshagent.FAILURE, sshagent.IDENTITIES_ANSWER), body
    with harness.connect() as sock:
        sock.sendall(struct.pack("!I", sshagent.MAX_MESSAGE + 1) + b"x" * 100)
        assert _ended(sock)  # that connection ends
    with harness.connect() as sock:
        sock.sendall(struct.pack("!I", 0))
        assert _ended(sock)
    assert harness.identities() == [real_agent.public_blob]


def _ended(sock: socket.socket) -> bool:
    """The filter closed this connection (with or without unread input: FIN or RST)."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


# --- known_hosts ---------------------------------------------------------------------------------


def test_known_hosts_lookup() -> None:
    import hashlib
    import hmac

    key = ed25519.Ed25519PrivateKey.generate()
    blob = _host_blob(key)
    b64 = base64.b64encode(blob).decode()
    other = base64.b64encode(_host_blob(ed25519.Ed25519PrivateKey.generate())).decode()
    salt = os.urandom(20)
    hashed = "|1|{}|{}".format(
        base64.b64encode(salt).decode(),
        base64.b64encode(hmac.new(salt, b"hidden.example", hashlib.sha1).digest()).decode(),
    )
    text = (
        f"# comment\n[git.example]:2222 ssh-ed25519 {b64}\n{hashed} ssh-ed25519 {b64}\n"
        f"*.wild.example,!bad.wild.example ssh-ed25519 {b64}\nplain.example ssh-ed25519 {other}\n"
        f"@cert-authority ca.example ssh-ed25519 {b64}\n"
    )
    assert host_with_key(text, blob, [("git.example", 2222)]) == "[git.example]:2222"
    assert host_with_key(text, blob, [("git.example", 22)]) is None  # the port is part of the name
    assert host_with_key(text, blob, [("hidden.example", 22)]) == "hidden.example"
    assert host_with_key(text, blob, [("a.wild.example", 22)]) == "a.wild.example"
    assert host_with_key(text, blob, [("bad.wild.example", 22)]) is None
    assert host_with_key(text, blob, [("plain.example", 22), ("ca.example", 22)]) is None
    assert host_with_key(f"[g1t.example]:2222 ssh-ed25519 {b64}\n", blob, [("git.example", 2222)]) is None
    revoked = text + f"@revoked * ssh-ed25519 {b64}\n"
    assert host_with_key(revoked, blob, [("git.example", 2222)]) is None


# --- a key with a passphrase: asked on the person's terminal -------------------------------------


def _screen(base: list[str]) -> str:
    return subprocess.run([*base, "capture-pane", "-p", "-t", "t"], capture_output=True, text=True).stdout


@needs_openssh
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_passphrase_is_asked_on_the_terminal_only(isolated_home: Path, tmp_path: Path) -> None:
    """corral starts its agent from a key that needs a passphrase: `corral run` on a terminal lets
    ssh-add ask there (typed in tmux), and the key is listed inside; with no terminal nothing is asked
    and no key is loaded (nothing hangs)."""
    ssh_dir = isolated_home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    key = ssh_dir / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "open sesame", "-C", "with-pass", "-f", str(key)],
        check=True,
    )
    public = key.with_name("id_ed25519.pub").read_text().split()[1]
    config = isolated_home / ".config" / "corral" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[ssh]\nagent = true\n")
    workspace = isolated_home / "project"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "SSH_AUTH_SOCK" and not k.startswith(("SSH_ASKPASS", "DISPLAY"))
    }
    quiet = subprocess.run(
        [CORRAL, "run", "-c", "ssh-add -L; echo listed=$?"],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # no controlling terminal
    )
    assert "listed=1" in quiet.stdout and public not in quiet.stdout, quiet.stdout + quiet.stderr
    base = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    exports = " ".join(
        f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith(("XDG_", "HOME", "PATH"))
    )
    inner = f"cd {shlex.quote(str(workspace))} && env -u SSH_AUTH_SOCK {exports} {CORRAL} run -c 'ssh-add -L'; echo EXIT=$?; sleep 60"
    subprocess.run([*base, "new-session", "-d", "-x", "200", "-y", "40", "-s", "t", inner], check=True)
    try:
        try:
            _wait_until(
                lambda: "passphrase" in _screen(base).lower(), 30, "ssh-add asking for the passphrase"
            )
        except AssertionError:
            raise AssertionError(_screen(base)) from None
        subprocess.run([*base, "send-keys", "-t", "t", "open sesame", "Enter"], check=True)
        _wait_until(lambda: "EXIT=" in _screen(base), 60, "the command ending")
        screen = _screen(base)
        assert "EXIT=0" in screen and public[:40] in screen.replace("\n", ""), screen
        assert "open sesame" not in screen
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, check=False)
