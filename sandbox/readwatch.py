"""Report reads of hidden credential paths exactly, with decoys and inotify.

A hidden file is replaced in the sandbox by an empty read-only decoy file; a hidden directory by a decoy
directory that holds empty stand-ins for its entries (names only, bounded). corral watches every decoy
with inotify, which works across mount namespaces because it follows inodes: when a command opens
`~/.ssh/id_rsa`, the decoy for it reports IN_OPEN, and the report names the real path. The command reads
nothing: the decoy is empty.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

IN_ACCESS = 0x001
IN_OPEN = 0x020
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
MAX_DECOY_ENTRIES = 256
MAX_DECOY_DEPTH = 3

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_EVENT = struct.Struct("iIII")


@dataclass
class DecoySet:
    """Decoys built for one run: (decoy path on the host, real path it stands for, is_dir)."""

    root: Path
    mounts: list[tuple[Path, Path]] = field(default_factory=list)
    watched: dict[Path, Path] = field(default_factory=dict)  # decoy dir or file -> real path


def build_decoys(hidden: tuple[Path, ...], root: Path) -> DecoySet:
    """Create decoys under `root` for every hidden path that exists (a missing one needs none)."""
    decoys = DecoySet(root)
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
            decoy.mkdir(mode=0o555 if False else 0o755, parents=True)
            _mirror(real, decoy, decoys, 1, budget)
            decoys.watched[decoy] = real
        else:
            root.mkdir(parents=True, exist_ok=True)
            decoy.touch(mode=0o444)
            decoys.watched[decoy] = real
        decoys.mounts.append((decoy, real))
    return decoys


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
                decoys.watched[stand_in] = Path(entry.path)
            else:
                stand_in.touch(mode=0o444)
        except OSError:
            continue


class ReadWatcher:
    """inotify watches on every decoy; `reads()` returns the real paths opened, in order, once each."""

    def __init__(self, decoys: DecoySet) -> None:
        self._fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._by_wd: dict[int, Path] = {}
        for decoy, real in decoys.watched.items():
            wd = _libc.inotify_add_watch(self._fd, os.fsencode(decoy), IN_OPEN)
            if wd >= 0:
                self._by_wd[wd] = real

    def reads(self) -> list[Path]:
        seen: dict[Path, None] = {}
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                break
            except OSError:
                break
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw_name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                real = self._by_wd.get(wd)
                if real is None or mask & IN_ISDIR:
                    continue  # listing a directory reveals names only
                seen[real / os.fsdecode(raw_name) if raw_name else real] = None
        return list(seen)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
