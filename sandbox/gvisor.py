"""gVisor's runsc inside the bwrap-prepared view: the command sees gVisor's kernel, not the host's.

bwrap prepares the view exactly as for any command (capture overlays, decoys, blanked state, the empty
network namespace where corral's proxy listens) and runs `runsc do` in it instead of the command. runsc
then runs the command in a user-space kernel whose root filesystem is that same view, written through
(`-force-overlay=false`), so every write still lands in bwrap's capture layers and every read of a decoy
still touches the decoy; `--network=host` gives it the sandbox's own network namespace, where only
corral's proxy listens. Nothing about capture, apply, decoys, the proxy or the violations changes.

What this layer needs from the outer sandbox, and nothing more:
- a user namespace of its own (`--rootless` maps its root to the caller), so bwrap leaves out
  `--disable-userns`; a root caller runs as `SANDBOX_ID` inside bwrap, because a nested user namespace
  that maps uid 0 onto uid 0 needs CAP_SETFCAP, which no sandboxed process has;
- in the seccomp filter (`GVISOR_FILTER`), `socket(AF_UNIX)` for runsc's control socket between its own
  processes, and `ptrace` for its systrap platform's stub processes. The command never makes these
  calls to the host: every one of its system calls goes to gVisor's Sentry, which installs a stricter
  filter of its own on top (seccomp filters stack; the stricter wins).
- runsc's state (`--root`) and its temporary bundle live in bwrap's /dev/shm, which gVisor does not show
  (it has a /dev of its own), so the command cannot read or change them.

Debian bookworm's runsc (2022) is refused: its `statx` breaks `ls -la`. The 2024 build from
bookworm-backports works unprivileged (see `INSTALL_HINT`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sandbox.seccomp import FilterProfile

RUNSC_PATHS = (Path("/usr/bin/runsc"), Path("/usr/local/bin/runsc"), Path("/usr/sbin/runsc"))
"""Where corral looks for runsc: system directories only, never PATH (a workspace may shadow PATH)."""
MIN_RELEASE = 20240101
"""The oldest runsc release (YYYYMMDD) corral runs."""
INSTALL_HINT = (
    "install runsc 2024 or later (Debian bookworm, as root: echo 'deb http://deb.debian.org/debian "
    "bookworm-backports main' > /etc/apt/sources.list.d/backports.list && apt-get update && "
    "apt-get install -y -t bookworm-backports runsc)"
)
GVISOR_FILTER = FilterProfile(
    "gvisor", unix_sockets=True, allowed=frozenset({"ptrace"}), any_socketpair_type=True
)
"""The outer filter with the two things runsc itself needs (see the module docstring)."""
SANDBOX_ID = 100000
"""The uid and gid a root caller runs as inside bwrap (mapped to root outside; any id but 0 and the
overflow id 65534 would do)."""
SHM = Path("/dev/shm")
"""bwrap's /dev/shm (a sized tmpfs of its own), which gVisor does not show: it has a /dev of its own."""
STATE_DIR = SHM / ".corral-runsc"
"""runsc's `--root` inside bwrap (its temporary bundle goes to `SHM`)."""
DECOY_CONTENT = b"\n"
"""Decoy files hold one newline under gVisor: it answers a read of an empty file itself, so only a
non-empty decoy's read reaches the host file and moves its access time (`sandbox.readwatch`)."""
COST = "a cold gVisor start per command: about 2.7-2.9x bwrap for `true` or an interpreter start (bench/bench_gvisor.py)"

_RELEASE = re.compile(r"runsc version (?:release-|[0-9.]*~)?(?P<date>20[0-9]{6})")


class RunscUnavailable(RuntimeError):
    """runsc is missing or too old here: the gVisor backend cannot run (one line with the fix)."""


@dataclass(frozen=True, slots=True)
class Runsc:
    """A runsc binary corral may run: where it is and its release date (YYYYMMDD)."""

    path: Path
    release: int
    version: str
    """Its `runsc --version` first line, for `corral doctor`."""


def parse_release(version_text: str) -> int | None:
    """The release date in `runsc --version` output (`runsc version release-20240729.0`, or Debian's
    `runsc version 0.0~20240729.0`); None when there is none."""
    match = _RELEASE.search(version_text)
    return int(match["date"]) if match else None


def find_runsc(paths: Sequence[Path] = RUNSC_PATHS, cache_dir: Path | None = None) -> Runsc:
    """The runsc to run, or raise RunscUnavailable saying what is missing and how to fix it.

    With `cache_dir`, a version that was read is remembered there, keyed by the binary's identity
    (path, inode, size, modification time), so a command does not pay for `runsc --version`."""
    path = next((p for p in paths if os.access(p, os.X_OK) and p.is_file()), None)
    if path is None:
        raise RunscUnavailable(f"gVisor's runsc is not installed; {INSTALL_HINT}")
    marker = _version_marker(path, cache_dir)
    try:
        text = marker.read_text() if marker is not None else None
    except OSError:
        text = None
    if text is None or parse_release(text) is None:
        text = _version_text(path)
        if marker is not None and parse_release(text) is not None:
            try:
                marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                marker.write_text(text)
            except OSError:
                pass  # only a cache: the next command asks runsc again
    first = (text.strip().splitlines() or [""])[0]
    release = parse_release(text)
    if release is None:
        raise RunscUnavailable(f"{path} did not say its release ({first or 'no output'}); {INSTALL_HINT}")
    if release < MIN_RELEASE:
        raise RunscUnavailable(
            f"{path} is release {release}, older than 2024 (its statx breaks `ls -la`); {INSTALL_HINT}"
        )
    return Runsc(path, release, first)


def _version_text(path: Path) -> str:
    try:
        probe = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False, env={}
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RunscUnavailable(f"{path} could not be run ({error}); {INSTALL_HINT}") from error
    return probe.stdout if probe.returncode == 0 else ""


def _version_marker(path: Path, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    key = f"{path}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    return cache_dir / "probes" / f"runsc-version-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def runsc_argv(runsc: Path, command: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The argv bwrap runs in place of `command`: runsc starts gVisor on the sandbox's own view and runs
    `command` in it with the same environment and working directory (bwrap's `--chdir`).

    runsc's own state goes to `STATE_DIR` and its bundle to `SHM` (through TMPDIR, which the command then
    gets back as it was: restored by `env` inside gVisor)."""
    restore = (
        ["/usr/bin/env", f"TMPDIR={env['TMPDIR']}"] if "TMPDIR" in env else ["/usr/bin/env", "-u", "TMPDIR"]
    )
    return [
        "/usr/bin/env",
        f"TMPDIR={SHM}",
        str(runsc),
        "--rootless",
        "--network=host",
        "--ignore-cgroups",
        f"--root={STATE_DIR}",
        "do",
        "-force-overlay=false",
        "-quiet",
        "--",
        *restore,
        *command,
    ]
