"""The processes a live session's commands left running in the background, for front ends to list and stop.

A command that leaves processes behind in a live session keeps its sandbox (`sandbox.background`);
the Session holds it here with the command's text and the fingerprints of the crossings already
decided for it, so reading it again when it ends asks only about what is new. Front ends see
`BackgroundInfo` values only (id, command, processes, listening ports), never the sandbox itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from boundary.termsafe import visible
from sandbox.background import BackgroundProcess, KeptSandbox


@dataclass(frozen=True, slots=True)
class BackgroundInfo:
    """One kept sandbox as a front end shows it. `command` and the processes' argv are the sandbox's
    text: show them through `boundary.termsafe`."""

    id: int
    command: str
    running: bool
    processes: tuple[BackgroundProcess, ...]
    ports: tuple[int, ...]
    started_at: float


@dataclass
class BackgroundJob:
    kept: KeptSandbox
    command: str
    decided: frozenset[str]
    """Fingerprints (`corral.session._fingerprints`) of the crossings decided when the command ended."""


class BackgroundJobs:
    """The session's kept sandboxes, by id (thread-safe)."""

    def __init__(self) -> None:
        self._jobs: dict[int, BackgroundJob] = {}
        self._lock = threading.Lock()

    def keep(self, kept: KeptSandbox, command: str, decided: frozenset[str]) -> None:
        with self._lock:
            self._jobs[kept.id] = BackgroundJob(kept, command, decided)

    def infos(self, keeper_pid: int | None) -> list[BackgroundInfo]:
        with self._lock:
            jobs = list(self._jobs.values())
        infos: list[BackgroundInfo] = []
        for job in jobs:
            running = job.kept.running()
            processes = tuple(job.kept.processes()) if running else ()
            ports = tuple(job.kept.listening_ports(keeper_pid)) if running and keeper_pid else ()
            infos.append(
                BackgroundInfo(job.kept.id, job.command, running, processes, ports, job.kept.started_at)
            )
        return infos

    def count(self) -> int:
        with self._lock:
            return len(self._jobs)

    def take(self, job_id: int) -> BackgroundJob | None:
        with self._lock:
            return self._jobs.pop(job_id, None)

    def take_ended(self) -> list[BackgroundJob]:
        """The jobs whose processes have all exited on their own."""
        with self._lock:
            ended = [job for job in self._jobs.values() if not job.kept.running()]
            for job in ended:
                del self._jobs[job.kept.id]
        return ended

    def take_all(self) -> list[BackgroundJob]:
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        return jobs


STOP_WORDS = ("stop", "kill")


def background_lines(infos: list[BackgroundInfo], *, limit: int = 120) -> list[str]:
    """`jobs` in a shell: one line per background job (text escaped: it is the sandbox's)."""
    if not infos:
        return ["nothing of this session runs in the background"]
    lines: list[str] = []
    for info in infos:
        state = "running" if info.running else "ended"
        pids = " ".join(str(p.pid) for p in info.processes[:8])
        ports = f"; listening on {', '.join(str(p) for p in info.ports)}" if info.ports else ""
        command = visible(info.command, one_line=True)[:limit]
        lines.append(f"[{info.id}] {state:<8} {command}  (pids {pids or '-'}{ports})")
    lines.append("stop one with: stop N")
    return lines


def stop_argument(text: str) -> int | None:
    """The job id of a `stop N` / `kill %N` built-in line, or None when the line is not one."""
    words = text.split()
    if len(words) != 2 or words[0] not in STOP_WORDS:
        return None
    digits = words[1].removeprefix("%")
    return int(digits) if digits.isdigit() else None
