"""`corral run --backend gvisor` for real, as root and as an unprivileged user: the command sees gVisor's
kernel, and the boundary around it is bwrap's, unchanged (capture and apply, decoys and reported reads,
protected paths, the proxy, no Unix sockets to host daemons), checked on the host afterwards.

These few run in the default suite; every escape test runs against gVisor too (`-m slow`, see
`SANDBOX_BACKENDS` in tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RUNSC_MISSING, SECRET, Actor
from tests.test_escape_sockets import PY_UNIX_CONNECT, unix_server
from tests.test_escape_support import assert_denied_under, denied_kinds

pytestmark = pytest.mark.skipif(RUNSC_MISSING is not None, reason=f"gVisor backend: {RUNSC_MISSING}")


def gvisor(actor: Actor, script: str) -> tuple[int, str, str]:
    done = actor.run("run", "--backend", "gvisor", "--on-violation", "deny", "-c", script)
    return done.returncode, done.stdout, done.stderr


def test_the_command_sees_gvisors_kernel_and_keeps_its_exit_status(actor: Actor) -> None:
    host_kernel = Path("/proc/version").read_text()
    status, out, err = gvisor(actor, "cat /proc/version; id -u; exit 7")
    assert status == 7, err
    assert "enforces less" not in err  # gVisor adds a kernel; it takes nothing away from bwrap's boundary
    seen, uid = out.splitlines()[:2]
    assert seen.strip() != host_kernel.strip() and "4.4.0" in seen  # gVisor's, not the host's
    assert uid == "0"  # root of gVisor's own user namespace, mapped to the caller outside


def test_capture_apply_decoys_and_protected_paths_are_bwraps(actor: Actor) -> None:
    outside = actor.outside / "escaped.txt"
    script = f"""
        echo made > made.txt
        echo evil > {outside}
        echo hook > .git/hooks/pre-commit
        cat ~/.ssh/id_rsa ~/.aws/credentials
        echo end
    """
    status, out, err = gvisor(actor, script)
    assert "end" in out, err
    assert (actor.workspace / "made.txt").read_text() == "made\n"  # workspace writes applied
    assert not outside.exists()  # captured, denied, discarded
    assert not (actor.workspace / ".git/hooks/pre-commit").exists()
    assert SECRET not in out + err
    assert_denied_under(err, "fs-write", outside, actor.home)
    assert_denied_under(err, "fs-protected", actor.workspace / ".git/hooks/pre-commit")
    assert_denied_under(err, "fs-read", actor.home / ".ssh/id_rsa", actor.home)
    assert_denied_under(err, "fs-read", actor.home / ".aws/credentials", actor.home)
    assert status == 77


def test_no_unix_socket_or_direct_network_and_the_proxy_still_decides(actor: Actor) -> None:
    """runsc needs AF_UNIX at bwrap's layer; the command still reaches no host socket through gVisor."""
    sock = actor.workspace / "daemon.sock"
    with unix_server(sock, actor) as server:
        script = f"""
            {PY_UNIX_CONNECT} {sock}
            curl -sS --noproxy '*' --max-time 3 http://1.1.1.1/ >/dev/null 2>&1 || echo direct-refused
            curl -sS --max-time 10 -o /dev/null https://example.com/ 2>&1 || echo proxy-refused
            ls -a /dev/shm /tmp
            echo end
        """
        _status, out, err = gvisor(actor, script)
        assert server.connections == 0
    assert "end" in out, err
    assert "CONNECTED" not in out and "unix-refused" in out
    assert "direct-refused" in out and "proxy-refused" in out
    assert "net" in denied_kinds(err)  # the proxy saw the host and denied it
    assert ".corral-runsc" not in out and "runsc-do" not in out  # runsc's state is out of sight


def test_doctor_names_the_runsc_and_what_the_tier_costs(actor: Actor) -> None:
    done = actor.run("doctor", "--backend", "gvisor")
    assert "ok   backend: gVisor (runsc) inside bubblewrap; gvisor: asked for by --backend" in done.stdout
    assert (
        "runsc: /usr/bin/runsc (runsc version" in done.stdout or "runsc: /usr/local/bin/runsc" in done.stdout
    )
    assert "cannot (compared with bwrap): costs more:" in done.stdout
