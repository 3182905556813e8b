"""Build the argv that runs a command under `sandbox.landlock_exec`, and hand it its spec.

The launcher's code travels in the argv (`python -I -S -c SOURCE`): inside bwrap the corral install is
usually not visible (it lives in the hidden home), a system interpreter is. The spec goes through a pipe
(it can list thousands of carved paths), its status comes back through another: nothing written and the
`ok` means the command is being exec'd; any other line (or none) means it was not, and says why.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
SYSTEM_PYTHONS = (Path("/usr/bin/python3"), Path("/bin/python3"))


class LaunchFailed(RuntimeError):
    """The launcher did not exec the command (its one line says why)."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


@functools.cache
def launcher_source() -> str:
    """`sandbox/landlock.py` and `sandbox/landlock_watch.py` as modules of those names, then the launcher."""
    modules = "".join(
        f"{name} = types.ModuleType({name!r})\n"
        f"sys.modules[{name!r}] = {name}\n"
        f"exec(compile({(_HERE / (name + '.py')).read_text()!r}, '{name}.py', 'exec'), {name}.__dict__)\n"
        for name in ("landlock", "landlock_watch")
    )
    launcher = (_HERE / "landlock_exec.py").read_text()
    return (
        "import sys, types\n"
        f"{modules}"
        f"__name__ = '__main__'\n"
        f"exec(compile({launcher!r}, 'landlock_exec.py', 'exec'))\n"
    )


def system_python() -> Path | None:
    """A root-owned system interpreter (visible inside bwrap), or None."""
    for candidate in SYSTEM_PYTHONS:
        try:
            st = candidate.stat()
        except OSError:
            continue
        if st.st_uid == 0 and not st.st_mode & 0o022 and os.access(candidate, os.X_OK):
            return candidate
    return None


def host_python() -> str:
    """The interpreter for the launcher on the host: the system one when there is one (corral's own may
    live where the person running corral cannot exec it, e.g. a root-owned pyenv), else corral's."""
    system = system_python()
    return str(system) if system is not None else sys.executable


@dataclass(slots=True)
class Launch:
    """The pipes of one launch: the spec is written to `spec_w`, the status read from `status_r`."""

    spec_r: int
    spec_w: int
    status_r: int
    status_w: int

    @classmethod
    def open(cls) -> Launch:
        spec_r, spec_w = os.pipe()
        status_r, status_w = os.pipe()
        return cls(spec_r, spec_w, status_r, status_w)

    def argv(self, python: str | Path, command: Sequence[str], *, spec_fd: int | None = None) -> list[str]:
        """`spec_fd`/the status fd as the launcher will see them (bwrap keeps the numbers it is given)."""
        spec = self.spec_r if spec_fd is None else spec_fd
        return [
            str(python),
            "-I",
            "-S",
            "-c",
            launcher_source(),
            str(spec),
            str(self.status_w),
            "--",
            *command,
        ]

    @property
    def child_fds(self) -> list[int]:
        return [self.spec_r, self.status_w]

    def send(self, spec: dict[str, object]) -> None:
        """Write the spec (after the child started: a large spec does not fit a pipe's buffer)."""
        data = json.dumps(spec).encode()
        try:
            view = memoryview(data)
            while view:
                written = os.write(self.spec_w, view)
                view = view[written:]
        finally:
            os.close(self.spec_w)
            self.spec_w = -1

    def close_child_ends(self) -> None:
        for name in ("spec_r", "status_w"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def status(self) -> None:
        """Raise LaunchFailed unless the launcher says `ok` (it is about to exec the command). Blocks until
        it says something, or every copy of the pipe is closed (it died)."""
        buffer = b""
        while b"\n" not in buffer:
            chunk = os.read(self.status_r, 4096)
            if not chunk:
                break
            buffer += chunk
        os.close(self.status_r)
        self.status_r = -1
        text = buffer.decode(errors="replace").strip()
        if text != "ok":
            raise LaunchFailed(
                text or "the launcher ended without a word", not_found=text.startswith("not found: ")
            )

    def close(self) -> None:
        self.close_child_ends()
        for name in ("spec_w", "status_r"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
