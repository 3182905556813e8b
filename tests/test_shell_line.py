"""The `cd` built-in and the pipe plumbing both shells share (`corral.shell_line`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from corral.shell_line import CD_OUTSIDE, WorkingDirectory, cd_argument, run_typed_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [("cd", ""), ("cd sub", "sub"), ("  cd   sub  ", "sub"), ("cd a b", None), ("cdx", None), ("ls", None)],
)
def test_cd_argument(line: str, expected: str | None) -> None:
    assert cd_argument(line) == expected


def test_cd_stays_inside_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "sub" / "deeper").mkdir(parents=True)
    (workspace / "out").symlink_to(tmp_path)
    directory = WorkingDirectory(workspace)
    assert directory.change("sub") is None and directory.label() == "./sub"
    assert directory.change("deeper") is None and directory.cwd == workspace / "sub" / "deeper"
    assert directory.change("../../..") == CD_OUTSIDE
    assert directory.cwd == workspace / "sub" / "deeper"
    assert directory.change("") is None and directory.label() == "."
    assert directory.change("out") == CD_OUTSIDE  # a symlink pointing out is resolved, then refused
    assert directory.change("/") == CD_OUTSIDE
    assert directory.change("missing") == CD_OUTSIDE
    assert directory.cwd == workspace


class _Broken:
    """A Session stand-in whose run fails before anything starts (the plumbing is what is tested)."""

    def run_with_hooks(self, *args: object, **kwargs: object) -> object:
        raise RuntimeError("sandbox could not start")

    def has_background(self) -> bool:
        return False


def test_a_failed_run_is_words_and_the_pipe_is_closed(tmp_path: Path) -> None:
    seen: list[bytes] = []

    def start_pump(read_end: int) -> threading.Thread:
        def read() -> None:
            with os.fdopen(read_end, "rb") as pipe:
                seen.append(pipe.read())  # returns only once every write end is closed

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    before = len(os.listdir("/proc/self/fd"))
    outcome, error = run_typed_line(_Broken(), "true", tmp_path, start_pump)  # type: ignore[arg-type]
    assert outcome is None and error == "RuntimeError: sandbox could not start"
    assert seen == [b""]
    assert len(os.listdir("/proc/self/fd")) == before
