"""Resource bounds and the socket-family allow-list, with the real bubblewrap, as root and as an
unprivileged user (`sandbox.limits`, `sandbox.seccomp`).

The principle: a sandboxed command cannot make the host unusable — its processes and threads are
bounded (a cgroup where one can be made, else RLIMIT_NPROC inside the sandbox's own user namespace),
every tmpfs it can write has a size, what cannot be sized is read-only — and running into a bound is
reported in one line, not silent. Sockets: only the families on the allow-list can be created; each
refused family is shown to work on the host first (the control), so the refusal is the filter's.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sandbox.bwrap import build_argv, prepare_layout, remove_run_dir
from sandbox.limits import (
    MIB,
    cgroup_name,
    default_limits,
    detect_mechanism,
    physical_memory,
    sweep_stale_cgroups,
)
from sandbox.policy import build_policy
from tests.conftest import Actor

PROCESS_LIMIT = 96
TMPFS_MIB = 16


def _limit(actor: Actor, **values: int) -> None:
    """Write the actor's `[limits]` settings (the user's own config, never the repository's)."""
    config = actor.state_home / ".config" / "corral"
    config.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{key} = {value}\n" for key, value in values.items())
    (config / "config.toml").write_text(f"[limits]\n{body}")
    actor.chown_tree(actor.state_home / ".config")


FORK_PROBE = """
import os, time
count = 0
try:
    while count < 100000:
        if os.fork() == 0:
            time.sleep(2)
            os._exit(0)
        count += 1
except OSError as error:
    print("refused", error.errno)
print("forks", count, flush=True)
time.sleep(0.6)
"""


def _host_can_fork() -> bool:
    return subprocess.run(["true"], check=False, timeout=10).returncode == 0


def test_fork_bomb_is_bounded_and_reported(actor: Actor) -> None:
    """Forking until the kernel says no stops at the process limit (EAGAIN), the host keeps forking
    while the sandbox holds every process it could make, and stderr names the limit."""
    _limit(actor, processes=PROCESS_LIMIT)
    (actor.workspace / "forks.py").write_text(FORK_PROBE)
    actor.chown_tree(actor.workspace)
    host_forks: list[bool] = []
    stop = threading.Event()

    def keep_forking() -> None:
        while not stop.is_set():
            host_forks.append(_host_can_fork())
            time.sleep(0.1)

    helper = threading.Thread(target=keep_forking)
    helper.start()
    try:
        started = time.monotonic()
        result = actor.sandboxed("python3 forks.py")
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        helper.join()
    assert f"refused {errno.EAGAIN}" in result.stdout, result.stdout + result.stderr
    forks = int(result.stdout.split("forks ")[1].split()[0])
    assert 0 < forks < PROCESS_LIMIT
    assert host_forks and all(host_forks)
    assert elapsed < 30
    assert f"resource limit: the command reached its process limit ({PROCESS_LIMIT}" in result.stderr


def test_shell_fork_bomb_ends_and_host_stays_usable(actor: Actor) -> None:
    """The classic recursive shell bomb, kept alive for two seconds: the command ends, nothing it
    started survives, the host can still fork, and the bound is reported."""
    _limit(actor, processes=PROCESS_LIMIT)
    result = actor.run(
        "run",
        "--on-violation",
        "deny",
        "-c",
        "bomb() { bomb | bomb & }; bomb; sleep 2",
        timeout=60,
    )
    # The bomb may starve the shell itself of forks (`sleep` then fails): what matters is that the run
    # ends, the host forks, nothing survives, and the bound is named.
    assert "process limit" in result.stderr
    assert _host_can_fork()
    assert _processes_running(b"bomb | bomb &") == []


def _processes_running(marker: bytes) -> list[int]:
    """Host pids whose command line contains `marker`."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and int(entry) != os.getpid():
                found.append(int(entry))
    return found


@pytest.mark.parametrize("target", ["/var/tmp/fill", "/dev/shm/fill"])
def test_tmpfs_fill_is_bounded_and_reported(actor: Actor, target: str) -> None:
    """`head -c 60G /dev/zero` into each writable tmpfs stops at its size with ENOSPC, and stderr says
    which one filled up. (/tmp is the project's or the session's own directory on disk, bounded by
    `sandbox.tmpquota`: tests/test_session_place.py.)"""
    _limit(actor, tmpfs_mib=TMPFS_MIB)
    directory = str(Path(target).parent)
    result = actor.sandboxed(
        f"head -c 60G /dev/zero > {target}; echo status $?; stat -c 'size %s' {target}; sleep 0.6"
    )
    assert "status 1" in result.stdout
    size = int(result.stdout.split("size ")[1].split()[0])
    assert 0 < size <= TMPFS_MIB * MIB
    assert "No space left on device" in result.stderr
    assert f"resource limit: {directory} inside the sandbox is full ({TMPFS_MIB} MiB)" in result.stderr


@pytest.mark.bwrap_only(
    "under gVisor /dev is gVisor's own tmpfs (in its memory, bounded with it); corral's state stays read-only"
)
def test_dev_and_corral_state_are_read_only(actor: Actor) -> None:
    """bwrap's /dev (a tmpfs that cannot be sized) and corral's blanked state directories refuse new
    files: neither is a place to fill memory or plant state."""
    data = actor.state_home / ".local" / "share" / "corral"
    result = actor.sandboxed(
        f"echo x > /dev/planted; echo dev $?; echo x > {data}/planted; echo state $?; echo ok > /dev/null; echo null $?"
    )
    assert "dev 0" not in result.stdout and "dev " in result.stdout, result.stdout + result.stderr
    assert "state 0" not in result.stdout and "state " in result.stdout
    assert "null 0" in result.stdout
    assert "Read-only file system" in result.stderr
    assert not (data / "planted").exists()


def test_every_tmpfs_in_the_argv_has_a_size(tmp_path: Path) -> None:
    """The bwrap argv: `--size` right before every `--tmpfs`, and the default sizes bounded by memory."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    policy = build_policy(
        workspace=workspace, cwd=workspace, home=home, environ={"PATH": "/usr/bin"}, own_state=[state]
    )
    run_dir = tmp_path / "run"
    layout = prepare_layout(policy, run_dir, None)
    try:
        argv = build_argv(Path("/usr/bin/bwrap"), policy, layout, ["true"], seccomp_fd=3)
    finally:
        remove_run_dir(run_dir)
    positions = [i for i, arg in enumerate(argv) if arg == "--tmpfs"]
    assert len(positions) >= 3  # /dev/shm, /tmp, the blanked state
    for i in positions:
        assert argv[i - 2] == "--size" and int(argv[i - 1]) > 0
    pairs = set(itertools.pairwise(argv))
    assert ("--remount-ro", "/dev") in pairs
    assert ("--remount-ro", str(state)) in pairs
    limits = default_limits()
    assert limits.tmpfs_bytes <= physical_memory() // 4
    assert limits.max_memory_bytes <= physical_memory() // 2


FAMILY_PROBE = """
import socket, sys
family, kind, protocol = (int(x) for x in sys.argv[1:4])
try:
    socket.socket(family, kind, protocol).close()
    print("created")
except OSError as error:
    print("errno", error.errno)
"""

REFUSED_FAMILIES = {
    "AF_UNIX": (socket.AF_UNIX, socket.SOCK_STREAM, 0),
    "AF_VSOCK": (40, socket.SOCK_STREAM, 0),
    "AF_PACKET": (17, socket.SOCK_RAW, 0),
    "AF_ALG": (38, socket.SOCK_SEQPACKET, 0),
    "AF_NETLINK audit": (16, socket.SOCK_RAW, 9),
    "AF_NETLINK generic": (16, socket.SOCK_RAW, 16),
    "AF_NETLINK uevent": (16, socket.SOCK_RAW, 15),
    "AF_BLUETOOTH": (31, socket.SOCK_STREAM, 3),
    "AF_TIPC": (30, socket.SOCK_RDM, 0),
    "AF_UNIX with high bits": (0x1_0000_0001, socket.SOCK_STREAM, 0),
}


def _host_creates(family: int, kind: int, protocol: int) -> bool:
    try:
        socket.socket(family & 0xFFFFFFFF, kind, protocol).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(REFUSED_FAMILIES))
@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_socket_family_outside_the_allow_list_is_refused(
    actor: Actor, name: str, sandbox_backend: str
) -> None:
    """Each family works on the host (control, with the same uid where it matters) and fails with
    EPERM in the sandbox — the filter's answer, not the kernel's lack of support. Under gVisor the
    command's socket() goes to gVisor's kernel, which refuses with its own errno; its AF_UNIX sockets are
    its own and reach no host socket (test_U01)."""
    if sandbox_backend == "gvisor" and name.startswith("AF_UNIX"):
        pytest.skip("under gVisor AF_UNIX sockets are gVisor's own (no host socket is reachable: test_U01)")
    if sandbox_backend == "gvisor" and name == "AF_NETLINK uevent":
        pytest.skip(
            "under gVisor a uevent netlink socket is gVisor's own stand-in (no host socket behind it)"
        )
    family, kind, protocol = REFUSED_FAMILIES[name]
    (actor.workspace / "family.py").write_text(FAMILY_PROBE)
    actor.chown_tree(actor.workspace)
    if name == "AF_UNIX with high bits":
        # The kernel reads the low 32 bits; Python rejects such a value, so make the raw syscall.
        script = (
            "import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"fd = libc.syscall(41, ctypes.c_long({family}), {kind}, {protocol})\n"
            "print('created' if fd >= 0 else f'errno {ctypes.get_errno()}')\n"
        )
        (actor.workspace / "family.py").write_text(script)
        host = subprocess.run(["python3", str(actor.workspace / "family.py")], capture_output=True, text=True)
        assert "created" in host.stdout  # control: the kernel takes it as AF_UNIX
    elif not _host_creates(family, kind, protocol):
        pytest.skip(f"{name} is not available on this host's kernel: no control, nothing to prove")
    result = actor.sandboxed(f"python3 family.py {family} {kind} {protocol}")
    if sandbox_backend == "gvisor":
        assert "errno " in result.stdout and "created" not in result.stdout, result.stdout + result.stderr
        return
    assert f"errno {errno.EPERM}" in result.stdout, result.stdout + result.stderr


def test_allowed_socket_families_work(actor: Actor) -> None:
    """AF_INET/AF_INET6 sockets, an AF_UNIX socketpair and a NETLINK_ROUTE query (getifaddrs: Node's
    os.networkInterfaces) work, and the only interface a sandboxed command sees is its own loopback."""
    script = (
        "import socket\n"
        "socket.socket(socket.AF_INET).close(); socket.socket(socket.AF_INET6).close()\n"
        "a, b = socket.socketpair(); a.sendall(b'x'); print('pair', b.recv(1))\n"
        "print('interfaces', [name for _, name in socket.if_nameindex()])\n"
    )
    (actor.workspace / "allowed.py").write_text(script)
    actor.chown_tree(actor.workspace)
    result = actor.sandboxed("python3 allowed.py")
    assert "pair b'x'" in result.stdout, result.stdout + result.stderr
    assert "interfaces ['lo']" in result.stdout
    assert os.path.exists("/sys/class/net/lo")


def test_stale_command_cgroups_are_swept() -> None:
    """A command cgroup left by a corral process that was killed mid-run is removed by the next
    runner; one whose maker still runs is kept."""
    mechanism = detect_mechanism(default_limits())
    if mechanism.cgroups is None:
        pytest.skip(f"no writable cgroup on this machine: {mechanism.detail}")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = mechanism.cgroups.pids / cgroup_name(dead.pid, "test")
    live = mechanism.cgroups.pids / cgroup_name(os.getpid(), "test")
    stale.mkdir()
    live.mkdir()
    try:
        assert sweep_stale_cgroups(mechanism.cgroups) >= 1
        assert not stale.exists()
        assert live.exists()
    finally:
        for path in (stale, live):
            if path.exists():
                path.rmdir()
