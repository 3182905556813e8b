"""A line typed into a corral shell, once for both front ends: the `cd` built-in, and running the line
in the sandbox with its output through a pipe.

`WorkingDirectory` is the shell's `cd`: it only ever moves inside the workspace (a symlink pointing
out is resolved first and refused), so a typed command never starts outside the directory the
person opened. `run_typed_line` runs the line the way `corral run -c` does (the trusted project's
`before_command` hook, the command, `after_command`, all inside the sandbox through the Session),
with stdin on /dev/null and stdout and stderr on one pipe that the front end's pump reads; the pipe
is closed and the pump joined whatever happens, and an error becomes words (nothing is retried).
Pumps and the Ctrl-C routing are `corral.piping`'s, shared with `corral run`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from corral.command import Command
from corral.piping import PumpFactory, sigint_interrupts
from corral.session import CommandOutcome, Session
from sandbox.runner import StdioSpec

CD_OUTSIDE = "cd: stays inside the workspace"


class WorkingDirectory:
    """The shell's current directory, always the workspace or a directory under it."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.cwd = workspace

    def change(self, where: str) -> str | None:
        """`cd where` (`""`: back to the workspace). None when done, else the error line to show."""
        target = self.workspace if not where else self.cwd / os.path.expanduser(where)
        resolved = Path(os.path.realpath(target))
        if resolved.is_dir() and (resolved == self.workspace or self.workspace in resolved.parents):
            self.cwd = resolved
            return None
        return CD_OUTSIDE

    def label(self) -> str:
        """`.` or `./sub/dir`, relative to the workspace (untrusted: escape it where it is drawn)."""
        try:
            relative = self.cwd.relative_to(self.workspace)
        except ValueError:
            return "."
        return "." if str(relative) == "." else f"./{relative}"


def cd_argument(text: str) -> str | None:
    """The directory of a `cd` built-in line (`""` for a bare `cd`), or None when it is not one."""
    words = text.split()
    if words and words[0] == "cd" and len(words) <= 2:
        return words[1] if len(words) == 2 else ""
    return None


def run_typed(session: Session, text: str, cwd: Path, stdio: StdioSpec) -> CommandOutcome:
    """Run `text` with the shell in the sandbox, with the project's hooks around it."""
    return session.run_with_hooks(Command.from_shell(text), cwd=cwd, stdio=stdio)


def run_typed_line(
    session: Session, text: str, cwd: Path, start_pump: PumpFactory, *, interrupt_on_sigint: bool = False
) -> tuple[CommandOutcome | None, str | None]:
    """Run one typed line with its output to `start_pump`'s pump: (outcome, None), or (None, why not)."""
    read_end, write_end = os.pipe()
    try:
        pump = start_pump(read_end)
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        raise
    stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with sigint_interrupts(session) if interrupt_on_sigint else contextlib.nullcontext():
            return run_typed(session, text, cwd, StdioSpec(stdin, write_end, write_end)), None
    except Exception as failure:  # nothing ran, or the run failed: shown, never retried
        return None, f"{type(failure).__name__}: {failure}"
    finally:
        os.close(write_end)
        os.close(stdin)
        # A process kept in the session's background may hold the pipe open: its later output still
        # reaches the pump, but the prompt does not wait for it.
        pump.join(0.3 if session.has_background() else 5.0)
