"""Report reads of hidden credential paths exactly, with decoys and access times.

A hidden file is replaced in the sandbox by an empty read-only decoy file; a hidden directory by a decoy
directory that holds empty stand-ins for its entries (names only, bounded). Every decoy file is created
with an access time older than its modification time, so the kernel's `relatime` rule (and
`strictatime`) records the first read: when a command reads `~/.ssh/id_rsa`, the stand-in's atime moves
and the report names the real path. The command reads nothing: the decoy is empty. (inotify would see
opens as well, but tearing an inotify instance down costs 10-20 ms per command; a stat per decoy
costs microseconds.) On a `noatime` filesystem reads are still refused, only not reported.

A backend whose kernel answers a read of an empty file without reading the host file (gVisor knows
the size and returns end-of-file itself) gets decoys holding `content` (one newline): its first read
then reaches the host file and moves the access time as well.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.appends import appendable as shell_appendable
from sandbox.appends import plant as plant_appendable

MAX_DECOY_ENTRIES = 256
MAX_DECOY_DEPTH = 3
MAX_STAND_INS = 4096
"""Names mirrored in a home's stand-ins per run, over all hidden entries (each has its own share of
`MAX_DECOY_ENTRIES`)."""


@dataclass
class DecoySet:
    """Decoys built for one run: (decoy path on the host, real path it stands for, is_dir)."""

    root: Path
    mounts: list[tuple[Path, Path]] = field(default_factory=list)
    files: dict[Path, Path] = field(default_factory=dict)  # decoy file -> the real path it stands for


def _fill(path: Path, content: bytes) -> None:
    """A decoy file's content (nothing for bwrap; see the module docstring)."""
    if content:
        path.write_bytes(content)


def build_decoys(hidden: tuple[Path, ...], root: Path, content: bytes = b"") -> DecoySet:
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
            _mirror(real, decoy, decoys, 1, budget, content)
        else:
            root.mkdir(parents=True, exist_ok=True)
            decoy.touch(mode=0o644)
            _fill(decoy, content)
            os.chmod(decoy, 0o444)
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


def reuse_or_build_decoys(hidden: tuple[Path, ...], slot: Path, content: bytes = b"") -> DecoySet:
    """The decoys under `slot`, rebuilt only when a hidden path changed since they were made (or the
    decoys' content differs: another backend ran in this slot)."""
    root = slot / "decoys"
    manifest_file = slot / "decoys.manifest"
    manifest = _manifest(hidden) + (f"\n\0content={content.hex()}" if content else "")
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
    decoys = build_decoys(hidden, root, content)
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


def _mirror(
    real: Path, decoy: Path, decoys: DecoySet, depth: int, budget: list[int], content: bytes = b""
) -> None:
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
                    _mirror(Path(entry.path), stand_in, decoys, depth + 1, budget, content)
            else:
                stand_in.touch(mode=0o644)
                _fill(stand_in, content)
                os.chmod(stand_in, 0o444)
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


Signature = tuple[int, int, int, int]
"""(inode, mode, size, mtime_ns) of a stand-in as planted: unchanged after the run means untouched."""


def _signature(path: Path) -> Signature | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns)


def plant_stand_ins(
    hidden: list[Path],
    home: Path,
    upper: Path,
    decoys: DecoySet,
    appendable: frozenset[Path] = frozenset(),
    appends: dict[Path, Path] | None = None,
    content: bytes = b"",
) -> dict[Path, tuple[Path, Signature]]:
    """Stand-ins for the hidden entries of a home shown through a skeleton (`sandbox.homeview`),
    planted in the home overlay's *upper* layer: overlayfs records reads of upper files in their
    access time (it does not for lower ones), so a read is reported like a decoy's, and a new file
    written inside a hidden directory is captured like any other write in the home. Stand-in files
    are empty and read-only (0444: a write to an existing hidden file fails, so nothing is replaced
    by content the command never saw); stand-in directories keep the real mode and list the real
    names (bounded). Returns host path -> (stand-in, signature as planted), so the capture can tell
    an untouched stand-in from a change.

    A hidden shell start-up file in `appendable` gets the writable one-line stand-in of
    `sandbox.appends` instead (recorded in `appends`, real path -> stand-in), so `>> ~/.bashrc` is
    captured and asked rather than failing."""
    planted: dict[Path, tuple[Path, Signature]] = {}
    budget = [MAX_STAND_INS]
    shares: dict[Path, int] = {}
    modes: list[tuple[Path, int]] = []

    def parents(stand_in: Path, real: Path) -> None:
        missing: list[tuple[Path, Path]] = []
        current, real_current = stand_in.parent, real.parent
        while current != upper and not os.path.lexists(current):
            missing.append((current, real_current))
            current, real_current = current.parent, real_current.parent
        for directory, real_dir in reversed(missing):
            try:
                mode = stat.S_IMODE(os.lstat(real_dir).st_mode)
            except OSError:
                mode = 0o755
            directory.mkdir(mode=0o700)
            modes.append((directory, mode))

    def plant(real: Path, stand_in: Path, depth: int, entry: Path, counted: bool = True) -> None:
        if counted:
            # Each hidden entry gets its own share of names, so one big directory (300 keys in
            # ~/.ssh/keys) never leaves the next credential without a stand-in.
            if budget[0] <= 0 or shares.get(entry, 0) >= MAX_DECOY_ENTRIES:
                return
            budget[0] -= 1
            shares[entry] = shares.get(entry, 0) + 1
        try:
            st = os.lstat(real)
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode):
            stand_in.mkdir(mode=0o700)
        elif appends is not None and real in appendable and shell_appendable(real):
            plant_appendable(stand_in, real)
            appends[real] = stand_in
            if st.st_size:
                decoys.files[stand_in] = real  # a read is still reported; an append is not a read
        else:
            fd = os.open(stand_in, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
            try:
                if content:
                    os.write(fd, content)
            finally:
                os.close(fd)
            os.chmod(stand_in, 0o444)
            if st.st_size:
                # An empty file holds no secret: the stand-in shows all it has, so its read is no
                # violation (exit 0 stays 0).
                decoys.files[stand_in] = real
        directories.append((real, stand_in, depth, stat.S_IMODE(st.st_mode), entry))

    directories: list[tuple[Path, Path, int, int, Path]] = []
    # Every hidden entry first (their number is bounded by the policy), so a big directory's names
    # never use up the budget that the next credential's stand-in needs; then their contents.
    for real in hidden:
        try:
            relative = real.relative_to(home)
        except ValueError:
            continue
        stand_in = upper / relative
        if os.path.lexists(stand_in) or not os.path.lexists(real):
            continue
        try:
            parents(stand_in, real)
            plant(real, stand_in, 1, real, counted=False)
        except OSError:
            continue
    index = 0
    while index < len(directories):
        real, stand_in, depth, mode, entry = directories[index]
        index += 1
        if stand_in.is_dir() and depth < MAX_DECOY_DEPTH:
            try:
                entries = sorted(os.scandir(real), key=lambda e: e.name)
            except OSError:
                entries = []
            for child in entries:
                try:
                    plant(Path(child.path), stand_in / child.name, depth + 1, entry)
                except OSError:
                    continue
    for real, stand_in, _depth, mode, _entry in reversed(directories):
        try:
            if stand_in.is_dir() and not stand_in.is_symlink():
                os.chmod(stand_in, mode | 0o100)
            signature = _signature(stand_in)
        except OSError:
            continue
        if signature is not None:
            planted[real] = (stand_in, signature)
    for directory, mode in reversed(modes):
        try:
            os.chmod(directory, mode | 0o100)
        except OSError:
            continue
    return planted


def untouched(planted: dict[Path, tuple[Path, Signature]], path: Path) -> bool:
    """Whether the change the capture reports at host `path` is only a stand-in left as planted."""
    entry = planted.get(path)
    return entry is not None and _signature(entry[0]) == entry[1]


def removed(planted: dict[Path, tuple[Path, Signature]], root: Path) -> list[Path]:
    """Host paths under `root` whose stand-in the command deleted or moved away (`rm ~/.bashrc`,
    `mv ~/.aws ~/x`): overlayfs leaves no whiteout for them (the skeleton below has no such entry), so
    the deletion is reported from here, once per removed tree, parents before children."""
    gone = sorted(
        real
        for real, (stand_in, _signature) in planted.items()
        if (real == root or root in real.parents) and not os.path.lexists(stand_in) and os.path.lexists(real)
    )
    result: list[Path] = []
    for path in gone:
        if not any(parent in path.parents for parent in result):
            result.append(path)
    return result


def copy_in(paths: Iterable[Path], home: Path, upper: Path) -> None:
    """Copy existing home files a rule allows writing into the home layer's upper directory (what
    overlayfs's copy-up would do, done before the command starts): the command sees their content; an
    unchanged copy is no change to the capture (same content and mode), a changed one is captured whole."""
    for real in paths:
        try:
            relative = real.relative_to(home)
        except ValueError:
            continue
        target = upper / relative
        if os.path.lexists(target):
            continue
        try:
            missing: list[tuple[Path, Path]] = []
            current, real_current = target.parent, real.parent
            while current != upper and not os.path.lexists(current):
                missing.append((current, real_current))
                current, real_current = current.parent, real_current.parent
            for directory, real_dir in reversed(missing):
                directory.mkdir(mode=0o700)
                os.chmod(directory, stat.S_IMODE(os.lstat(real_dir).st_mode) | 0o100)
            shutil.copy2(real, target, follow_symlinks=False)
        except OSError:
            continue
