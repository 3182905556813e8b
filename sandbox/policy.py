"""The policy model: what a sandboxed command may read, write and reach, documented in types.

Semantics, for every backend:
- `read_only_root`: the whole filesystem is visible read-only unless a rule below says otherwise.
- `workspace`: read-write. Writes are captured and applied to the host when the command ends, except
  those at `protected` paths, which become `fs-protected` violations.
- `capture_roots`: writes under these directories (the home, /etc, ...) are captured and reported as
  `fs-write` violations; nothing reaches the host unless a decision allows it.
- `cache_dirs`: tool-chain caches, writable through a persistent per-project layer corral owns; writes
  never reach the host's copy and never prompt.
- `hidden`: unreadable (credentials, corral's own state). An empty tuple hides nothing; a path that does
  not exist on the host needs no mount (there is nothing to read) and a write there is still captured.
- `private_tmp`: /tmp (and /var/tmp) are a fresh tmpfs per command.
- `env`: the exact environment of the command. Nothing else passes.
- `network`: None means no network at all (an empty network namespace, no proxy). A `NetworkAccess`
  means the namespace holds one listener: corral's egress proxy.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sandbox import defaults
from sandbox.housekeeping import housekeeping_env
from sandbox.mounts import host_mount_points


@dataclass(frozen=True, slots=True)
class ProtectedPattern:
    """A protected location inside the workspace, matched at any depth.

    `parts` are shell-style patterns for consecutive path components, matched case-folded and
    Unicode-normalised (NFC), so `.GIT/Hooks` and NFD spellings match too. With `subtree`, everything
    below the location is protected as well.
    """

    parts: tuple[str, ...]
    subtree: bool

    @classmethod
    def parse(cls, text: str, *, subtree: bool) -> ProtectedPattern:
        parts = tuple(fold(part) for part in PurePosixPath(text).parts)
        if not parts or any(part in ("", ".", "..", "/") for part in parts):
            raise ValueError(f"invalid protected pattern {text!r}")
        return cls(parts, subtree)

    def matches(self, relative: PurePosixPath, *, replaces_node: bool) -> bool:
        """Whether a change at `relative` (inside the workspace) touches this protected location.

        A change at or below the location matches (below only for subtrees). A change that replaces or
        removes an ancestor of the location (`replaces_node`: delete, symlink, a file where a directory
        was) matches too, since it would swap out the protected path.
        """
        names = [fold(part) for part in relative.parts]
        width = len(self.parts)
        for start in range(len(names)):
            window = names[start : start + width]
            if len(window) == width:
                if all(fnmatch.fnmatchcase(n, p) for n, p in zip(window, self.parts, strict=True)) and (
                    len(names) == start + width or self.subtree
                ):
                    return True
            elif replaces_node and all(
                fnmatch.fnmatchcase(n, p) for n, p in zip(window, self.parts, strict=False)
            ):
                return True
        return False


def fold(name: str) -> str:
    """Case-fold and NFC-normalise one path component for protected-path matching."""
    return unicodedata.normalize("NFC", name).casefold()


def default_protected() -> tuple[ProtectedPattern, ...]:
    subtrees = (ProtectedPattern.parse(p, subtree=True) for p in defaults.PROTECTED_SUBTREES)
    files = (ProtectedPattern.parse(p, subtree=False) for p in defaults.PROTECTED_FILES)
    return (*subtrees, *files)


@dataclass(frozen=True, slots=True)
class NetworkAccess:
    """The command may reach corral's egress proxy (which decides per host)."""

    proxy_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything a backend needs to build the sandbox for one command. Paths are canonical."""

    workspace: Path
    cwd: Path
    home: Path
    hidden: tuple[Path, ...]
    protected: tuple[ProtectedPattern, ...]
    capture_roots: tuple[Path, ...]
    cache_dirs: tuple[Path, ...]
    env: Mapping[str, str]
    network: NetworkAccess | None = None
    private_tmp: bool = True
    extra_writable: tuple[Path, ...] = ()
    """Paths inside the workspace that a trusted project made writable despite a protected pattern."""
    blanked: tuple[Path, ...] = ()
    """corral's own state: replaced by an empty tmpfs (not reported: nothing there is the user's secret)."""
    protected_roots: tuple[Path, ...] = ()
    """Absolute paths inside the workspace protected with everything below them (e.g. corral's own
    installation when it lives in the project's virtualenv)."""
    readable: tuple[Path, ...] = ()
    """Host paths bound read-only on top of the private /tmp or a hidden directory's decoy, chosen by
    the core (Claude Code's shell snapshots and task output). Never one that would uncover a hidden
    path (see `build_policy`); the backend also drops any that is a link or not the user's own."""

    def is_protected(self, path: Path, *, replaces_node: bool) -> bool:
        """Whether a change at absolute `path` inside the workspace touches a protected location."""
        try:
            relative = PurePosixPath(path.relative_to(self.workspace))
        except ValueError:
            return False
        if any(
            _is_within(path, root) or (replaces_node and path in root.parents)
            for root in self.protected_roots
        ):
            return True
        if any(_is_within(path, allowed) for allowed in self.extra_writable):
            return False
        return any(p.matches(relative, replaces_node=replaces_node) for p in self.protected)

    def is_hidden(self, path: Path) -> bool:
        return any(_is_within(path, hidden) for hidden in (*self.hidden, *self.blanked))

    def in_workspace(self, path: Path) -> bool:
        return _is_within(path, self.workspace)


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def expand_home(text: str, home: Path) -> Path:
    return home / text[2:] if text.startswith("~/") else Path(text)


@functools.lru_cache(maxsize=32)
def _pattern(patterns: tuple[str, ...], fold_case: bool) -> re.Pattern[str]:
    # The patterns use `*` only; a plain translation compiles far faster than fnmatch's.
    joined = "|".join(".*".join(re.escape(part) for part in p.split("*")) for p in patterns) or "(?!)"
    return re.compile(f"(?:{joined})\\Z", re.IGNORECASE if fold_case else 0)


def filter_environment(
    source: Mapping[str, str], allow: Iterable[str], deny: Iterable[str] = defaults.ENV_DENY
) -> dict[str, str]:
    """The allow-listed subset of `source`; a deny pattern (case-insensitive) always wins over allow."""
    allowed = _pattern(tuple(allow), False)
    denied = _pattern(tuple(deny), True)
    return {name: value for name, value in source.items() if allowed.match(name) and not denied.match(name)}


MAX_LINKED_ENTRIES = 512


def resolve_hidden(paths: Iterable[Path], keep_visible: Iterable[Path] = ()) -> list[Path]:
    """Hidden paths as the kernel will see them: a credential that is a symlink (dotfile managers such as
    stow, home-manager, chezmoi) is hidden at its target, and so is the target of every symlink directly
    inside a hidden directory. The link itself then leads to a decoy; nothing reaches the real file.
    A target that is `/` or contains one of `keep_visible` (the home, the workspace) is never hidden; a
    credential link to such a target stays in the list as the link, which the backend refuses."""
    visible = tuple(keep_visible)
    result: list[Path] = []

    def add(candidate: Path, instead: Path | None = None) -> None:
        if candidate == Path("/") or any(_is_within(v, candidate) for v in visible):
            # Hiding the target would hide the home or the workspace. Keep the link itself instead: the
            # sandbox refuses to mount over a symlink, so corral stops with an error (fail closed).
            if instead is not None:
                result.append(instead)
            return
        result.append(candidate)

    for path in paths:
        if not os.path.lexists(path):
            result.append(path)
            continue
        real = Path(os.path.realpath(path))
        if os.path.islink(path):
            add(real, instead=path)
        else:
            add(path)
        if real.is_dir():
            try:
                entries = list(os.scandir(real))[:MAX_LINKED_ENTRIES]
            except OSError:
                continue
            for entry in entries:
                if entry.is_symlink():
                    target = Path(os.path.realpath(entry.path))
                    if target.exists() and not _is_within(target, real):
                        add(target)
    return list(dict.fromkeys(result))


def build_policy(
    *,
    workspace: Path,
    cwd: Path,
    home: Path,
    environ: Mapping[str, str],
    own_state: Iterable[Path] = (),
    extra_hidden: Iterable[Path] = (),
    unhidden: Iterable[Path] = (),
    extra_env: Mapping[str, str] | None = None,
    extra_writable: Iterable[Path] = (),
    protected_roots: Iterable[Path] = (),
    network: NetworkAccess | None = None,
    readable: Iterable[Path] = (),
) -> Policy:
    """The default policy for `workspace`, composed with what the caller adds.

    `own_state` are corral's directories (blank inside). `unhidden` are credential paths the person
    allowed this project to read (fs-read rules). `extra_env` comes from a trusted project and still
    passes through the deny list.
    """
    workspace = Path(os.path.realpath(workspace))
    home = Path(os.path.realpath(home))
    hidden = [expand_home(p, home) for p in defaults.CREDENTIAL_PATHS]
    hidden.extend(Path(os.path.abspath(p)) for p in extra_hidden)
    hidden = resolve_hidden(hidden, keep_visible=(home, workspace))
    # Paths the person allowed reading for this project (an fs-read rule): visible again, and nothing
    # else with them (a rule for ~/.netrc leaves ~/.ssh hidden).
    allowed_reads = tuple(Path(os.path.realpath(p)) for p in unhidden)
    hidden = [h for h in hidden if not any(_is_within(h, allowed) for allowed in allowed_reads)]
    env = filter_environment(environ, defaults.ENV_ALLOW)
    if extra_env:
        env.update(filter_environment(extra_env, ("*",)))
    env["HOME"] = str(home)
    env["TMPDIR"] = "/tmp"
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["CORRAL_SANDBOX"] = "1"
    if network is not None:
        env.update(network.proxy_env)
    capture = [home]
    submounts = host_mount_points()
    for root in defaults.EXTRA_CAPTURE_ROOTS:
        real = Path(os.path.realpath(root))
        # A directory the caller cannot write on the host fails the same way inside the sandbox: only
        # writable ones (all of them for root) need capturing.
        # A system directory with other filesystems mounted below it stays read-only: an overlay
        # would show only its own filesystem.
        writable = real.is_dir() and os.access(real, os.W_OK)
        if (
            writable
            and real != home
            and real not in capture
            and not any(real in m.parents for m in submounts)
        ):
            capture.append(real)
    caches = tuple(expand_home(p, home) for p in defaults.CACHE_DIRS)
    env.update(housekeeping_env(home, hidden, caches))
    return Policy(
        workspace=workspace,
        cwd=Path(os.path.realpath(cwd)),
        home=home,
        hidden=tuple(dict.fromkeys(hidden)),
        blanked=tuple(dict.fromkeys(Path(os.path.realpath(p)) for p in own_state)),
        protected=default_protected(),
        capture_roots=tuple(capture),
        cache_dirs=caches,
        env=env,
        network=network,
        extra_writable=tuple(Path(os.path.realpath(p)) for p in extra_writable),
        protected_roots=tuple(
            real for p in protected_roots if _is_within(real := Path(os.path.realpath(p)), workspace)
        ),
        # A carve-out holding a hidden path or corral's own state would uncover it: dropped, fail closed.
        readable=tuple(
            Path(p)
            for p in readable
            if Path(p).is_absolute()
            and not any(_is_within(h, Path(p)) for h in (*hidden, *(Path(o) for o in own_state)))
        ),
    )
