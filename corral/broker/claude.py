"""`corral-claude '<command string>'`: the one word to put in `CLAUDE_CODE_SHELL_PREFIX`.

Claude Code runs each Bash tool call as `PREFIX '<string>'`, where the string is

    source ~/.claude/shell-snapshots/snapshot-….sh && eval '<cmd>' < /dev/null && pwd -P >| /tmp/claude-<id>-cwd

and reads `/tmp/claude-<id>-cwd` back from the host to learn the working directory. Inside the
sandbox `/tmp` is private, so that last write would never reach the host. This entry point recognises
exactly that tail (the last `&& pwd -P >| /tmp/claude-<id>-cwd` of the string, checked token by token
with `shlex`), replaces it with `&& printf %s <nonce marker> && pwd -P`, strips the marker and the
path from the end of stdout, and writes the path itself to the cwd file on the host (`O_NOFOLLOW`, a
file of this user only). Nothing else of `/tmp` reaches the host. The snapshot and Claude Code's
background-task output (`/tmp/claude-<uid>/`) are readable inside (see `corral.carveouts`); the rest of
`~/.claude` stays hidden.

The command runs in the project's live session when there is one (prompts reach the person there),
else in a deny-only Session (see `corral.broker.oneshot`). Output is passed through as it arrives
(stdout holds back only its last few kilobytes, where the marker may be); the exit status is
corral's (the command's own; 77 when it succeeded but a crossing was denied).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import sys
import threading
from pathlib import Path

CWD_FILE = re.compile(r"/tmp/claude-[A-Za-z0-9_-]{1,64}-cwd")
_TAIL = re.compile(
    r"\s*&&\s*pwd\s+-P\s+>\|\s*(?P<quote>'?)(?P<path>/tmp/claude-[A-Za-z0-9_-]{1,64}-cwd)(?P=quote)\s*$"
)
HOLD_BACK = 8192
EXIT_USAGE = 2


def split_cwd_tail(text: str) -> tuple[str, str | None]:
    """(the string without Claude Code's cwd-file tail, the cwd file) — or (text, None) when the
    string does not end with exactly that tail."""
    match = _TAIL.search(text)
    if match is None:
        return text, None
    try:
        tokens = shlex.shlex(text, posix=True, punctuation_chars=True)
        tokens.whitespace_split = True
        words = list(tokens)
    except ValueError:
        return text, None  # unbalanced quotes: not a string Claude Code built
    path = match.group("path")
    if words[-5:] != ["&&", "pwd", "-P", ">|", path] or not CWD_FILE.fullmatch(path):
        return text, None
    return text[: match.start()], path


class _CwdTail:
    """Passes stdout through, holding back its last bytes until the end to find the marker there."""

    def __init__(self, marker: bytes, out_fd: int, err_fd: int) -> None:
        self.marker = marker
        self.out_fd = out_fd
        self.err_fd = err_fd
        self.held = bytearray()
        self.lock = threading.Lock()

    def __call__(self, stream: str, data: bytes) -> None:
        if stream != "stdout":
            _write_all(self.err_fd, data)
            return
        with self.lock:
            self.held.extend(data)
            if len(self.held) > HOLD_BACK:
                cut = len(self.held) - HOLD_BACK
                _write_all(self.out_fd, bytes(self.held[:cut]))
                del self.held[:cut]

    def finish(self) -> str | None:
        """Flush stdout; the directory the command ended in, when the marker came last."""
        with self.lock:
            held = bytes(self.held)
            self.held.clear()
        at = held.rfind(self.marker)
        cwd: str | None = None
        if at >= 0:
            rest = held[at + len(self.marker) :]
            if rest.endswith(b"\n") and b"\n" not in rest[:-1] and rest.startswith(b"/"):
                cwd = rest[:-1].decode("utf-8", "surrogateescape")
                held = held[:at]
        _write_all(self.out_fd, held)
        return cwd


def write_cwd_file(path: str, cwd: str) -> bool:
    """Write `cwd` to the host's cwd file the way `pwd -P >|` would, refusing links and other users'
    files (a shared /tmp)."""
    if not CWD_FILE.fullmatch(path):
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return False
        os.ftruncate(fd, 0)
        _write_all(fd, os.fsencode(cwd) + b"\n")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            "usage: corral-claude 'COMMAND STRING' (set CLAUDE_CODE_SHELL_PREFIX=corral-claude)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from corral.broker.oneshot import CommandRunner
    from corral.locations import Locations
    from corral.workspace import WorkspaceError, find_workspace

    try:
        workspace = find_workspace(Path.cwd())
    except WorkspaceError as error:
        print(f"corral: {error}", file=sys.stderr)
        return EXIT_USAGE
    body, cwd_file = split_cwd_tail(args[0])
    marker = f"@corral-cwd-{secrets.token_hex(16)}@"
    text = body if cwd_file is None else f"{body} && printf %s {marker} && pwd -P"
    tail = _CwdTail(marker.encode(), sys.stdout.fileno(), sys.stderr.fileno())
    runner = CommandRunner(workspace, Locations.default())
    try:
        ran = runner.run(text, os.getcwd(), None, None, sink=tail)
    except ValueError as error:
        print(f"corral: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        runner.close()
    cwd = tail.finish()
    if cwd_file is not None and cwd is not None:
        write_cwd_file(cwd_file, cwd)
    for line in ran.messages:
        print(line, file=sys.stderr)
    return ran.status


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            return
        view = view[written:]
