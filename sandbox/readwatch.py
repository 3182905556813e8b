"""Report reads of hidden credential paths exactly, with decoys and access times.

A hidden file is replaced in the sandbox by an empty read-only decoy file; a hidden directory by a decoy
directory that holds empty stand-ins for its entries (names only, bounded). Every decoy file is created
with an access time older than its modification time, so the kernel's `relatime` rule (and
`strictatime`) records the first read: when a command reads `~/.ssh/id_rsa`, the stand-in's atime moves
and the report names the real path. The command reads nothing: the decoy is empty. (inotify would see
opens as well, but tearing an inotify instance down costs 10-20 ms per command; a stat per decoy
costs microseconds.) On a `noatime` filesystem reads are still refused, only not reported.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

MAX_DECOY_ENTRIES = 256
MAX_DECOY_DEPTH = 3


@dataclass
class DecoySet:
    """Decoys built for one run: (decoy path on the host, real path it stands for, is_dir)."""

    root: Path
    mounts: list[tuple[Path, Path]] = field(default_factory=list)
    files: dict[Path, Path] = field(default_factory=dict)  # decoy file -> the real path it stands for


def build_decoys(hidden: tuple[Path, ...], root: Path) -> DecoySet:
    """Create decoys under `root` for every hidden path that exists (a missing one needs none)."""
    decoys = DecoySet(root)
    root.mkdir(parents=True, exist_ok=True)
    budget = [MAX_DECOY_ENTRIES]
    for index, real in enumerate(hidden):
        try:
            is_dir = real.is_dir() and not real.is_symlink()
            exists = os.path.lexists(real)
        except OSError:
            continue
        if not exists:
            continue
        decoy = root / f"d{index}"
        if is_dir:
            decoy.mkdir(mode=0o755, parents=True)
            _mirror(real, decoy, decoys, 1, budget)
        else:
            root.mkdir(parents=True, exist_ok=True)
            decoy.touch(mode=0o444)
            decoys.files[decoy] = real
        decoys.mounts.append((decoy, real))
    _seal(root)
    return decoys


def _manifest(hidden: tuple[Path, ...]) -> str:
    """What the decoys were built from: each hidden path's identity and modification time."""
    parts = []
    for path in hidden:
        try:
            st = os.lstat(path)
        except OSError:
            parts.append(f"{path}\0-")
            continue
        parts.append(f"{path}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_mode}")
    return "\n".join(parts)


def reuse_or_build_decoys(hidden: tuple[Path, ...], slot: Path) -> DecoySet:
    """The decoys under `slot`, rebuilt only when a hidden path changed since they were made."""
    root = slot / "decoys"
    manifest_file = slot / "decoys.manifest"
    manifest = _manifest(hidden)
    try:
        saved = json.loads(manifest_file.read_text())
        if saved["manifest"] == manifest and root.is_dir():
            return DecoySet(
                root,
                mounts=[(Path(d), Path(r)) for d, r in saved["mounts"]],
                files={Path(d): Path(r) for d, r in saved["files"]},
            )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if os.path.lexists(root):
        for dirpath, _dirs, _files in os.walk(root):
            os.chmod(dirpath, 0o700)
        shutil.rmtree(root)
    decoys = build_decoys(hidden, root)
    data = {
        "manifest": manifest,
        "mounts": [[str(d), str(r)] for d, r in decoys.mounts],
        "files": [[str(d), str(r)] for d, r in decoys.files.items()],
    }
    temp = manifest_file.with_suffix(".tmp")
    temp.write_text(json.dumps(data))
    os.replace(temp, manifest_file)
    return decoys


def _seal(root: Path) -> None:
    """Make every decoy directory read-only (0555), deepest first, so nothing can be created there."""
    for dirpath, _dirnames, _files in os.walk(root, topdown=False):
        try:
            os.chmod(dirpath, 0o555)  # noqa: S103 - read-only decoys, readable like the real dirs
        except OSError:
            continue


def _mirror(real: Path, decoy: Path, decoys: DecoySet, depth: int, budget: list[int]) -> None:
    try:
        entries = sorted(os.scandir(real), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if budget[0] <= 0:
            return
        budget[0] -= 1
        stand_in = decoy / entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                stand_in.mkdir()
                if depth < MAX_DECOY_DEPTH:
                    _mirror(Path(entry.path), stand_in, decoys, depth + 1, budget)
            else:
                stand_in.touch(mode=0o444)
                decoys.files[stand_in] = Path(entry.path)
        except OSError:
            continue


class ReadWatcher:
    """Access-time baselines for every decoy file; `reads()` returns the real paths read, once each."""

    def __init__(self, decoys: DecoySet) -> None:
        self._baseline: dict[Path, tuple[float, Path]] = {}
        for decoy, real in decoys.files.items():
            try:
                st = os.stat(decoy)
                os.utime(decoy, ns=(st.st_mtime_ns - 60_000_000_000, st.st_mtime_ns))
                self._baseline[decoy] = (os.stat(decoy).st_atime_ns, real)
            except OSError:
                continue

    def reads(self) -> list[Path]:
        seen: list[Path] = []
        for decoy, (atime, real) in self._baseline.items():
            try:
                if os.stat(decoy).st_atime_ns != atime:
                    seen.append(real)
            except OSError:
                continue
        return seen

    def close(self) -> None:
        self._baseline.clear()
