"""A session is a place: the commands of one session share a private /tmp (never the host's) and one
network namespace, held by a keeper (`sandbox.sessionns`); what a command leaves running keeps running
there, listed, stoppable, killed at the end, and apply stays safe against it. One project's
consecutive standalone `corral run`s share that project's /tmp. Real bubblewrap, as root and as an unprivileged user; the host is
checked afterwards (no file in the host's /tmp, the session's /tmp removed when it ends).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import stat
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.runner import BACKGROUND_STOPPED_LINE
from tests.conftest import CORRAL, Actor


def _as_actor(actor: Actor, command: list[str]) -> list[str]:
    if actor.uid == os.geteuid():
        return command
    return ["setpriv", f"--reuid={actor.uid}", f"--regid={actor.gid}", "--init-groups", "--", *command]


def _sessions_tmp(actor: Actor) -> Path:
    return actor.state_home / ".cache" / "corral" / "sessions"


@contextmanager
def live_session(actor: Actor) -> Iterator[subprocess.Popen[bytes]]:
    """A headless `corral session` for the actor's project (denies every crossing: no terminal)."""
    log = actor.base / f"session-{secrets.token_hex(3)}.log"
    with open(log, "wb") as out:
        owner = subprocess.Popen(
            _as_actor(actor, [CORRAL, "session"]),
            cwd=actor.workspace,
            env=actor.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    sockets = actor.base / "run" / "corral" / "sessions"
    deadline = time.monotonic() + 30
    while not list(sockets.glob("*.sock")):
        if time.monotonic() > deadline or owner.poll() is not None:
            owner.kill()
            raise AssertionError(f"the session never started serving: {log.read_text()}")
        time.sleep(0.1)
    try:
        yield owner
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGTERM)
        owner.wait(timeout=60)


def test_tmp_is_handed_between_commands_of_a_live_session(actor: Actor) -> None:
    name = f"handoff-{secrets.token_hex(4)}.json"
    with live_session(actor):
        first = actor.run("run", "-c", f"echo '{{\"ok\": 1}}' > /tmp/{name}; ls -ld /tmp | cut -c1-10")
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == "drwxrwxrwt"  # a /tmp as programs expect it
        second = actor.run("run", "-c", f"cat /tmp/{name}")
        assert second.returncode == 0, second.stderr
        assert second.stdout == '{"ok": 1}\n'
        assert not Path("/tmp", name).exists()  # never the host's /tmp
        live = [p for p in _sessions_tmp(actor).iterdir() if p.name.startswith("live-")]
        assert len(live) == 1
        info = live[0].stat()
        assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == actor.uid
        assert (live[0] / "tmp" / name).read_text() == '{"ok": 1}\n'  # on disk, corral's own
    assert not any(p.name.startswith("live-") for p in _sessions_tmp(actor).iterdir())  # removed at the end


def test_consecutive_standalone_runs_share_the_projects_tmp(actor: Actor) -> None:
    name = f"standalone-{secrets.token_hex(4)}"
    first = actor.run("run", "-c", f"echo kept > /tmp/{name}; ls -ld /tmp | cut -c1-10")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "drwxrwxrwt"
    second = actor.run("run", "-c", f"cat /tmp/{name}")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "kept\n"
    assert not Path("/tmp", name).exists()  # never the host's /tmp
    (project,) = [p for p in _sessions_tmp(actor).iterdir() if p.name.startswith("project-")]
    info = project.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == actor.uid
    assert (project / "tmp" / name).read_text() == "kept\n"  # on disk, corral's own, kept between runs
    other = actor.base / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    actor.chown_tree(other)
    elsewhere = actor.run("run", "-c", f"cat /tmp/{name} 2>/dev/null || echo absent", cwd=other)
    assert elsewhere.stdout == "absent\n", elsewhere.stderr  # another project's /tmp is another place


def test_a_standalone_run_says_when_it_stops_what_the_command_left_in_the_background(actor: Actor) -> None:
    """With no live session nothing keeps a command's background processes: they end with it, and the
    run says so in one line (the next command's `curl localhost:3000` failing is then not silent)."""
    marker = f"bg-{secrets.token_hex(4)}"
    sleep = f"sleep 60.{secrets.randbelow(10**6)}"  # an argv no other process has
    left = actor.run("run", "--no-session", "-c", f"{sleep} & echo {marker}")
    assert left.returncode == 0 and left.stdout == f"{marker}\n", left.stderr
    assert left.stderr.count(BACKGROUND_STOPPED_LINE) == 1, left.stderr
    assert _pids_of(sleep) == []  # really stopped
    plain = actor.run("run", "--no-session", "-c", "sleep 0.1; echo done")
    assert plain.returncode == 0 and BACKGROUND_STOPPED_LINE not in plain.stderr, plain.stderr


def _pids_of(argv: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip() == argv.encode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_an_idle_standalone_tmp_starts_empty_and_is_emptied_without_following_links(actor: Actor) -> None:
    name = f"idle-{secrets.token_hex(4)}"
    outside = actor.outside / f"kept-{secrets.token_hex(3)}"
    outside.mkdir(parents=True)
    (outside / "keep").write_text("host file\n")
    actor.chown_tree(outside)
    actor.chown_path(outside)
    assert actor.run("run", "-c", f"echo old > /tmp/{name}; ln -s {outside} /tmp/{name}.link").returncode == 0
    (project,) = [p for p in _sessions_tmp(actor).iterdir() if p.name.startswith("project-")]
    long_ago = time.time() - 31 * 60
    os.utime(project / "last-used", (long_ago, long_ago))
    later = actor.run(
        "run", "-c", f"cat /tmp/{name} 2>/dev/null || echo emptied; test -L /tmp/{name}.link || echo unlinked"
    )
    assert later.stdout == "emptied\nunlinked\n", later.stderr
    assert (outside / "keep").read_text() == "host file\n"  # the link was removed, not followed


def _host_pids_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _wait_gone(marker: str, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while _host_pids_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = _host_pids_with(marker)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return survivors


def test_a_dev_server_left_running_answers_the_next_command(actor: Actor) -> None:
    port = 20000 + secrets.randbelow(20000)
    marker = "--bind=127.0.0.1"  # http.server's own flag, with a unique directory below
    served = actor.workspace / f"site-{secrets.token_hex(3)}"
    served.mkdir()
    (served / "index.html").write_text("hello from the dev server\n")
    actor.chown_tree(served)
    with live_session(actor):
        started = actor.run(
            "run",
            "-c",
            f"python3 -m http.server {port} {marker} --directory {served} >/dev/null 2>&1 & "
            f"for i in $(seq 50); do curl -s -o /dev/null localhost:{port} && break; sleep 0.1; done; echo started",
        )
        assert started.returncode == 0, started.stderr
        assert started.stdout == "started\n"
        assert _host_pids_with(str(served)), "the server died with its command"
        fetched = actor.run("run", "-c", f"curl -s localhost:{port}/index.html")
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == "hello from the dev server\n"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), 1)  # not on the host's loopback
    assert _wait_gone(str(served)) == []  # killed when the session ended


SESSION_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from corral.command import Command
from corral.locations import Locations
from corral.opening import compose_session

workspace = Path(os.getcwd()).resolve()
session = compose_session(workspace, locations=Locations.default())
report = {}
def run(text):
    outcome = session.run(Command.from_shell(text), cwd=workspace)
    return {
        "exit": outcome.exit_code,
        "violations": [(o.violation.kind.value, o.violation.target, o.scope) for o in outcome.outcomes],
        "background": [
            {"command": h.command, "violations": [(o.violation.kind.value, o.violation.target, o.scope) for o in h.outcomes]}
            for h in outcome.hook_outcomes
        ],
        "applied": [str(c.path) for c in outcome.applied],
        "refused": [(str(c.path), r) for c, r in outcome.refused],
    }
exec(sys.stdin.read())
session.close()
print(json.dumps(report))
"""


def _session_script(actor: Actor, body: str, timeout: float = 180) -> dict[str, object]:
    """Run `body` in a Python process of the actor's that holds one live Session (deny on every
    crossing: no one to ask) and closes it at the end; returns the `report` dict it filled."""
    import json
    import sys

    script = actor.base / f"session-{secrets.token_hex(3)}.py"
    script.write_text(SESSION_SCRIPT)
    actor.chown_path(script)
    done = subprocess.run(
        _as_actor(actor, [str(Path(sys.executable)), str(script)]),
        cwd=actor.workspace,
        env=actor.env,
        input=textwrap.dedent(body),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_background_jobs_are_listed_stopped_and_killed_at_the_end(actor: Actor) -> None:
    marker = f"{700 + secrets.randbelow(90000)}.{secrets.randbelow(10**6):06d}"
    report = _session_script(
        actor,
        f"""
        report["first"] = run("sleep {marker} & sleep {marker}1 & echo started")
        jobs = session.background()
        report["jobs"] = [(j.id, j.running, len(j.processes), j.command) for j in jobs]
        report["argv"] = sorted(" ".join(p.argv) for j in jobs for p in j.processes)
        report["pgrep"] = run("pgrep -f 'slee[p] {marker}1' >/dev/null")["exit"]
        stopped = session.stop_background(jobs[0].id)
        report["stopped"] = stopped is not None
        report["after_stop"] = len(session.background())
        report["second"] = run("nohup sleep {marker}2 >/dev/null 2>&1 &")
        report["left"] = len(session.background())
        """,
    )
    jobs = report["jobs"]
    assert isinstance(jobs, list) and len(jobs) == 1
    assert jobs[0][1:] == [True, 2, f"sleep {marker} & sleep {marker}1 & echo started"]
    assert report["argv"] == [f"sleep {marker}", f"sleep {marker}1"]
    assert report["pgrep"] == 1  # README: a later command's own pid namespace does not list a job
    assert report["stopped"] is True and report["after_stop"] == 0
    assert report["left"] == 1  # the second job ran until the session closed
    assert _wait_gone(marker) == []  # stopped, and the rest killed at the session's end


def test_a_background_writer_is_captured_when_it_ends(actor: Actor) -> None:
    """What a kept process writes after its command ended: inside the workspace it is applied when the
    job ends; outside it is a crossing decided then (denied here: nobody to ask), never applied."""
    outside = actor.outside / f"late-{secrets.token_hex(3)}"
    report = _session_script(
        actor,
        f"""
        report["first"] = run("(sleep 1; echo late > late.txt; echo x > {outside}) >/dev/null 2>&1 & echo early > early.txt")
        report["early_on_host"] = Path("early.txt").read_text()
        report["late_on_host_before"] = Path("late.txt").exists()
        deadline = time.monotonic() + 30
        while session.background()[0].running and time.monotonic() < deadline:
            time.sleep(0.1)
        report["next"] = run("cat late.txt")
        report["late_on_host"] = Path("late.txt").read_text()
        """,
    )
    assert report["early_on_host"] == "early\n"
    assert report["late_on_host_before"] is False  # still in the kept sandbox's layer
    nxt = report["next"]
    assert isinstance(nxt, dict)
    assert nxt["exit"] == 0
    (ended,) = nxt["background"]
    assert ["fs-write", str(outside), "deny"] in ended["violations"]
    assert report["late_on_host"] == "late\n"
    assert not outside.exists()


RACER = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
victim, seconds = sys.argv[1], float(sys.argv[2])
os.makedirs("race/d", exist_ok=True)
for name in ("l", "m"):
    try:
        os.symlink(victim, f"race/{name}")
    except FileExistsError:
        pass
end = time.time() + seconds
i = 0
while time.time() < end:
    i += 1
    try:
        with open(f"race/d/f{i % 40}", "w") as out:
            out.write("x" * (i % 4096))
        if i % 3 == 0:
            os.unlink(f"race/d/f{(i - 1) % 40}")
        if i % 7 == 0:
            os.makedirs(f"race/d/sub{i % 5}/deeper", exist_ok=True)
    except OSError:
        pass
    # swap the directory being written for a link to a host directory, and back (RENAME_EXCHANGE)
    libc.renameat2(-100, b"race/d", -100, b"race/l" if i % 2 else b"race/m", 2)
"""


def _race_round(actor: Actor, rounds: int) -> None:
    victim = actor.outside / f"victim-{secrets.token_hex(3)}"
    victim.mkdir()
    (victim / "keep").write_text("host file\n")
    (victim / "f1").write_text("host f1\n")
    actor.chown_tree(victim)
    before = sorted((p.name, p.read_text()) for p in victim.iterdir())
    racer = actor.workspace / "racer.py"
    racer.write_text(RACER)
    actor.chown_path(racer)
    report = _session_script(
        actor,
        f"""
        report["rounds"] = []
        for n in range({rounds}):
            report["rounds"].append(run("python3 racer.py {victim} 3 >/dev/null 2>&1 & sleep 1; echo round"))
        report["jobs"] = len(session.background())
        """,
        timeout=600,
    )
    rounds_seen = report["rounds"]
    assert isinstance(rounds_seen, list) and all(r["exit"] == 0 for r in rounds_seen), rounds_seen
    # Layers were read while writers ran: changes applied (copied) or the whole layer refused.
    assert any(r["applied"] or r["refused"] for r in rounds_seen), rounds_seen
    after = sorted((p.name, p.read_text()) for p in victim.iterdir())
    assert after == before  # nothing of the host directory was written, moved or deleted
    for path in actor.outside.rglob("*"):
        assert path == victim or victim in path.parents, f"written outside the workspace: {path}"
    race = actor.workspace / "race"
    for path in race.rglob("*") if race.is_dir() and not race.is_symlink() else []:
        if path.is_symlink():
            continue
        assert path.resolve().is_relative_to(actor.workspace), path


def test_apply_is_safe_against_a_live_background_writer(actor: Actor) -> None:
    """A kept background process keeps writing, deleting and swapping the directory it writes for a
    symlink to a host directory (renameat2 RENAME_EXCHANGE) while corral reads and applies the layer
    when the command ends, and again when the session stops it: the host directory stays exactly as it
    was and nothing lands outside the workspace."""
    _race_round(actor, rounds=3)


@pytest.mark.slow
def test_apply_is_safe_against_a_live_background_writer_long(actor: Actor) -> None:
    _race_round(actor, rounds=25)


def test_filling_the_sessions_tmp_is_bounded_and_reported(actor: Actor) -> None:
    """The session's /tmp is on disk, where no tmpfs size applies: a fill is cut back to the bound
    (`limits.tmpfs_mib`) while it runs, and the next line says which file was emptied."""
    limit_mib = 32
    config = actor.state_home / ".config" / "corral"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f"[limits]\ntmpfs_mib = {limit_mib}\n")
    actor.chown_tree(actor.state_home / ".config")
    with live_session(actor):
        _fill_and_check(actor, limit_mib)
    _fill_and_check(actor, limit_mib)  # a standalone run's /tmp (the project's, on disk) alike


def _fill_and_check(actor: Actor, limit_mib: int) -> None:
    filled = actor.run("run", "-c", "head -c 600M /dev/zero > /tmp/fill; sleep 1; du -k /tmp/fill | cut -f1")
    assert filled.returncode == 0, filled.stderr
    assert int(filled.stdout.split()[-1]) <= limit_mib * 1024  # what is left on disk
    assert f"the session's /tmp went over {limit_mib} MiB; emptied /tmp/fill" in filled.stderr
