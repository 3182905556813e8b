"""Lines a command adds to a hidden shell start-up file are captured against the real file, and asked.

`echo 'export PATH=~/.tool/bin:$PATH' >> ~/.bashrc` is what installers and agents do, and a write to a
shell start-up file is exactly the crossing a person must see. The file itself stays hidden (it often
exports tokens), so the command cannot be shown its content, and an empty read-only stand-in would make
the append fail inside the sandbox: nothing to ask, a broken command. Instead, the stand-in of an
existing start-up file (`boundary.table` `APPEND` rows, a regular file of at most `MAX_BYTES`) holds one
comment line, `STAND_IN`, and is writable.

After the command ended (every sandboxed process proven gone), `merge` looks at each such stand-in in
the home's capture layer:
- still exactly `STAND_IN` (read, or opened and left alone): no change;
- `STAND_IN` followed by more: an append (`>>`, or a tool that kept what it read and added lines). The
  layer's file is rewritten as the real file's content followed by what the command added, so the
  capture reports, the prompt shows and an allow applies exactly "the real file plus those lines"; a
  real file changed on the host meanwhile is a conflict at apply time (`sandbox.apply`), never merged
  over;
- anything else: what the command wrote in place of a file it never saw, reported (and, allowed,
  applied) as it is.
Every access to the layer is fd-relative from its root with no symlink followed (`sandbox.layerfs`);
the real file is read with `O_NOFOLLOW` and only when it is still a regular file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from sandbox.layerfs import DIR_FLAGS, FILE_FLAGS, open_beneath, open_root

STAND_IN = b"# corral: this file is hidden in the sandbox; lines added below are asked before they reach it\n"
MAX_BYTES = 1 << 20
"""Start-up files larger than this get the plain read-only stand-in (an append to them fails inside)."""


def appendable(real: Path) -> bool:
    """Whether the hidden `real` file can take captured appends: a regular file (not a link) of at
    most `MAX_BYTES`."""
    try:
        st = os.lstat(real)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size <= MAX_BYTES


def plant(stand_in: Path, real: Path) -> None:
    """Create the writable stand-in of `real` (absent before) with the real file's mode."""
    mode = stat.S_IMODE(os.lstat(real).st_mode) | 0o600
    fd = os.open(stand_in, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if os.write(fd, STAND_IN) != len(STAND_IN):
            raise OSError("short write of a stand-in")
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _read_bounded(fd: int) -> bytes | None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES + len(STAND_IN):
        return None
    chunks: list[bytes] = []
    total = 0
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_BYTES + len(STAND_IN):
            return None
    return b"".join(chunks)


def _real_content(real: Path) -> bytes | None:
    try:
        fd = os.open(real, FILE_FLAGS)
    except OSError:
        return None
    try:
        return _read_bounded(fd)
    finally:
        os.close(fd)


def merge(stand_ins: Mapping[Path, Path], upper: Path) -> set[Path]:
    """Rewrite each appended-to stand-in (real path -> stand-in path in `upper`, a home's capture
    layer) as the real content plus the added lines. Returns the real paths whose stand-in holds only
    `STAND_IN` still (nothing added): the capture ignores them."""
    unchanged: set[Path] = set()
    if not stand_ins:
        return unchanged
    try:
        root_fd = open_root(upper)
    except OSError:
        return unchanged
    try:
        for real, stand_in in stand_ins.items():
            try:
                parts = stand_in.relative_to(upper).parts
            except ValueError:
                continue
            with contextlib.suppress(OSError):
                if _merge_one(root_fd, parts, real):
                    unchanged.add(real)
    finally:
        os.close(root_fd)
    return unchanged


def _merge_one(root_fd: int, parts: tuple[str, ...], real: Path) -> bool:
    """Merge one stand-in; True when it holds only `STAND_IN`."""
    parent_fd = open_beneath(root_fd, parts[:-1], DIR_FLAGS) if len(parts) > 1 else os.dup(root_fd)
    try:
        name = parts[-1]
        fd = os.open(name, FILE_FLAGS, dir_fd=parent_fd)
        try:
            content = _read_bounded(fd)
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        if content is None or not content.startswith(STAND_IN):
            return False
        if content == STAND_IN:
            return True
        original = _real_content(real)
        if original is None:
            return False  # the real file went away or is no longer a regular file: shown as written
        temp = f".{name}.corral-{secrets.token_hex(4)}"
        out = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent_fd
        )
        try:
            data = memoryview(original + content[len(STAND_IN) :])
            while data:
                data = data[os.write(out, data) :]
            os.fchmod(out, mode)
        finally:
            os.close(out)
        os.rename(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        return False
    finally:
        os.close(parent_fd)
