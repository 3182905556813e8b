"""Replay the real agent sessions in ../shared/traces through the real sandbox and count what a person
would have had to decide, and what the sandbox broke without saying so.

    .venv/bin/python bench/replay_traces.py [--traces DIR] [--session NAME ...] [--as-user USER]
                                            [--timeout SECONDS] [--limit N] [--json FILE]

Each session replays in three worlds made from the session's archive (the repository at its start
commit, a `git init` of it with `origin` pointing at the public URL, never fetched) and a throwaway home:

- **corral**: every command through a corral Session, exactly as `corral run` runs it. The simulated
  person answers "allow for this project" to filesystem prompts (sensitive ones: allow once, as a
  person who never confirms a standing rule there) and **deny to every network prompt**, so nothing
  leaves this machine.
- **baseline 1** and **baseline 2**: the same command unsandboxed but for three things, each a machine
  of its own that persists across the session's commands as a real one does: a network namespace with
  only a loopback (so the baseline cannot reach anything either, while a server one command leaves in
  the background is reachable from the next), a pid namespace with its own /proc (so `ps aux` lists the
  world's processes, not the other worlds' or other users' on this machine), and the world's own `/tmp`
  bound over `/tmp`, so files handed between commands through `/tmp` persist. Both namespaces are held
  by the same keeper corral's live sessions use (`sandbox.sessionns`); what a command leaves in the
  background keeps running until the session's end, as on the author's machine.
  Two baselines run in lockstep so that output that changes from run to run (times, ids) is not taken
  for a difference corral made.

A command is a **silent breakage** when corral's exit status, output or workspace files differ from
both baselines (which agree with each other) and corral neither asked nor reported anything for it
(no violation, no `corral:` line). Outputs are compared after `normalise` (this world's paths, times,
ids and the line a client prints about the proxy variable it used) as multisets of lines: tools that
walk in parallel (`rg`) print the same lines in an order that changes from run to run. Network denials are excluded as the issue asks: a command whose only
difference comes with a denied `net` violation counts as a network denial, not a breakage.

Commands name the author's paths in full (`cd /Users/michael/Code/cipher-box && ...`): the session's
`orig_root` and `orig_home` are mapped to the world's repository and home before running.

Run as root with `--as-user corraltest` (the default when root) to replay as an unprivileged user; the
script re-runs itself under `setpriv` with that user's uid, gid and groups.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from boundary.violations import Violation
from corral.decision import Decision, PromptAnswer, PromptRequest, Scope
from corral.sensitivity import is_sensitive
from sandbox.sessionns import SessionNamespace

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TRACES = next(
    (p / "shared" / "traces" for p in REPO.parents if (p / "shared" / "traces").is_dir()),
    REPO.parent / "shared" / "traces",
)
OUTPUT_LIMIT = 256 * 1024
_VOLATILE = re.compile(
    r"\d+(\.\d+)?\s*(ms|s|µs|us|sec|seconds|minutes?)\b|\b\d{2}:\d{2}:\d{2}\b|\b[0-9a-f]{7,40}\b|\bpid \d+"
)
_PROXY_VARIABLE_LINE = re.compile(r"^\* Uses proxy env variable [^\n]*\n?", re.MULTILINE)
"""`curl -v`'s note of the proxy variable it read (corral sets `NO_PROXY` for the loopback): a line about
the environment, not an outcome."""
DIFF_LIMIT = 1200


@dataclass(slots=True)
class Step:
    """One command of a trace and what happened to it in each world."""

    index: int
    command: str
    background: bool
    exit_corral: int | None = None
    exit_baseline: tuple[int | None, int | None] = (None, None)
    prompts: list[str] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    notice: bool = False
    verdict: str = "same"
    why: str = ""
    output_corral: str = ""
    output_baseline: str = ""
    diff: str = ""
    """The first lines where corral's output and the baseline's differ (a unified diff, bounded)."""


@dataclass(slots=True)
class World:
    """A repository checkout, a home and a /tmp of its own."""

    root: Path
    orig_root: str
    orig_home: str
    runtime: Path
    """XDG_RUNTIME_DIR: outside every home (corral refuses a runtime directory inside the home)."""

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def map(self, text: str) -> str:
        """The author's paths replaced by this world's."""
        return text.replace(self.orig_root, str(self.repo)).replace(self.orig_home, str(self.home))

    def unmap(self, text: str) -> str:
        """This world's paths replaced by neutral words, so outputs of two worlds compare."""
        return (
            text.replace(str(self.repo), "<REPO>")
            .replace(str(self.home), "<HOME>")
            .replace(str(self.tmp), "/tmp")
        )

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(self.home),
            "USER": pwd.getpwuid(os.getuid()).pw_name,
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_STATE_HOME": str(self.home / ".local/state"),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "GIT_CONFIG_NOSYSTEM": "1",
        }


def make_world(root: Path, archive: Path, meta: dict[str, str]) -> World:
    """Unpack the session's archive into `root` and make it a git repository at one commit."""
    runtime = Path(tempfile.mkdtemp(prefix="corral-replay-run-", dir="/tmp"))
    world = World(root, meta["orig_root"], meta["orig_home"], runtime)
    for directory in (world.home, world.tmp):
        directory.mkdir(parents=True, mode=0o700)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if _plain_member(m)]
        tar.extractall(root, members=members)  # members checked by _plain_member
    (world.home / ".gitconfig").write_text("[user]\n\tname = Replay\n\temail = replay@example.invalid\n")
    git = ["git", "-C", str(world.repo), "-c", "core.hooksPath=/dev/null"]
    env = world.env()
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-q", "--no-verify", "-m", f"start of the session at {meta['commit'][:12]}"],
        ["remote", "add", "origin", f"https://github.com/{meta['repo']}.git"],
    ):
        subprocess.run([*git, *args], env=env, check=True, capture_output=True)
    return world


def _plain_member(member: tarfile.TarInfo) -> bool:
    """Files, directories and links that stay inside the archive's `repo/` (no devices, no escapes)."""
    name = Path(member.name)
    if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir() or member.issym()):
        return False
    if member.issym():
        target = Path(member.linkname)
        return not target.is_absolute() and ".." not in (name.parent / target).parts[: len(name.parts) - 1]
    return True


def snapshot(world: World, tmp: Path | None = None) -> dict[str, str]:
    """Each file of the workspace (not .git internals, which differ by time) and of /tmp, by digest.
    `tmp`: where the world's /tmp really is (corral's session /tmp for the corral world)."""
    state: dict[str, str] = {}
    for base, label in ((world.repo, "repo"), (tmp or world.tmp, "tmp")):
        for directory, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d not in ("node_modules", ".git"))
            for name in files:
                path = Path(directory) / name
                try:
                    data = path.read_bytes() if path.stat().st_size < 4 << 20 else b"<big>"
                except OSError:
                    data = b"<unreadable>"
                state[f"{label}/{path.relative_to(base)}"] = hashlib.sha256(data).hexdigest()
    with contextlib.suppress(OSError):
        state["git HEAD"] = (world.repo / ".git" / "HEAD").read_text()
    return state


def delta(before: dict[str, str], after: dict[str, str]) -> dict[str, str | None]:
    """What one command changed: new or changed files with their digest, removed ones as None."""
    changed: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    changed.update({k: None for k in before if k not in after})
    return changed


def normalise(world: World, data: bytes) -> str:
    text = world.unmap(data[:OUTPUT_LIMIT].decode("utf-8", "replace"))
    return _VOLATILE.sub("<N>", _PROXY_VARIABLE_LINE.sub("", text))


def same_output(first: str, second: str) -> bool:
    """Whether two normalised outputs hold the same lines, in any order (see the module docstring)."""
    return first == second or sorted(first.splitlines()) == sorted(second.splitlines())


def output_diff(corral: str, baseline: str) -> str:
    """The first differing lines, baseline first, bounded by DIFF_LIMIT."""
    lines = difflib.unified_diff(
        baseline.splitlines(), corral.splitlines(), "baseline", "corral", n=1, lineterm=""
    )
    return "\n".join(lines)[:DIFF_LIMIT]


def run_baseline(
    world: World, machine: SessionNamespace, command: str, cwd: Path, timeout: float, background: bool
) -> tuple[int | None, str]:
    """The command unsandboxed except for the world's machine (`machine`: its loopback-only network
    and its pid namespace, which the command joins) and the world's own /tmp. bwrap builds that view
    (`--dev-bind / /`: everything else is the host's, writable as it is for this user, and /proc is the
    machine's); it is the same binary corral uses, found the same way. What the command leaves in the
    background keeps running on the machine; a command that times out (or a run-in-background one at
    its 2 s) is killed with its process group, as corral's timer kills corral's."""
    from sandbox.locate import find_bwrap

    argv = [
        str(find_bwrap().path), "--dev-bind", "/", "/", "--bind", str(world.tmp), "/tmp",
        "--die-with-parent", "--chdir", str(cwd), "/bin/bash", "-c", world.map(command),
    ]  # fmt: skip
    join, fds = machine.enter()
    with tempfile.TemporaryFile() as out:
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=world.env(),
                start_new_session=True, preexec_fn=join,
            )  # fmt: skip
        finally:
            for fd in fds:
                os.close(fd)
        try:
            status: int | None = process.wait(timeout=2 if background else timeout)
        except subprocess.TimeoutExpired:
            status = None
        if status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        out.seek(0)
        if status is not None and status < 0:
            status = 128 - status  # killed by a signal: as a shell (and corral) reports it
        return status, normalise(world, out.read())


class Person:
    """Answers as the issue asks: allow filesystem prompts for the project, deny every network prompt."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, request: PromptRequest) -> PromptAnswer:
        answers: dict[Violation, Decision] = {}
        for violation in request.violations:
            self.asked.append(violation.kind.value)
            if violation.kind.value.startswith("net"):
                answers[violation] = Decision(Scope.DENY)
            elif is_sensitive(violation):
                answers[violation] = Decision(Scope.ONCE)
            else:
                answers[violation] = Decision(Scope.PROJECT)
        return answers


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def replay_session(
    name: str, traces: Path, base: Path, timeout: float, limit: int | None, runtimes: list[Path]
) -> list[Step]:
    from corral.command import Command
    from corral.escalation import BurstPolicy, OnViolation
    from corral.locations import Locations
    from corral.opening import open_session
    from sandbox.runner import StdioSpec

    meta = json.loads((traces / f"{name}.meta.json").read_text())
    archive = traces / meta["archive"]
    lines = [json.loads(line) for line in (traces / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    if limit is not None:
        lines = lines[:limit]
    worlds = {label: make_world(base / name / label, archive, meta) for label in ("corral", "one", "two")}
    runtimes.extend(w.runtime for w in worlds.values())
    ours = worlds["corral"]
    states = {label: snapshot(w) for label, w in worlds.items()}
    person = Person()
    steps: list[Step] = []
    machines = {label: SessionNamespace() for label in ("one", "two")}
    with contextlib.ExitStack() as ending, environment(ours.env()):
        for machine in machines.values():
            ending.callback(machine.close)
        session, _warnings = open_session(
            ours.repo, Locations.default(), ask=person, frontend="replay", on_violation=OnViolation.ASK,
            environ=ours.env(), burst=BurstPolicy(max_denials=1 << 30),
        )  # fmt: skip
        try:
            for index, line in enumerate(lines):
                command: str = line["command"]
                step = Step(index, command, bool(line.get("background")))
                relative = line.get("cwd") or "."
                cwds = {
                    label: Path(w.map(relative)) if os.path.isabs(relative) else w.repo / relative
                    for label, w in worlds.items()
                }
                cwds = {label: c if c.is_dir() else worlds[label].repo for label, c in cwds.items()}
                asked_before = len(person.asked)
                with tempfile.TemporaryFile() as out:
                    fired = threading.Event()

                    def stop(event: threading.Event = fired) -> None:
                        event.set()  # timed out: compared as a baseline that timed out (None)
                        session.interrupt(signal.SIGKILL)

                    timer = threading.Timer(2 if step.background else timeout, stop)
                    timer.start()
                    try:
                        outcome = session.run(
                            Command.from_shell(ours.map(command)), cwd=cwds["corral"],
                            stdio=StdioSpec(None, out.fileno(), out.fileno()),
                        )  # fmt: skip
                    finally:
                        timer.cancel()
                    out.seek(0)
                    raw = out.read()
                corral_out = normalise(ours, raw)
                step.exit_corral = None if step.background or fired.is_set() else outcome.exit_code
                step.prompts = person.asked[asked_before:]
                step.reported = [
                    f"{o.violation.kind.value} {o.violation.target}" for o in outcome.outcomes if not o.asked
                ]
                step.notice = bool(step.reported) or any(
                    line.startswith("corral:") for line in corral_out.splitlines()
                )
                with ThreadPoolExecutor(2) as pool:
                    one_run, two_run = (
                        pool.submit(
                            run_baseline,
                            worlds[label],
                            machines[label],
                            command,
                            cwds[label],
                            timeout,
                            step.background,
                        )
                        for label in ("one", "two")
                    )
                    one, two = one_run.result(), two_run.result()
                step.exit_baseline = (one[0], two[0])
                after = {
                    label: snapshot(w, session_tmp(session) if label == "corral" else None)
                    for label, w in worlds.items()
                }
                changes = [delta(states[label], after[label]) for label in worlds]
                states = after
                judge(step, corral_out, one, two, changes)
                steps.append(step)
                print(f"{name} {index:3d} {step.verdict:<9} {command[:90]!r}", file=sys.stderr, flush=True)
        finally:
            session.close()
    return steps


def session_tmp(session: object) -> Path | None:
    """The /tmp the session's commands share (`corral.place`), when the session has one."""
    place = getattr(session, "place", None)
    if place is None:
        return None
    with contextlib.suppress(Exception):
        tmp = place.current().tmp
        return Path(tmp) if tmp is not None else None
    return None


def judge(
    step: Step,
    corral_out: str,
    one: tuple[int | None, str],
    two: tuple[int | None, str],
    changes: list[dict[str, str | None]],
) -> None:
    """Decide whether corral changed the outcome, and whether it said so."""
    differences = []
    if one[0] == two[0] and not step.background and step.exit_corral != one[0]:
        differences.append(f"exit {step.exit_corral} where the baseline exits {one[0]}")
    if same_output(one[1], two[1]) and not same_output(corral_out, one[1]) and not step.background:
        differences.append("output differs")
        step.output_corral, step.output_baseline = corral_out[-600:], one[1][-600:]
        step.diff = output_diff(corral_out, one[1])
    if changes[1] == changes[2] and changes[0] != changes[1]:
        differing = sorted(
            set(changes[0]) ^ set(changes[1])
            | {k for k in changes[0] if changes[1].get(k, "-") != changes[0][k]}
        )
        differences.append("files differ: " + ", ".join(differing[:5]))
    if not differences:
        step.verdict = "prompted" if step.prompts else "same"
        return
    step.why = "; ".join(differences)
    crossed = [*step.prompts, *(item.split(" ", 1)[0] for item in step.reported)]
    if crossed and all(kind.startswith("net") for kind in crossed):
        step.verdict = "net-denied"
    elif step.prompts:
        step.verdict = "prompted"
    elif step.notice:
        step.verdict = "noticed"
    else:
        step.verdict = "silent"


def summarise(results: dict[str, list[Step]]) -> dict[str, object]:
    table: dict[str, object] = {}
    everything: list[Step] = []
    for name, steps in [*results.items(), ("total", None)]:
        rows = everything if steps is None else steps
        if steps is not None:
            everything.extend(steps)
        commands = len(rows) or 1
        prompts = Counter(kind for step in rows for kind in set(step.prompts))
        fs_prompts = sum(1 for s in rows if any(not k.startswith("net") for k in s.prompts))
        table[name] = {
            "commands": len(rows),
            "prompted commands per 100 (filesystem)": round(100 * fs_prompts / commands, 2),
            "prompted commands per 100 by kind": {
                k: round(100 * v / commands, 2) for k, v in sorted(prompts.items())
            },
            "network denials per 100": round(
                100 * sum(s.verdict == "net-denied" for s in rows) / commands, 2
            ),
            "silent breakages per 100": round(100 * sum(s.verdict == "silent" for s in rows) / commands, 2),
            "noticed differences per 100": round(
                100 * sum(s.verdict == "noticed" for s in rows) / commands, 2
            ),
        }
    return table


def _per_100(row: dict[str, object], key: str) -> str:
    value = row.get(key, 0)
    return f"{value:.2f}" if isinstance(value, (int, float)) else str(value)


def _cell(text: str, width: int = 110) -> str:
    """A command or reason inside a Markdown table cell: one line, pipes escaped, bounded."""
    flat = " ".join(text.split())
    if len(flat) > width:
        flat = flat[: width - 1] + "…"
    return flat.replace("|", "\\|").replace("`", "'")


def render_markdown(document: dict[str, object]) -> str:
    """The README section: per session and in total, prompts per 100 commands by kind, network
    denials, silent breakages and noticed differences per 100; then every prompted command and every
    silent or noticed difference, with the run's date, commit and user."""
    summary = document["summary"]
    steps = document["steps"]
    run = document.get("run", {})
    assert isinstance(summary, dict) and isinstance(steps, dict) and isinstance(run, dict)
    kinds = sorted(
        {kind for row in summary.values() for kind in row.get("prompted commands per 100 by kind", {})}
    )
    header = ["session", "commands", *(f"{k} prompts/100" for k in kinds), "all prompts/100",
              "network denials/100", "silent breakages/100", "noticed/100"]  # fmt: skip
    lines = [
        f"Replayed {run.get('date', '?')} on commit `{run.get('commit', '?')}` as `{run.get('user', '?')}` "
        f"(uid {run.get('uid', '?')}), {run.get('timeout', '?')} s per command, "
        f"{'first ' + str(run['limit']) + ' commands of each session' if run.get('limit') else 'every command'}, "
        f"{run.get('seconds', '?')} s in all (`bench/replay_traces.py`):",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for name, row in summary.items():
        by_kind = row.get("prompted commands per 100 by kind", {})
        prompted = sum(1 for step in (steps.get(name) or _all(steps)) if step["prompts"])
        commands = row.get("commands", 0) or 1
        cells = [name if name != "total" else "**total**", str(row.get("commands", 0))]
        cells += [f"{by_kind.get(k, 0):.2f}" for k in kinds]
        cells.append(f"{100 * prompted / commands:.2f}")
        cells += [_per_100(row, "network denials per 100"), _per_100(row, "silent breakages per 100"),
                  _per_100(row, "noticed differences per 100")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    sections = (
        ("Prompts (what a person was asked)", lambda s: bool(s["prompts"]), lambda s: ", ".join(sorted(set(s["prompts"])))),
        ("Silent breakages (corral changed the outcome and said nothing)", lambda s: s["verdict"] == "silent", lambda s: s["why"]),
        ("Noticed differences (changed, with a violation reported or a `corral:` line)", lambda s: s["verdict"] == "noticed", lambda s: s["why"]),
        ("Network denials (excluded: the baseline has no network either)", lambda s: s["verdict"] == "net-denied", lambda s: s["why"]),
    )  # fmt: skip
    for title, wanted, why in sections:
        chosen = [(name, step) for name, rows in steps.items() for step in rows if wanted(step)]
        lines.append(f"{title}: {len(chosen)}")
        lines.append("")
        if chosen:
            lines += ["| session | # | command | what |", "|---|---:|---|---|"]
            lines += [
                f"| {name} | {step['index']} | `{_cell(step['command'])}` | {_cell(why(step), 160)} |"
                for name, step in chosen
            ]
            lines.append("")
    return "\n".join(lines)


_EXIT_ONLY = re.compile(r"^exit (\d+) where the baseline exits (-?\d+|None)$")


def reconcile_exits(document: dict[str, Any]) -> dict[str, Any]:
    """Steps of runs made before the harness compared signal deaths and timeouts alike: a baseline
    killed by signal N (`-N` from Popen) against corral's 128+N, or corral killed at the per-command
    timeout (137) against a baseline that timed out (None), are the same outcome. Only steps whose one
    difference is that are changed; the summary is computed again."""
    changed = False
    for rows in document["steps"].values():
        for step in rows:
            match = _EXIT_ONLY.match(step.get("why", ""))
            if match is None:
                continue
            ours, theirs = int(match.group(1)), match.group(2)
            if (theirs == "None" and ours == 128 + signal.SIGKILL) or (
                theirs != "None" and ours == 128 - int(theirs)
            ):
                step["verdict"], step["why"] = ("prompted" if step["prompts"] else "same"), ""
                changed = True
    if changed:
        results = {name: [Step(**step) for step in rows] for name, rows in document["steps"].items()}
        document = {**document, "summary": summarise(results)}
    return document


def merge_documents(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' documents (different sessions, e.g. run in parallel) as one: steps side by side,
    the summary computed again over all of them, the run facts joined."""
    if len(documents) == 1:
        return documents[0]
    steps: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        steps.update(document["steps"])
    results = {name: [Step(**step) for step in rows] for name, rows in steps.items()}
    runs = [document.get("run", {}) for document in documents]
    run = {
        **runs[0],
        "date": " / ".join(sorted({str(r.get("date", "?")) for r in runs})),
        "commit": ", ".join(sorted({str(r.get("commit", "?")) for r in runs})),
        "seconds": max(int(r.get("seconds", 0)) for r in runs),
    }
    return {"summary": summarise(results), "steps": steps, "run": run}


def _all(steps: dict[str, list[dict[str, object]]]) -> list[dict[str, object]]:
    return [step for rows in steps.values() for step in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    parser.add_argument("--session", action="append", help="replay only this session (repeatable)")
    parser.add_argument("--as-user", default="corraltest" if os.geteuid() == 0 else None)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per command in each world")
    parser.add_argument("--limit", type=int, help="only the first N commands of each session")
    parser.add_argument("--json", type=Path, help="write every step and the summary here")
    parser.add_argument("--markdown", type=Path, help="write the README table and lists here")
    parser.add_argument(
        "--from-json", type=Path, action="append",
        help="replay nothing: render --markdown from these --json files (repeatable: runs of different sessions"
        " are merged)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the worlds for inspection")
    args = parser.parse_args()
    if args.from_json:
        if args.markdown is None:
            parser.error("--from-json needs --markdown")
        documents = [reconcile_exits(json.loads(p.read_text())) for p in args.from_json]
        args.markdown.write_text(render_markdown(merge_documents(documents)))
        return 0
    if args.as_user and os.geteuid() == 0:
        return _as_user(args)
    base = Path(
        os.environ.get("CORRAL_REPLAY_BASE") or tempfile.mkdtemp(prefix="corral-replay-", dir=Path.home())
    )
    names = args.session or sorted(p.name.removesuffix(".meta.json") for p in args.traces.glob("*.meta.json"))
    started = time.monotonic()
    runtimes: list[Path] = []
    try:
        results = {
            name: replay_session(name, args.traces, base, args.timeout, args.limit, runtimes)
            for name in names
        }
    finally:
        if not args.keep:
            for runtime in runtimes:
                shutil.rmtree(runtime, ignore_errors=True)
    elapsed = time.monotonic() - started
    summary = summarise(results)
    print(json.dumps(summary, indent=2))
    for name, steps in results.items():
        for step in steps:
            if step.verdict in ("silent", "noticed") or step.prompts:
                print(
                    f"{name} {step.index:3d} {step.verdict:<10} prompts={step.prompts} {step.why} :: {step.command[:120]!r}"
                )
    print(f"replayed {sum(map(len, results.values()))} commands in {elapsed:.0f} s as uid {os.getuid()}")
    document = {
        "summary": summary,
        "steps": {n: [asdict(s) for s in st] for n, st in results.items()},
        "run": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": _commit(),
            "uid": os.getuid(),
            "user": pwd.getpwuid(os.getuid()).pw_name,
            "seconds": round(elapsed),
            "limit": args.limit,
            "timeout": args.timeout,
        },
    }
    text = json.dumps(document, indent=1)
    if os.environ.get("CORRAL_REPLAY_BASE"):
        (base / "result.json").write_text(text)  # the root parent copies it where it was asked for
    if args.json:
        args.json.write_text(text)
    if args.markdown:
        args.markdown.write_text(render_markdown(document))
    return 0


def _as_user(args: argparse.Namespace) -> int:
    """Re-run this script as `args.as_user` (uid, gid and groups) in a base directory it owns; the
    results are written where the caller asked, by the caller."""
    user = pwd.getpwnam(args.as_user)
    base = Path(tempfile.mkdtemp(prefix="corral-replay-", dir=user.pw_dir))
    os.chown(base, user.pw_uid, user.pw_gid)
    argv: list[str] = []
    skip = False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if arg.startswith("--as-user") or arg.startswith("--json=") or arg.startswith("--markdown="):
            continue
        if arg in ("--json", "--markdown"):
            skip = True
            continue
        argv.append(arg)
    env = {
        **os.environ, "HOME": user.pw_dir, "USER": user.pw_name, "CORRAL_REPLAY_BASE": str(base),
        "CORRAL_REPLAY_COMMIT": _commit(),
    }  # fmt: skip
    command = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--",
               sys.executable, __file__, "--as-user=", *argv]  # fmt: skip
    try:
        status = subprocess.run(command, env=env, check=False).returncode
        result = base / "result.json"
        if status == 0 and result.is_file():
            document = json.loads(result.read_text())
            if args.json:
                args.json.write_text(result.read_text())
            if args.markdown:
                args.markdown.write_text(render_markdown(document))
        return status
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def _commit() -> str:
    """The commit this harness (and corral) ran from, `+dirty` when the tree had changes."""
    if os.environ.get("CORRAL_REPLAY_COMMIT"):
        return os.environ["CORRAL_REPLAY_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
