"""Every figure of the performance issue in one run, interleaved: corral beside bare, raw bwrap and srt.

    .venv/bin/python bench/bench_all.py [--rounds 10] [--markdown] [--skip srt,big-repo,writes,proxy]

Each round runs every row once, in turn, so the machine's load hits all rows alike; the table shows
the median and min–max of the rounds, each row's ratio to its group's reference, the goals with
met / not met, and the load average before and after. Groups:

- `true`: bare; raw bwrap (`--unshare-all --ro-bind / / --dev /dev --proc /proc`); sandbox-runtime's
  `srt -c true` (its CLI) and its library (`SandboxManager.wrapWithSandbox` + spawn, initialised once,
  as an embedder runs it); `corral run -- true` cold (a project with no session); corral warm (a live
  `corral session` process: the broker round trip from this process, and a `corral run -- true` client);
- 10,000 written files (`sh` writes `w10k/f0..f9999` in the workspace; removed between rounds);
- `git status` in a 50,000-file, ~1 GB repository (generated once under `--cache`, reused);
- the proxy: curl downloads 200 MB from a local HTTP server, direct and through corral's egress proxy
  (plain HTTP and CONNECT), and curl's time to first byte of a 1-byte file (connection set-up).

sandbox-runtime rows appear when `srt` is found (`--srt PATH`, else `$CORRAL_BENCH_SRT`, else on
PATH); install it as README's Performance section says. Runs in throwaway workspaces with HOME and
XDG_* in a temporary directory (the big repository lives in the cache and is only read and statted).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_proxy import serve_http_process

WRITES = 10_000
WRITE_SCRIPT = f"mkdir w10k && cd w10k && i=0 && while [ $i -lt {WRITES} ]; do echo x > f$i; i=$((i+1)); done"
BIG_FILES = 50_000
BIG_BYTES = 1_000_000_000
PROXY_MB = 200
SETUP_CONNECTIONS = 20
BENCH_HOST = "bench.example"
PACKAGES = ("boundary", "sandbox", "trust", "corral", "tui", "cli")


@dataclass
class Row:
    group: str
    name: str
    action: Callable[[], list[float]]
    """One round: returns one or more samples (ms, or MB/s for throughput rows)."""
    reference: bool = False
    unit: str = "ms"
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass(frozen=True)
class Goal:
    text: str
    row: str
    reference: str
    limit: float
    higher_is_better: bool = False


GOALS = (
    Goal("warm `true` ≤ 1.5× raw bwrap", "corral warm: broker round trip", "raw bwrap", 1.5),
    Goal("cold `corral run` ≤ 0.25× `srt -c true`", "corral run, cold (no session)", "srt -c", 0.25),
    Goal("10,000 written files ≤ 1.1× bare", "corral run via live session", "bare", 1.1),
    Goal("big-repo `git status` warm ≤ 1.2× bare", "corral run via live session", "bare", 1.2),
    Goal("proxy ≥ 90% of direct, plain HTTP", "corral proxy, plain HTTP", "direct", 0.9, True),
    Goal("proxy ≥ 90% of direct, CONNECT", "corral proxy, CONNECT", "direct", 0.9, True),
)
GOAL_GROUPS = ("true", "true", "10,000 written files", "big-repo git status", "proxy", "proxy")


def timed(run: Callable[[], object]) -> Callable[[], list[float]]:
    def action() -> list[float]:
        start = time.perf_counter()
        run()
        return [(time.perf_counter() - start) * 1000]

    return action


def check(argv: list[str], **options: object) -> None:
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **options)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"{argv[:4]}… exited {result.returncode}: {result.stderr.decode()[-400:]}")


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# -- the fixtures --------------------------------------------------------------------------------


def isolated_env(base: Path) -> dict[str, str]:
    home = base / "home"
    runtime = base / "run"
    home.mkdir(parents=True)
    runtime.mkdir(mode=0o700)
    return dict(
        os.environ,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime),
    )


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def big_repo(cache: Path) -> Path:
    """50,000 files, ~1 GB, committed: generated once (a few minutes) and kept under `cache`."""
    repo = cache / f"bigrepo-{BIG_FILES}"
    done = cache / f"bigrepo-{BIG_FILES}.done"
    if done.exists():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    print(f"generating {repo} ({BIG_FILES} files, ~{BIG_BYTES // 10**9} GB), once…", file=sys.stderr)
    new_repo(repo)
    size = BIG_BYTES // BIG_FILES
    block = os.urandom(size)
    for index in range(BIG_FILES):
        directory = repo / f"d{index // 500:03d}" / f"e{index // 50 % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        # distinct content per file (git stores each once), cheap to make
        (directory / f"f{index}.dat").write_bytes(index.to_bytes(8, "little") + block[8:])
    git = ["git", "-C", str(repo), "-c", "core.compression=0", "-c", "core.looseCompression=0"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run(
        [*git, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "big"],
        check=True,
    )
    subprocess.run(["git", "-C", str(repo), "status", "--short"], check=True, stdout=subprocess.DEVNULL)
    done.touch()
    return repo


def compile_bytecode() -> None:
    """Compile corral's modules, as installing it does (pip compiles every module it installs): the cold
    rows then measure corral starting, not Python recompiling sources whose cached bytecode is stale (an
    editable install run with PYTHONDONTWRITEBYTECODE set would recompile them at every start)."""
    root = Path(__file__).resolve().parent.parent
    packages = [str(root / name) for name in PACKAGES]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *packages], check=True, stdout=subprocess.DEVNULL
    )


def find_srt(explicit: str | None) -> str | None:
    candidate = explicit or os.environ.get("CORRAL_BENCH_SRT") or shutil.which("srt")
    return candidate if candidate and Path(candidate).exists() else None


SRT_LIBRARY_SCRIPT = """
import { spawn } from 'node:child_process';
import readline from 'node:readline';
const [entry, configText] = process.argv.slice(2);
const { SandboxManager } = await import(entry);
await SandboxManager.initialize(JSON.parse(configText));
const lines = readline.createInterface({ input: process.stdin });
process.stdout.write('ready\\n');
for await (const line of lines) {
  const { command, cwd } = JSON.parse(line);
  const started = process.hrtime.bigint();
  const wrapped = await SandboxManager.wrapWithSandbox(command);
  const code = await new Promise((done) => {
    spawn(wrapped, { shell: true, stdio: 'ignore', cwd }).on('exit', done);
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(JSON.stringify({ ms, code }) + '\\n');
}
await SandboxManager.reset();
"""


class SrtLibrary:
    """sandbox-runtime as a library: one node process, initialised once, wrapping and spawning."""

    def __init__(self, srt: str, config: dict[str, object], base: Path, env: dict[str, str]) -> None:
        entry = Path(os.path.realpath(srt)).parent / "index.js"
        script = base / "srt-library.mjs"
        script.write_text(SRT_LIBRARY_SCRIPT)
        self.process = subprocess.Popen(
            ["node", str(script), entry.as_uri(), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the srt library runner did not start")

    def run(self, command: str, cwd: Path) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"command": command, "cwd": str(cwd)}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if answer["code"] != 0:
            raise RuntimeError(f"srt library: {command!r} exited {answer['code']}")
        return float(answer["ms"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def live_session(corral: str, workspace: Path, env: dict[str, str], log: Path) -> Iterator[None]:
    """A `corral session` process serving `workspace` (no terminal: crossings are denied)."""
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [corral, "session", "--on-violation", "deny", str(workspace)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "serving" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"corral session did not start: {log.read_text()[-400:]}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(30)


# -- the rows ------------------------------------------------------------------------------------


def build_rows(args: argparse.Namespace, stack: contextlib.ExitStack, base: Path) -> list[Row]:
    env = isolated_env(base)
    os.environ.update(env)  # corral's own modules (the broker client) read the same places
    cold = new_repo(base / "home" / "cold")
    warm = new_repo(base / "home" / "warm")
    corral = str(Path(sys.executable).with_name("corral"))

    from corral.broker import client, protocol
    from corral.locations import Locations
    from sandbox.locate import find_bwrap

    locations = Locations.default()
    bwrap = str(find_bwrap(workspace=warm, cache_dir=locations.cache_dir).path)
    minimal = [bwrap, "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    srt = None if "srt" in args.skip else find_srt(args.srt)
    srt_env = dict(env)
    srt_env["PATH"] = f"{Path(bwrap).parent}:{env.get('PATH', '')}"  # srt wants `bwrap` on PATH
    workspaces = [cold, warm]
    repo = None if "big-repo" in args.skip else big_repo(Path(args.cache))
    if repo is not None:
        workspaces.append(repo)
    srt_config: dict[str, object] = {
        "network": {"allowedDomains": [BENCH_HOST, "localhost", "127.0.0.1"], "deniedDomains": []},
        "filesystem": {
            "denyRead": [],
            "allowRead": [],
            "allowWrite": [str(path) for path in workspaces],
            "denyWrite": [],
        },
    }
    srt_settings = base / "srt-settings.json"
    srt_settings.write_text(json.dumps(srt_config))
    library = None
    if srt is not None:
        library = SrtLibrary(srt, srt_config, base, srt_env)
        stack.callback(library.close)

    stack.enter_context(live_session(corral, warm, env, base / "session-warm.log"))
    if repo is not None:
        stack.enter_context(live_session(corral, repo, env, base / "session-big.log"))

    def broker_true() -> None:
        sock = client.connect(locations.runtime_dir, warm)
        assert sock is not None, "the live session is gone"
        result = client.run(sock, protocol.RunRequest(argv=("true",)), on_output=lambda _s, _d: None)
        assert result.status == 0, result

    def command_rows(
        group: str, shell: str, cwd: Path, warm_cwd: Path, after: Callable[[Path], None]
    ) -> list[Row]:
        def at(path: Path, run: Callable[[], object]) -> Callable[[], list[float]]:
            def action() -> list[float]:
                samples = timed(run)()
                after(path)
                return samples

            return action

        rows = [
            Row(
                group, "bare", at(cwd, lambda: check(["sh", "-c", shell], cwd=cwd)), reference=group != "true"
            ),
            Row(
                group,
                "raw bwrap",
                at(
                    cwd,
                    lambda: check(
                        [*minimal, "--bind", str(cwd), str(cwd), "--chdir", str(cwd), "sh", "-c", shell]
                    ),
                ),
                reference=group == "true",
            ),
        ]
        if srt is not None:
            srt_argv = [srt, "-s", str(srt_settings), "-c", shell]
            rows.append(Row(group, "srt -c (CLI)", at(cwd, lambda: check(srt_argv, cwd=cwd, env=srt_env))))
        if library is not None:
            lib = library

            def through_library() -> list[float]:
                sample = lib.run(shell, cwd)
                after(cwd)
                return [sample]

            rows.append(Row(group, "srt library (initialised once)", through_library))
        run_argv = [corral, "run", "--", "sh", "-c", shell]
        rows.append(
            Row(group, "corral run, cold (no session)", at(cwd, lambda: check(run_argv, cwd=cwd, env=env)))
        )
        rows.append(
            Row(
                group,
                "corral run via live session",
                at(warm_cwd, lambda: check(run_argv, cwd=warm_cwd, env=env)),
            )
        )
        return rows

    def nothing(_path: Path) -> None:
        return None

    rows: list[Row] = []
    if "true" not in args.skip:
        rows = command_rows("true", "true", cold, warm, nothing)
        rows.insert(
            4 if srt is None else 6, Row("true", "corral warm: broker round trip", timed(broker_true))
        )
    if "writes" not in args.skip:

        def clear(path: Path) -> None:
            target = path / "w10k"
            written = sum(1 for _ in target.iterdir())
            if written != WRITES:
                raise RuntimeError(f"{target}: {written} files, not {WRITES}")
            shutil.rmtree(target)

        rows += command_rows("10,000 written files", WRITE_SCRIPT, cold, warm, clear)
    if repo is not None:
        big_rows = command_rows("big-repo git status", "git status --short >/dev/null", repo, repo, nothing)
        # cold and warm share the big repository: the cold row runs with --no-session there
        for row in big_rows:
            if row.name.startswith("corral run, cold"):
                argv = [corral, "run", "--no-session", "--", "sh", "-c", "git status --short >/dev/null"]
                row.action = timed(lambda argv=argv: check(argv, cwd=repo, env=env))  # type: ignore[misc]
                row.name = "corral run --no-session (cold)"
        rows += big_rows
    if "proxy" not in args.skip:
        rows += proxy_rows(stack, base)
    return rows


def proxy_rows(stack: contextlib.ExitStack, base: Path) -> list[Row]:
    from sandbox.egress.proxy import EgressProxy

    payload = base / "payload.bin"
    with payload.open("wb") as out:
        out.truncate(PROXY_MB * 1_000_000)
    port = stack.enter_context(serve_http_process(payload))
    proxy = EgressProxy(
        lambda host, _port: host == BENCH_HOST,
        lambda _host, wanted: [("127.0.0.1", wanted)],  # the benchmark name stands for the local server
        is_address_allowed=lambda address: str(address) == "127.0.0.1",
    )
    stack.callback(proxy.close)
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    proxy.serve(listener)
    proxy_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    big, small = f"http://{BENCH_HOST}:{port}/big", f"http://{BENCH_HOST}:{port}/small"
    direct = ["--resolve", f"{BENCH_HOST}:{port}:127.0.0.1"]
    ways = {
        "direct": direct,
        "corral proxy, plain HTTP": ["-x", proxy_url],
        "corral proxy, CONNECT": ["-p", "-x", proxy_url],
    }

    def curl(options: list[str], urls: list[str]) -> list[tuple[int, float, float]]:
        written = "%{size_download} %{time_total} %{time_starttransfer}\\n"
        output = subprocess.run(
            [
                "curl",
                "-sS",
                "--noproxy",
                "",
                *options,
                "-w",
                written,
                *[part for url in urls for part in (url, "-o", "/dev/null")],
            ],
            check=True,
            capture_output=True,
            text=True,
            env={key: value for key, value in os.environ.items() if "proxy" not in key.lower()},
        ).stdout
        return [
            (int(size), float(total), float(first))
            for size, total, first in (line.split() for line in output.splitlines())
        ]

    def throughput(options: list[str]) -> Callable[[], list[float]]:
        def action() -> list[float]:
            [(size, total, _first)] = curl(options, [big])
            if size != PROXY_MB * 1_000_000:
                raise RuntimeError(f"curl got {size} bytes")
            return [size / total / 1e6]

        return action

    def setup(options: list[str]) -> Callable[[], list[float]]:
        def action() -> list[float]:
            return [first * 1000 for _size, _total, first in curl(options, [small] * SETUP_CONNECTIONS)]

        return action

    rows = [
        Row(
            "proxy",
            name,
            throughput(options),
            reference=name == "direct",
            unit="MB/s",
        )
        for name, options in ways.items()
    ]
    rows += [
        Row("connection set-up (first byte)", name, setup(options), reference=name == "direct")
        for name, options in ways.items()
    ]
    return rows


# -- the report ----------------------------------------------------------------------------------


def render(rows: list[Row], markdown: bool, header: list[str]) -> str:
    lines = list(header)
    table: list[tuple[str, ...]] = [("figure", "what", "median", "min–max", "× reference")]
    references = {row.group: row.median for row in rows if row.reference}
    for row in rows:
        reference = references.get(row.group)
        ratio = f"{row.median / reference:.2f}" if reference else ""
        unit = f" {row.unit}"
        table.append(
            (
                row.group,
                row.name,
                f"{row.median:.1f}{unit}" if row.median >= 10 else f"{row.median:.2f}{unit}",
                f"{min(row.samples):.1f}–{max(row.samples):.1f}",
                ratio,
            )
        )
    if markdown:
        lines.append("| " + " | ".join(table[0]) + " |")
        lines.append("|---|---|---:|---:|---:|")
        lines += ["| " + " | ".join(cells) + " |" for cells in table[1:]]
    else:
        widths = [max(len(cells[index]) for cells in table) for index in range(5)]
        lines += [
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) for cells in table
        ]
    lines.append("")
    lines += goal_lines(rows, markdown)
    return "\n".join(lines)


def goal_lines(rows: list[Row], markdown: bool) -> list[str]:
    found: list[str] = []
    by_key = {(row.group, row.name): row for row in rows}
    for goal, group in zip(GOALS, GOAL_GROUPS, strict=True):
        measured = next((row for (g, name), row in by_key.items() if g == group and name == goal.row), None)
        reference = next(
            (row for (g, name), row in by_key.items() if g == group and name.startswith(goal.reference)), None
        )
        if measured is None or reference is None:
            found.append(f"{'- ' if markdown else ''}{goal.text}: not measured in this run")
            continue
        ratio = measured.median / reference.median
        met = ratio >= goal.limit if goal.higher_is_better else ratio <= goal.limit
        found.append(f"{'- ' if markdown else ''}{goal.text}: {ratio:.2f} — {'met' if met else 'NOT met'}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (README)")
    parser.add_argument("--skip", default="", help="comma-separated: srt, true, writes, big-repo, proxy")
    parser.add_argument("--srt", help="the srt CLI (default: $CORRAL_BENCH_SRT, else srt on PATH)")
    parser.add_argument(
        "--cache",
        default="/var/tmp/corral-bench",
        help="where the big repository is kept (not under a home: corral refuses a workspace in ~/.cache)",
    )
    args = parser.parse_args()
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    compile_bytecode()
    base = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, base, True)
        rows = build_rows(args, stack, base)
        for row in rows:
            row.action()  # warm-up: caches, the session's first command
        before = load_line()
        started = time.monotonic()
        for _ in range(args.rounds):
            for row in rows:
                row.samples += row.action()
        after = load_line()
        elapsed = time.monotonic() - started
    header = [
        f"bench/bench_all.py: {args.rounds} interleaved rounds in {elapsed:.0f} s, {os.cpu_count()} CPUs,"
        f" uid {os.getuid()}, load average (1/5/15 min) {before} before, {after} after",
        "",
    ]
    print(render(rows, args.markdown, header))


if __name__ == "__main__":
    main()
