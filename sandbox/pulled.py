"""Files that protected files pull in, resolved when the policy is built.

A protected pattern covers `.git/config`, but git also reads every file its config includes
(`include.path`, `includeIf.<cond>.path`, from the system, global and repository config alike), runs
the hooks directory any of them names (`core.hooksPath`), and runs programs they name as commands
(`core.fsmonitor`, `core.pager`, filter and diff drivers, `!` aliases...). direnv runs `.envrc` and with
it whatever that sources (`source_env`, `.envrc.*`) and loads (`dotenv`), and puts `PATH_add`
directories first on the shell's PATH; pre-commit runs `repo: local` hooks' `entry` programs. When
any of these lies inside the workspace, a sandboxed command could change it and the host would run
the change: so each one found is protected like the file that pulls it in.

Only ever narrows the sandbox: nothing read here is executed or widens anything, so it needs no trust.
Files are opened non-blocking, must be regular files, and are read up to a bound; include chains are
followed to a bounded depth (git's own limit is 10).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

MAX_BYTES = 1 << 20
MAX_DEPTH = 10
MAX_FILES = 64

_SECTION = re.compile(r'^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\](.*)$')
_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$")

_COMMAND_KEYS = frozenset(
    {
        ("core", "fsmonitor"),
        ("core", "pager"),
        ("core", "editor"),
        ("core", "sshcommand"),
        ("core", "askpass"),
        ("sequence", "editor"),
        ("gpg", "program"),
        ("diff", "external"),
        ("credential", "helper"),
    }
)
_DRIVER_KEYS = frozenset(
    {
        ("filter", "clean"),
        ("filter", "smudge"),
        ("filter", "process"),
        ("diff", "textconv"),
        ("diff", "command"),
        ("merge", "driver"),
    }
)


def read_small(path: Path) -> str:
    """The text of a regular file (bounded), or "" — never blocks on a FIFO or device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, MAX_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def _unquote(value: str) -> str:
    value = value.strip()
    out: list[str] = []
    quoted = False
    index = 0
    while index < len(value):
        char = value[index]
        if char == '"':
            quoted = not quoted
        elif char == "\\" and index + 1 < len(value):
            index += 1
            out.append({"n": "\n", "t": "\t"}.get(value[index], value[index]))
        elif char in "#;" and not quoted:
            break
        else:
            out.append(char)
        index += 1
    return "".join(out).strip()


def config_entries(text: str) -> Iterator[tuple[str, str | None, str, str]]:
    """(section, subsection, key, value) for every entry of a git config file, names lower-cased."""
    section, subsection = "", None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = _SECTION.match(line)
        if header:
            name = header.group(1).lower()
            if "." in name:  # the old `[section.subsection]` spelling
                name, _, sub = name.partition(".")
                section, subsection = name, sub
            else:
                section, subsection = name, header.group(2)
            line = header.group(3).strip()
            if not line:
                continue
        key = _KEY.match(line)
        if key:
            yield section, subsection, key.group(1).lower(), _unquote(key.group(2) or "true")


def _expand(value: str, base: Path, home: Path) -> Path:
    if value.startswith("~/"):
        return home / value[2:]
    path = Path(value)
    return path if path.is_absolute() else base / path


def _program(command: str, base: Path, home: Path) -> Path | None:
    """The program a configured command runs, when it is named by a path (not looked up on PATH)."""
    command = command.lstrip("!").strip()
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words or "/" not in words[0]:
        return None
    return _expand(words[0], base, home)


def git_sources(workspace: Path, home: Path, environ: Mapping[str, str]) -> list[Path]:
    """The config files host git reads in `workspace`, before includes."""
    sources = [Path("/etc/gitconfig"), home / ".gitconfig"]
    sources.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "git" / "config")
    git_dir = workspace / ".git"
    if not git_dir.is_dir():
        text = read_small(git_dir)
        if text.startswith("gitdir:"):
            target = Path(text[len("gitdir:") :].strip())
            git_dir = target if target.is_absolute() else workspace / target
    sources += [git_dir / "config", git_dir / "config.worktree"]
    common = read_small(git_dir / "commondir").strip()
    if common:
        common_dir = Path(common) if os.path.isabs(common) else git_dir / common
        sources.append(common_dir / "config")
    return sources


def git_pulled(workspace: Path, home: Path, environ: Mapping[str, str]) -> list[Path]:
    """Included config files, hooks directories and configured programs, following include chains."""
    found: list[Path] = []
    seen: set[Path] = set()
    queue: list[tuple[Path, int]] = [(p, 0) for p in git_sources(workspace, home, environ)]
    while queue and len(seen) < MAX_FILES:
        source, depth = queue.pop(0)
        real = Path(os.path.realpath(source))
        if real in seen:
            continue
        seen.add(real)
        for section, subsection, key, value in config_entries(read_small(real)):
            if key == "path" and section in ("include", "includeif"):
                included = _expand(value, real.parent, home)
                found.append(included)
                if depth + 1 < MAX_DEPTH:
                    queue.append((included, depth + 1))
            elif (section, key) == ("core", "hookspath"):
                found.append(_expand(value, workspace, home))
            elif (
                (section, key) in _COMMAND_KEYS
                or ((section, key) in _DRIVER_KEYS and subsection)
                or (section == "alias" and value.startswith("!"))
            ):
                program = _program(value, workspace, home)
                if program is not None:
                    found.append(program)
    return found


_DIRENV_FILES = re.compile(
    r"^\s*(dotenv|dotenv_if_exists|source_env|source_env_if_exists|source|\.|PATH_add|path_add|watch_file)\b(.*)$"
)


def direnv_pulled(workspace: Path, home: Path) -> list[Path]:
    """What the workspace's `.envrc` files source, load and put on PATH (followed, bounded)."""
    found: list[Path] = []
    seen: set[Path] = set()
    queue = [workspace / ".envrc", *sorted(workspace.glob(".envrc.*"))]
    while queue and len(seen) < MAX_FILES:
        envrc = queue.pop(0)
        real = Path(os.path.realpath(envrc))
        if real in seen:
            continue
        seen.add(real)
        for line in read_small(real).splitlines():
            match = _DIRENV_FILES.match(line)
            if not match:
                continue
            verb = match.group(1)
            try:
                words = shlex.split(match.group(2), comments=True)
            except ValueError:
                words = match.group(2).split()
            if verb in ("dotenv", "dotenv_if_exists") and not words:
                words = [".env"]
            for word in words[:4]:
                if "$" in word:
                    continue
                target = _expand(word, real.parent, home)
                found.append(target)
                if verb in ("source_env", "source_env_if_exists", "source", "."):
                    queue.append(target / ".envrc" if target.is_dir() else target)
    return found


_ENTRY = re.compile(r"^\s*-?\s*entry\s*:\s*(.+?)\s*$")


def precommit_pulled(workspace: Path, home: Path) -> list[Path]:
    """Programs `repo: local` pre-commit hooks run by path."""
    found: list[Path] = []
    for line in read_small(workspace / ".pre-commit-config.yaml").splitlines():
        match = _ENTRY.match(line)
        if match:
            program = _program(match.group(1).strip("'\""), workspace, home)
            if program is not None:
                found.append(program)
    return found


def pulled_in(
    workspace: Path, home: Path, environ: Mapping[str, str], homes: Iterable[Path] = ()
) -> list[Path]:
    """Every file or directory inside `workspace` that a protected file pulls in (canonical paths)."""
    workspace = Path(os.path.realpath(workspace))
    candidates = [
        *git_pulled(workspace, home, environ),
        *direnv_pulled(workspace, home),
        *precommit_pulled(workspace, home),
    ]
    for other in homes:
        if other != home:
            candidates += git_pulled(workspace, other, {})
    result: list[Path] = []
    for candidate in candidates:
        real = Path(os.path.realpath(os.path.abspath(candidate)))
        for path in (Path(os.path.abspath(candidate)), real):
            if (path == workspace or workspace in path.parents) and path != workspace and path not in result:
                result.append(path)
    return result
