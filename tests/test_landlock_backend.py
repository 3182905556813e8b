"""`--backend landlock` for real (the kernel's Landlock, the real seccomp filters), as root and as an
unprivileged user: what it enforces, checked on the host afterwards, and the Landlock layer inside bwrap.

The attack-catalog families that apply to it run in the escape modules (`@pytest.mark.backends`); this
module checks what is particular to this backend: refused (not captured) writes, the per-command proxy
port on the host's loopback, TCP-only IP sockets, dropped capabilities, the private TMPDIR, and that
nothing the command starts outlives it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import SECRET, Actor

pytestmark = pytest.mark.backends("landlock")


def test_workspace_writes_land_and_writes_elsewhere_are_refused(actor: Actor) -> None:
    outside = actor.outside / "planted"
    etc = Path("/etc/corral-landlock-planted")
    result = actor.sandboxed(
        f"echo ok > control.txt; mkdir -p sub && echo deep > sub/f\n"
        f"echo x > {outside} 2>/dev/null || echo outside-refused\n"
        f"echo x > {etc} 2>/dev/null || echo etc-refused\n"
        f"touch ~/planted-in-home 2>/dev/null || echo home-refused\n"
    )
    assert (actor.workspace / "control.txt").read_text() == "ok\n", result.stderr
    assert (actor.workspace / "sub" / "f").read_text() == "deep\n"
    for word in ("outside-refused", "etc-refused", "home-refused"):
        assert word in result.stdout, result.stdout + result.stderr
    assert not outside.exists() and not etc.exists() and not (actor.home / "planted-in-home").exists()


def _report(actor: Actor, script: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    report = actor.base / "report.json"
    result = actor.run("run", "--on-violation", "deny", "--report", str(report), "-c", script)
    data = json.loads(report.read_text())
    assert isinstance(data, dict)
    return result, data


def _crossings(data: dict[str, object]) -> set[tuple[str, str, str]]:
    violations = data["violations"]
    assert isinstance(violations, list)
    return {(v["kind"], v["operation"], v["target"]) for v in violations}


def test_refused_writes_are_reported_by_path_as_the_kernel_resolves_them(actor: Actor) -> None:
    """Every refused write is one fs-write violation with its real path (relative to the caller's working
    directory, through a link in the workspace); reads, workspace writes and writes that fail for another
    reason are not; a delete is told, not asked. Denied: exit 77, and nothing changed on the host."""
    outside = actor.outside
    existing = outside / "existing.txt"
    existing.write_text("host\n")
    actor.chown_path(existing)
    etc = Path("/etc/corral-landlock-watch-probe")
    script = (
        f"echo ok > control.txt; mkdir -p sub; echo deep > sub/f; cat /etc/hostname > /dev/null\n"
        f"echo x > {outside}/new.txt; mkdir {outside}/newdir; echo more >> {existing}\n"
        f"echo x > {etc}; ln -s {outside} link; echo y > link/through-link.txt\n"
        f"cd {outside} && touch relative.txt; rm -f {existing}; echo x > {outside}/no/such/dir/f\n"
        "true"
    )
    result, data = _report(actor, script)
    assert result.returncode == 77, result.stderr
    assert _crossings(data) == {
        ("fs-write", "create", f"{outside}/new.txt"),
        ("fs-write", "mkdir", f"{outside}/newdir"),
        ("fs-write", "modify", str(existing)),
        ("fs-write", "create", str(etc)),
        ("fs-write", "create", f"{outside}/through-link.txt"),
        ("fs-write", "create", f"{outside}/relative.txt"),
    }, result.stderr
    assert f"Landlock refused a delete of {existing}" in result.stderr
    assert (actor.workspace / "control.txt").read_text() == "ok\n"
    assert existing.read_text() == "host\n"
    assert sorted(p.name for p in outside.iterdir()) == ["existing.txt"]
    assert not etc.exists()


def test_an_allowed_write_reruns_the_command_with_that_path_writable(actor: Actor) -> None:
    """An fs-write rule allows the refused write: the whole command runs again with exactly that path
    writable (a new file made empty first, an existing one write-only), its exit status is the re-run's,
    and what the re-run is refused again is reported as not applied. Once the path exists, the rule
    grants it up front: the next command runs once."""
    target = actor.outside / "approved.txt"
    existing = actor.outside / "existing.txt"
    existing.write_text("host\n")
    actor.chown_path(existing)
    for path in (target, existing):
        added = actor.run("rules", "add", "--project", str(actor.workspace), "--path", str(path))
        assert added.returncode == 0, added.stderr
    script = (
        f"echo ran >> runs.txt; echo new > {target}; echo more >> {existing}; "
        f"cat {existing} > /dev/null 2>&1 && echo read-it; touch {actor.outside}/not-approved"
    )
    result, data = _report(actor, script)
    assert (actor.workspace / "runs.txt").read_text() == "ran\nran\n", result.stderr
    assert f"re-running the command with {target} writable" in result.stderr  # {existing}: by its rule
    assert target.read_text() == "new\n"
    assert existing.read_text() == "host\nmore\nmore\n"  # the first run wrote it through its rule too
    assert "read-it" not in result.stdout  # write-only: the home's files stay unreadable
    assert not (actor.outside / "not-approved").exists()
    assert result.returncode == 1  # the re-run's `touch` failed
    assert data["refused"] == [
        {"path": f"{actor.outside}/not-approved", "reason": "refused by Landlock in the re-run"}
    ]
    again = actor.run("run", "--on-violation", "deny", "-c", f"echo ran >> runs.txt; echo newer > {target}")
    assert again.returncode == 0, again.stderr
    assert (actor.workspace / "runs.txt").read_text() == "ran\nran\nran\n"
    assert target.read_text() == "newer\n"
    assert "re-running" not in again.stderr


def test_an_approved_new_file_the_rerun_does_not_write_is_taken_back(actor: Actor) -> None:
    target = actor.outside / "once.txt"
    added = actor.run("rules", "add", "--project", str(actor.workspace), "--path", str(target))
    assert added.returncode == 0, added.stderr
    script = f"if [ -e runs.txt ]; then echo second; else echo ran > runs.txt; touch {target}; fi"
    result = actor.run("run", "--on-violation", "deny", "-c", script)
    assert "second" in result.stdout, result.stderr
    assert not target.exists()


def test_credentials_and_corral_state_are_unreadable(actor: Actor) -> None:
    result = actor.sandboxed(
        "cat ~/.ssh/id_rsa ~/.aws/credentials ~/.netrc 2>&1; ls ~/.ssh && echo listed; "
        f"cat {actor.state_home}/.local/share/corral/*.sqlite3 2>&1 | head -c 100; env; echo end"
    )
    assert "end" in result.stdout, result.stderr
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert "Permission denied" in result.stdout


def test_network_is_the_per_command_proxy_only(actor: Actor) -> None:
    """TCP only to the proxy, on its own port on the host's loopback; no bind, no UDP; a host the proxy
    does not allow is refused and reported."""
    with socket.socket() as host_service:
        host_service.bind(("127.0.0.1", 0))
        host_service.listen()
        service_port = host_service.getsockname()[1]
        accepted: list[object] = []
        host_service.settimeout(5)

        def accept() -> None:
            try:
                accepted.append(host_service.accept())
            except OSError:
                pass

        waiter = threading.Thread(target=accept, daemon=True)
        waiter.start()
        script = (
            "python3 - <<'EOF'\n"
            "import os, socket\n"
            "proxy = os.environ['HTTP_PROXY']\n"
            "print('proxy', proxy)\n"
            "port = int(proxy.rsplit(':', 1)[1])\n"
            f"for target in (('127.0.0.1', {service_port}), ('1.1.1.1', 443)):\n"
            "    try:\n"
            "        socket.create_connection(target, timeout=3); print('connected', target)\n"
            "    except OSError as e: print('refused', e.errno)\n"
            "for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):\n"
            "    try:\n"
            "        socket.socket(socket.AF_INET, kind); print('made', kind)\n"
            "    except OSError as e: print('socket-refused', e.errno)\n"
            "try:\n"
            "    socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132); print('sctp made')\n"
            "except OSError as e: print('sctp-refused', e.errno)\n"
            "s = socket.socket()\n"
            "try:\n"
            "    s.bind(('127.0.0.1', 0)); print('bound')\n"
            "except OSError as e: print('bind-refused', e.errno)\n"
            "p = socket.create_connection(('127.0.0.1', port), timeout=5)\n"
            "p.sendall(b'CONNECT blocked.invalid:443 HTTP/1.1\\r\\nHost: blocked.invalid:443\\r\\n\\r\\n')\n"
            "print('proxy says', p.recv(64).split(b'\\r\\n')[0].decode())\n"
            "EOF"
        )
        result = actor.sandboxed(script)
        waiter.join(timeout=6)
    out = result.stdout
    lines = out.splitlines()
    assert "proxy says HTTP/1.1 403 Forbidden" in lines, out + result.stderr
    assert "proxy http://127.0.0.1:3128" not in lines  # a port of its own, not the namespace's fixed one
    assert not any(line.startswith("connected") for line in lines) and lines.count("refused 13") == 2
    assert lines.count("socket-refused 1") == 2 and "sctp-refused 1" in lines
    assert "bind-refused 13" in lines
    assert accepted == []
    assert "net blocked.invalid:443" in result.stderr


def test_no_capabilities_and_no_new_privileges(actor: Actor) -> None:
    result = actor.sandboxed("grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status")
    lines = dict(line.split(":\t") for line in result.stdout.strip().splitlines())
    assert lines["NoNewPrivs"] == "1", result.stdout
    # A normal user's bounding set cannot be dropped (nor matter: no-new-privileges stops file capabilities).
    for name in ("CapEff", "CapPrm", "CapAmb", *(["CapBnd"] if actor.uid == 0 else [])):
        assert int(lines[name], 16) == 0, (name, result.stdout)


def test_private_tmpdir_is_the_only_temp_and_is_removed(actor: Actor) -> None:
    result = actor.sandboxed(
        'echo "dir $TMPDIR"; echo x > "$TMPDIR/t" && echo tmp-ok; echo y > /tmp/corral-ll-shared || echo shared-refused'
    )
    tmpdir = Path(next(line for line in result.stdout.splitlines() if line.startswith("dir ")).split()[1])
    assert "tmp-ok" in result.stdout and "shared-refused" in result.stdout, result.stdout + result.stderr
    assert not tmpdir.exists() and not Path("/tmp/corral-ll-shared").exists()


def test_nothing_the_command_starts_outlives_it(actor: Actor) -> None:
    marker = f"corral-ll-{os.getpid()}-{time.monotonic_ns()}"
    script = f"""
        setsid sh -c 'exec -a {marker}-a sleep 300' </dev/null >/dev/null 2>&1 &
        (sh -c 'exec -a {marker}-b sleep 300' &) </dev/null >/dev/null 2>&1
        nohup sh -c 'trap "" HUP TERM INT; exec -a {marker}-c sleep 300' </dev/null >/dev/null 2>&1 &
        kill -9 $PPID 2>/dev/null && echo launcher-killed || echo launcher-survives
        sleep 0.3; echo launched
    """
    result = actor.sandboxed(script)
    assert "launched" in result.stdout, result.stderr
    assert "launcher-survives" in result.stdout  # its own nested domain cannot signal its reaper
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", f"processes outlived the command: {left.stdout}"


def test_status_signal_and_missing_command(actor: Actor) -> None:
    assert actor.sandboxed("exit 7").returncode == 7
    assert actor.sandboxed("kill -TERM $$").returncode == 143
    missing = actor.run("run", "--on-violation", "deny", "--", "corral-no-such-command")
    assert missing.returncode == 127, missing.stderr


def test_doctor_says_what_landlock_cannot_do(actor: Actor) -> None:
    result = actor.run("doctor", "--backend", "landlock")
    assert "ok   backend: Landlock" in result.stdout, result.stdout + result.stderr
    assert "landlock: asked for by --backend" in result.stdout
    assert "cannot capture a write" in result.stdout
    assert "approving it re-runs the whole command with that path writable" in result.stdout
    assert "cannot protect paths in the workspace" in result.stdout


@pytest.mark.backends("bwrap")
def test_the_landlock_layer_inside_bwrap_is_off_by_default_and_applies_when_on(actor: Actor) -> None:
    """With `sandbox.landlock_layer`, the command is a Landlock domain of its own inside bwrap: it can no
    longer signal bwrap's init (ABI 6 scoping) and writes still land in the workspace."""
    probe = "kill -0 1 2>/dev/null && echo init-reachable || echo init-unreachable; echo ok > control.txt"
    plain = actor.sandboxed(probe)
    assert "init-reachable" in plain.stdout, plain.stderr
    config = actor.state_home / ".config" / "corral" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[sandbox]\nlandlock_layer = true\n")
    actor.chown_tree(config.parent)
    layered = actor.sandboxed(probe + "; echo y > /etc/corral-layer-probe")
    assert "init-unreachable" in layered.stdout, layered.stdout + layered.stderr
    assert (actor.workspace / "control.txt").read_text() == "ok\n"
    assert not Path("/etc/corral-layer-probe").exists()
    if actor.uid == 0:  # /etc is a capture root for root: the layer lets bwrap capture it, corral denies it
        assert "denied fs-write /etc/corral-layer-probe" in layered.stderr, layered.stderr


def test_a_hidden_path_inside_the_workspace_refuses_to_run(actor: Actor) -> None:
    """A trusted project's `paths.hidden` inside the workspace cannot be enforced under Landlock: exit 125,
    one line, nothing ran (rather than the path being readable)."""
    (actor.workspace / ".corral").mkdir()
    (actor.workspace / ".corral" / "config.toml").write_text('[paths]\nhidden = ["secrets"]\n')
    (actor.workspace / "secrets").mkdir()
    (actor.workspace / "secrets" / "key").write_text(SECRET)
    actor.chown_tree(actor.workspace)
    granted = actor.run("trust", "grant", str(actor.workspace))
    assert granted.returncode == 0, granted.stderr
    result = actor.sandboxed("cat secrets/key; touch ran")
    assert result.returncode == 125, result.stdout + result.stderr
    assert "cannot hide" in result.stderr and "secrets" in result.stderr
    assert SECRET not in result.stdout and not (actor.workspace / "ran").exists()
