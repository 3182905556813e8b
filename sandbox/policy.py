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
- `private_tmp`: /tmp (and /var/tmp) are private: a fresh tmpfs per command, or for /tmp the directory
  of the session (or of the project's standalone runs) when the runner is handed one (`sandbox.sessiontmp`).
- `env`: the exact environment of the command. Nothing else passes.
- `network`: None means no network at all (an empty network namespace, no proxy). A `NetworkAccess`
  means the namespace holds one listener: corral's egress proxy.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from boundary.matcher import ProtectedMatcher, default_matcher, fold
from sandbox import defaults, homeview, pulled
from sandbox.housekeeping import housekeeping_env
from sandbox.mounts import host_mount_points
from sandbox.registryview import registry_env


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


__all__ = ["default_matcher", "fold"]


def default_protected() -> tuple[ProtectedPattern, ...]:
    """The table's any-depth protected rows as patterns (the slow, one-pattern-at-a-time view; the
    policy itself matches with `default_matcher()`)."""
    subtrees = (ProtectedPattern.parse(p, subtree=True) for p in defaults.PROTECTED_SUBTREES)
    files = (ProtectedPattern.parse(p, subtree=False) for p in defaults.PROTECTED_FILES)
    return (*subtrees, *files)


@dataclass(frozen=True, slots=True)
class NetworkAccess:
    """The command may reach corral's egress proxy (which decides per host)."""

    proxy_env: Mapping[str, str] = field(default_factory=dict)
    readable: tuple[Path, ...] = ()
    """Files the network needs inside, bound read-only (credential brokering's CA bundle and views)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything a backend needs to build the sandbox for one command. Paths are canonical."""

    workspace: Path
    cwd: Path
    home: Path
    hidden: tuple[Path, ...]
    protected: ProtectedMatcher
    capture_roots: tuple[Path, ...]
    cache_dirs: tuple[Path, ...]
    env: Mapping[str, str]
    network: NetworkAccess | None = None
    private_tmp: bool = True
    extra_writable: tuple[Path, ...] = ()
    """Paths inside the workspace a trusted project named writable (`paths.writable`). They never win
    over a protected pattern, and one that is or passes through a symlink is refused when the policy
    is built (`refused_writable`)."""
    refused_writable: tuple[Path, ...] = ()
    homes: tuple[Path, ...] = ()
    """`$HOME` and the password database's home: each is shown through a skeleton (`sandbox.homeview`)."""
    readable: tuple[Path, ...] = ()
    """Paths bound in read-only when they exist: the homes' read allow-list, the person's own
    `[filesystem] readable`, fs-read rules, and the core's carve-outs (Claude Code's shell snapshots
    and task output, on top of a hidden directory or the private /tmp). Never one that would uncover a
    credential store or corral's own state; outside a home the backend also drops any that is a link or
    not the user's own. Everything else in a home is hidden."""
    private_caches: tuple[Path, ...] = ()
    """Cache layers that start empty: the host's content there is never shown."""
    copied: tuple[Path, ...] = ()
    """Existing home files a project rule allows writing (fs-write): copied into the home's capture
    layer for each command, so the command sees their content and a change is captured whole."""
    secrets: tuple[Path, ...] = ()
    """The part of `hidden` that is secret by name: credential stores, `paths.hidden`, root-only files."""
    blanked: tuple[Path, ...] = ()
    """corral's own state: replaced by an empty tmpfs (not reported: nothing there is the user's secret)."""
    protected_roots: tuple[Path, ...] = ()
    """Absolute paths inside the workspace protected with everything below them (e.g. corral's own
    installation when it lives in the project's virtualenv)."""
    appendable: tuple[Path, ...] = ()
    """Hidden shell start-up files in the homes whose stand-in takes appends (`sandbox.appends`)."""
    filtered: tuple[Path, ...] = ()
    write_rules: tuple[Path, ...] = ()
    """The paths of this project's fs-write rules: a backend that cannot capture writes (Landlock) grants
    the existing ones up front instead of re-running every command that writes them."""
    """Registry configs in the homes shown as a filtered copy, not hidden (`sandbox.registryview`)."""

    def is_protected(self, path: Path | str, *, replaces_node: bool) -> bool:
        """Whether a change at absolute `path` inside the workspace touches a protected location.

        The hot path of every captured write: string operations and one compiled match, no `Path`
        objects. A trusted project's `paths.writable` never makes a protected path writable."""
        text = str(path)
        workspace = _workspace_prefix(self.workspace)
        if not text.startswith(workspace):
            return False
        relative = text[len(workspace) :]
        if not relative:
            return False
        for root in self.protected_roots:
            root_text = str(root)
            if text == root_text or text.startswith(root_text + "/"):
                return True
            if replaces_node and root_text.startswith(text + "/"):
                return True
        return self.protected.matches(relative, replaces_node=replaces_node)

    def protected_patterns(self) -> tuple[ProtectedPattern, ...]:
        """The protected rows matched at any depth, one pattern each (for backends that compile the
        table into their own language, such as the seatbelt profile). Rows that hold only at the top of
        the workspace are left to `is_protected`, which every backend applies at capture time."""
        return tuple(
            ProtectedPattern.parse(row.pattern, subtree=row.subtree)
            for row in self.protected.rows
            if not row.top
        )

    def is_hidden(self, path: Path) -> bool:
        """Whether `path` is a credential store, a path the project or person hid, a root-only secret,
        or corral's own state (the home's other entries are hidden too, but a link to them reveals no
        secret: they are ordinary files of the person's)."""
        return any(_is_within(path, hidden) for hidden in (*self.secrets, *self.blanked))

    def in_workspace(self, path: Path) -> bool:
        return _is_within(path, self.workspace)


def _with_ancestors(paths: Iterable[Path]) -> frozenset[str]:
    """Each absolute path and all its ancestors, as strings: `r` holds one of `paths` (`_is_within(p,
    r)`) exactly when `str(r)` is in this set, one lookup instead of a scan."""
    found: set[str] = set()
    for path in paths:
        text = str(path)
        while text not in found:
            found.add(text)
            parent = os.path.dirname(text)
            if parent == text:
                break
            text = parent
    return frozenset(found)


def _is_within(path: Path, root: Path) -> bool:
    p, r = str(path), str(root)
    return p == r or p.startswith(r if r.endswith("/") else r + "/")


class _Roots:
    """A set of directories for fast "is this path at or below one of them" checks (one C call)."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, roots: Iterable[Path]) -> None:
        texts = [str(r) for r in roots]
        self._exact = frozenset(texts)
        self._prefixes = tuple(t if t.endswith("/") else t + "/" for t in texts)

    def holds(self, path: Path) -> bool:
        text = str(path)
        return text in self._exact or text.startswith(self._prefixes)


@functools.lru_cache(maxsize=64)
def _workspace_prefix(workspace: Path) -> str:
    text = str(workspace)
    return text if text.endswith("/") else text + "/"


def _passes_through_link(path: Path, root: Path) -> bool:
    """Whether `path` (lexically inside `root`) is, or has an ancestor below `root` that is, a symlink."""
    current = path
    while current != root and root in current.parents:
        if os.path.islink(current):
            return True
        current = current.parent
    return False


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
MAX_COPIED_BYTES = 1 << 20


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


def credential_stores(homes: Iterable[Path]) -> list[Path]:
    """The table's credential rows, for every home."""
    return [expand_home(p, h) for h in homes for p in defaults.CREDENTIAL_PATHS]


def _filtered_views(homes: Sequence[Path], environ: Mapping[str, str], allowed: _Roots) -> list[Path]:
    """The registry configs in the homes to show filtered: the table's rows and the file
    `PIP_CONFIG_FILE` names, when each is a regular file (not a link) that no fs-read rule shows whole."""
    candidates = [expand_home(p, h) for h in homes for p in defaults.FILTERED_FILES]
    named = environ.get("PIP_CONFIG_FILE", "")
    if named and os.path.isabs(named) and any(_is_within(Path(os.path.abspath(named)), h) for h in homes):
        candidates.append(Path(os.path.abspath(named)))
    return [
        path
        for path in dict.fromkeys(candidates)
        if os.path.isfile(path) and not os.path.islink(path) and not allowed.holds(path)
    ]


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
    extra_readable: Iterable[Path] = (),
    protected_roots: Iterable[Path] = (),
    network: NetworkAccess | None = None,
    readable: Iterable[Path] = (),
    shown_for_writing: Iterable[Path] = (),
) -> Policy:
    # `readable`: the core's read-only carve-outs (absolute), merged into the read allow-list below.
    """The default policy for `workspace`, composed with what the caller adds.

    `own_state` are corral's directories (blank inside). `unhidden` are credential paths the person
    allowed this project to read (fs-read rules). `extra_readable` widens the home's read allow-list
    (the person's own config, never a repository). `extra_env` comes from a trusted project and still
    passes through the deny list.
    """
    workspace = Path(os.path.realpath(workspace))
    home = Path(os.path.realpath(home))
    homes = homeview.homes_of(home)
    blanked = tuple(dict.fromkeys(Path(os.path.realpath(p)) for p in own_state))
    # Paths the person allowed reading for this project (an fs-read rule): visible again, and nothing
    # else with them (a rule for ~/.netrc leaves ~/.ssh hidden).
    allowed_reads = tuple(Path(os.path.abspath(p)) for p in unhidden)
    carve_outs = [Path(p) for p in readable if Path(p).is_absolute()]
    if network is not None:
        carve_outs.extend(network.readable)
    shown: list[Path] = [expand_home(p, h) for h in homes for p in defaults.HOME_READABLE]
    shown.extend(Path(os.path.abspath(os.path.expanduser(str(p)))) for p in extra_readable)
    shown.extend(p for p in allowed_reads if any(_is_within(p, h) for h in homes))
    shown.extend(carve_outs)
    shown = list(dict.fromkeys(shown))
    stores = credential_stores(homes)
    allowed = _Roots(allowed_reads)
    filtered = _filtered_views(homes, environ, allowed)
    # A store that holds an allow-listed path (`~/.claude` holds the shell snapshots agents source) is
    # hidden entry by entry instead, like any other directory on the way to something readable.
    readable_text = [str(r) for r in (*shown, *filtered)]
    stores = [
        s
        for s in stores
        if not allowed.holds(s) and not any(r.startswith(str(s) + "/") for r in readable_text)
    ]
    store_roots = _Roots(stores)
    shown = [r for r in shown if not store_roots.holds(r)]
    # A readable path holding a credential store or corral's own state would uncover it: dropped.
    covering = _with_ancestors((*stores, *blanked))
    shown = [r for r in shown if str(r) not in covering]
    hidden = [*stores, *(Path(os.path.abspath(p)) for p in extra_hidden)]
    hidden = resolve_hidden(hidden, keep_visible=(*homes, workspace))
    hidden = [h for h in hidden if not allowed.holds(h) and h not in filtered]
    secret_paths = list(hidden)
    caches = tuple(expand_home(p, h) for h in homes for p in defaults.CACHE_DIRS)
    private_caches = tuple(expand_home(p, h) for h in homes for p in defaults.PRIVATE_CACHE_DIRS)
    copied = tuple(
        real
        for p in shown_for_writing
        if any(_is_within(real := Path(os.path.abspath(p)), h) and real != h for h in homes)
        and not store_roots.holds(real)
        and os.path.isfile(real)
        and not os.path.islink(real)
        and os.path.getsize(real) <= MAX_COPIED_BYTES
    )
    # Everything else that exists in a home is hidden behind a stand-in (its reads are reported).
    for each_home in homes:
        if _is_within(each_home, workspace):
            continue  # a home used as the workspace (explicitly allowed): only the stores stay hidden
        visible = (*shown, *filtered, *copied, *caches, *private_caches, *blanked, workspace)
        hidden.extend(
            entry for entry in homeview.hidden_home_entries(each_home, visible) if not allowed.holds(entry)
        )
    # A root caller owns root's files inside the sandbox too: hide what only the owner may read.
    root_only = [
        secret
        for secret in homeview.root_only_secrets(keep=(*homes, workspace, *blanked))
        if not allowed.holds(secret)
    ]
    hidden.extend(root_only)
    secret_paths.extend(root_only)
    env = filter_environment(environ, defaults.ENV_ALLOW)
    env.update(registry_env(environ))
    if extra_env:
        env.update(filter_environment(extra_env, ("*",)))
    env["HOME"] = str(home)
    env["TMPDIR"] = "/tmp"
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["CORRAL_SANDBOX"] = "1"
    if network is not None:
        env.update(network.proxy_env)
    capture = list(homes)
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
            and real not in capture
            and not any(_is_within(h, real) for h in homes)
            and not any(real in m.parents for m in submounts)
        ):
            capture.append(real)
    env.update(housekeeping_env(home, hidden, (*private_caches, *caches)))
    writable_ok: list[Path] = []
    writable_refused: list[Path] = []
    for path in extra_writable:
        lexical = Path(os.path.abspath(path))
        real = Path(os.path.realpath(lexical))
        # A writable path that is, or passes through, a symlink is refused: a sandboxed
        # `ln -s .git/hooks build` must never turn `paths.writable = ["build"]` into the hooks.
        if not _is_within(lexical, workspace) or _passes_through_link(lexical, workspace) or real != lexical:
            writable_refused.append(lexical)
        else:
            writable_ok.append(real)
    return Policy(
        workspace=workspace,
        cwd=Path(os.path.realpath(cwd)),
        home=home,
        hidden=tuple(dict.fromkeys(hidden)),
        secrets=tuple(dict.fromkeys(secret_paths)),
        blanked=blanked,
        protected=default_matcher(),
        capture_roots=tuple(capture),
        cache_dirs=caches,
        env=env,
        network=network,
        extra_writable=tuple(writable_ok),
        refused_writable=tuple(writable_refused),
        homes=homes,
        readable=tuple(shown),
        copied=copied,
        private_caches=private_caches,
        appendable=tuple(
            path
            for h in homes
            for p in defaults.APPENDABLE_FILES
            if (path := expand_home(p, h)) in hidden and path not in copied
        ),
        filtered=tuple(filtered),
        write_rules=tuple(Path(os.path.abspath(p)) for p in shown_for_writing),
        protected_roots=tuple(
            dict.fromkeys(
                real
                for p in (*protected_roots, *pulled.pulled_in(workspace, home, environ, homes))
                if _is_within(real := Path(os.path.realpath(p)), workspace) and real != workspace
            )
        ),
    )
