"""The bubblewrap backend: turn a `Policy` into a bwrap argv and the capture layers behind it.

The sandbox gets its own user, pid, ipc, uts, cgroup and network namespaces, a new session (no TIOCSTI
into the user's terminal), every capability dropped, no new privileges, nested user namespaces disabled,
and the seccomp filter of `sandbox.seccomp`. The filesystem is the host's, read-only, with:
- overlays on the workspace and on every capture root, whose upper layers receive every write;
- a persistent per-project overlay on each tool-chain cache directory;
- each home (`$HOME`, and the password database's home when it differs) as an overlay whose lower layer
  is a skeleton of mount points corral builds, so only the read allow-list (bound in read-only), the
  caches and the workspace show through and anything else in the home, existing or created later, is
  absent (see `sandbox.homeview`); writes there are still captured and compared against the real home;
- decoys over hidden paths (see `sandbox.readwatch`), blank read-only tmpfs over corral's own state;
- a private tmpfs on /tmp and /var/tmp, a minimal /dev and a /proc of the sandbox's own processes.

Every tmpfs has a size (`sandbox.limits`): a tmpfs without one grows to half the machine's memory, so a
sandboxed `head -c 60G /dev/zero > /tmp/x` would take the host's memory. bwrap's /dev cannot be sized,
so it is remounted read-only after its /dev/shm gets a sized tmpfs of its own.

Mount sources and targets are canonical paths (symlinks resolved before anything is validated or
mounted); a target that is a symlink at mount time is refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.cachelayers import LOCK_NAME, cache_layer_dir, project_layers_dir
from sandbox.capture import CaptureLayer
from sandbox.homeview import readable_sources
from sandbox.layerfs import open_root, remove_entry
from sandbox.limits import default_limits
from sandbox.mounts import host_mount_points
from sandbox.policy import Policy
from sandbox.readwatch import DecoySet, Signature, copy_in, plant_stand_ins, reuse_or_build_decoys
from sandbox.registryview import build_views
from sandbox.slots import clear_dir, empty_upper, with_ancestors


class SandboxSetupError(RuntimeError):
    """The sandbox cannot be built for this policy; nothing was run."""

    summary = "the sandbox could not start, so nothing ran"
    """What a front end prints before the message."""


BLANK_TMPFS_BYTES = 64 * 1024
"""corral's blanked state directories: empty and read-only, the size only so that no tmpfs is unbounded."""
DEV_SHM = Path("/dev/shm")


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount, in the order bwrap applies them (parents before children)."""

    kind: str  # "ro-bind", "ro-bind-try", "bind", "tmpfs", "overlay"
    target: Path
    source: Path | None = None
    upper: Path | None = None
    work: Path | None = None
    size: int | None = None
    """For tmpfs: its size in bytes (never None in a layout: an unsized tmpfs is unbounded)."""
    read_only: bool = False
    """For tmpfs: remounted read-only once mounted (corral's blanked state)."""


@dataclass
class SandboxLayout:
    """Everything prepared on the host for one run."""

    run_dir: Path
    mounts: list[Mount]
    layers: list[CaptureLayer]
    decoys: DecoySet
    ignore_dirs: frozenset[Path]
    kept: frozenset[str]
    """`ignore_dirs` with their ancestors, as strings."""
    cache_locks: list[int] = field(default_factory=list)
    stand_ins: dict[Path, tuple[Path, Signature]] = field(default_factory=dict)
    """Hidden home entries' stand-ins in the home layers' upper directories (see `plant_stand_ins`)."""
    tmpfs_bytes: int = BLANK_TMPFS_BYTES
    """The size of each writable tmpfs (/tmp, /var/tmp, /dev/shm)."""
    appends: list[tuple[Path, dict[Path, Path]]] = field(default_factory=list)
    """(home capture layer's upper directory, real start-up file -> its stand-in taking appends)."""

    @property
    def writable_tmpfs(self) -> tuple[Path, ...]:
        """Every writable tmpfs inside the sandbox, for `sandbox.limits.ResourceWatch`."""
        sized = tuple(m.target for m in self.mounts if m.kind == "tmpfs" and not m.read_only)
        return (*sized, DEV_SHM)

    def release(self) -> None:
        for fd in self.cache_locks:
            try:
                os.close(fd)
            except OSError:
                pass
        self.cache_locks.clear()


MAX_CAPTURE_MOUNTS = 256
"""At most this many capture overlays; directories beyond it stay read-only."""


def _depth(path: Path) -> int:
    return len(path.parts)


def _check_target(path: Path) -> None:
    if path.is_symlink():
        raise SandboxSetupError(f"refusing to mount over {path}: it is a symlink")


def _is_within(path: Path, root: Path) -> bool:
    """`path` is `root` or below it (string comparison of the normalised paths: the same answer as
    `root in path.parents`, without building every parent; prepare_layout asks thousands of times)."""
    inner, outer = str(path), str(root)
    return inner == outer or inner.startswith(outer if outer.endswith("/") else outer + "/")


def _own_real_entry(path: Path) -> bool:
    """A directory or regular file (not a link) owned by this user: safe to show read-only. A path in
    a shared directory such as /tmp that another user created first is never bound."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return info.st_uid == os.geteuid() and (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode))


def prepare_layout(
    policy: Policy,
    run_dir: Path,
    layers_dir: Path | None,
    *,
    tmpfs_bytes: int | None = None,
    shared_tmp: Path | None = None,
    decoy_content: bytes = b"",
) -> SandboxLayout:
    """Prepare the capture directories and decoys for one run under `run_dir`: a new directory, or a
    slot (`sandbox.slots`) reused from an earlier run, whose upper layers are emptied first.
    `tmpfs_bytes` sizes each writable tmpfs (default: `sandbox.limits.default_limits`);
    `decoy_content` fills each decoy file (see `sandbox.readwatch`; empty for bwrap). `shared_tmp`:
    the session's own /tmp (a private directory of corral's, `sandbox.sessiontmp`), bound at /tmp
    instead of a fresh tmpfs, so that the session's commands hand files to each other there."""
    if tmpfs_bytes is None:
        tmpfs_bytes = default_limits().tmpfs_bytes
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for root in (policy.workspace, *policy.capture_roots):
        if _is_within(run_dir, root) or _is_within(root, run_dir):
            raise SandboxSetupError(
                f"corral's runtime directory {run_dir} overlaps {root}; set XDG_RUNTIME_DIR to a directory outside it"
            )
    if shared_tmp is not None:
        mounts: list[Mount] = [Mount("bind", Path("/tmp"), source=shared_tmp)]
    else:
        mounts = [Mount("tmpfs", Path("/tmp"), size=tmpfs_bytes)]
    if Path("/var/tmp").is_dir():
        mounts.append(Mount("tmpfs", Path("/var/tmp"), size=tmpfs_bytes))
    layers: list[CaptureLayer] = []
    ignore: set[Path] = set()

    homes = tuple(h for h in policy.homes if h in policy.capture_roots)
    skeletons: dict[Path, Path] = {}
    home_layers: dict[Path, CaptureLayer] = {}

    def overlay(target: Path, _name: str, lower: Path | None = None) -> CaptureLayer:
        if not any(_is_within(target, h) and target != h for h in skeletons):
            _check_target(target)
        key = hashlib.sha256(os.fsencode(target)).hexdigest()[:12]
        upper = run_dir / "layers" / key / "upper"
        work = run_dir / "layers" / key / "work"
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(exist_ok=True)
        source = lower or target
        if target in homes:
            # The home is shown through a skeleton; the capture still compares with the real home.
            source = skeletons[target] = _fresh_skeleton(run_dir, key)
        mounts.append(Mount("overlay", target, source=source, upper=upper, work=work))
        layer = CaptureLayer(target=target, lower=lower or target, upper=upper)
        layers.append(layer)
        if target in homes:
            home_layers[target] = layer
        return layer

    submounts = frozenset(host_mount_points())
    budget = [MAX_CAPTURE_MOUNTS]

    def capture(root: Path) -> None:
        """Overlay `root`; when other filesystems are mounted below it (the kernel refuses such an overlay
        inside a user namespace), overlay each child directory instead. Mount points and files directly
        in such a directory stay read-only: writes there fail rather than escape."""
        if root in homes or not any(root in m.parents for m in submounts):
            if budget[0] > 0:
                budget[0] -= 1
                overlay(root, "")
            return
        try:
            children = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            return
        # The directory itself, with what is mounted below it, read-only (it may lie under /tmp, which the
        # sandbox replaces); its children are captured on top.
        mounts.append(Mount("ro-bind", root, source=root))
        for entry in children:
            child = Path(entry.path)
            if entry.is_dir(follow_symlinks=False) and child not in submounts:
                capture(child)

    for root in policy.capture_roots:
        capture(root)
    capture(policy.workspace)
    bound: list[Path] = []
    for source, target in readable_sources(policy.readable, (*policy.secrets, *policy.blanked), policy.homes):
        if any(_is_within(target, h) for h in skeletons) and not any(
            _is_within(target, c) for c in policy.private_caches
        ):
            # "-try": an allow-listed entry removed since the policy was built is skipped, not a failure.
            mounts.append(Mount("ro-bind-try", target, source=source))
            bound.append(target)
    for ancestor in _private_tmp_ancestors((policy.workspace, *policy.capture_roots)):
        # A workspace (or home) under /tmp: the directories between /tmp and it would otherwise exist
        # only in the private tmpfs, where a write (`../out.tar`) vanishes without a word. Captured, such
        # a write is reported like any write outside the workspace. A directory holding corral's run
        # directory cannot be an overlay's lower layer (the upper lives in it): its host entries stay
        # out of sight as before, but writes there are still captured and reported.
        overlay(ancestor, "", _empty_dir(run_dir) if _is_within(run_dir, ancestor) else None)

    cache_locks: list[int] = []
    clear_dir(run_dir, "cache")  # throwaway cache layers of an earlier run in this slot
    persistent = _lock_cache_layers(layers_dir, policy.workspace)
    if persistent is not None:
        cache_locks.append(persistent[1])
    for index, cache in enumerate((*policy.private_caches, *policy.cache_dirs)):
        if not any(_is_within(cache, r) for r in policy.capture_roots) or _is_within(policy.workspace, cache):
            continue
        if cache.is_symlink():
            continue
        private = cache in policy.private_caches
        if not cache.is_dir() and any(_is_within(cache, b) and cache != b for b in bound):
            continue  # inside a read-only allow-listed directory: no mount point can be made there
        if not private and not cache.is_dir():
            if any(_is_within(cache, p) for p in policy.private_caches):
                continue  # a missing tool cache inside a private cache layer lands in that layer
            if not _creatable(cache, mounts):
                continue  # no overlay where its mount point would be made: writes there stay read-only
        lower = cache if cache.is_dir() and not private else _empty_dir(run_dir)
        upper, work = _cache_layer(persistent[0] if persistent else None, cache, run_dir, index)
        mounts.append(Mount("overlay", cache, source=lower, upper=upper, work=work))
        ignore.add(cache)

    keep = with_ancestors(frozenset(ignore) | frozenset(m.target for m in mounts))
    clean_marker = run_dir / "clean"
    if not clean_marker.exists():
        for layer in layers:
            empty_upper(layer.upper, keep, layer.target)
    else:
        clean_marker.unlink()
    in_home: dict[Path, list[Path]] = {home: [] for home in skeletons}
    elsewhere: list[Path] = []
    for hidden in policy.hidden:
        home = next((h for h in skeletons if _is_within(hidden, h) and hidden != h), None)
        if home is None:
            elsewhere.append(hidden)
        elif not any(_is_within(hidden, p) for p in (*policy.private_caches, *policy.blanked)):
            in_home[home].append(hidden)
    decoys = reuse_or_build_decoys(tuple(elsewhere), run_dir, decoy_content)
    stand_ins: dict[Path, tuple[Path, Signature]] = {}
    appendable = frozenset(policy.appendable)
    appends: list[tuple[Path, dict[Path, Path]]] = []
    for home, entries in in_home.items():
        upper = home_layers[home].upper
        taking_appends: dict[Path, Path] = {}
        stand_ins.update(
            plant_stand_ins(entries, home, upper, decoys, appendable, taking_appends, decoy_content)
        )
        appends.append((upper, taking_appends))
        copy_in((p for p in policy.copied if _is_within(p, home)), home, upper)
    for view, real, watched in build_views(
        [p for p in policy.filtered if any(_is_within(p, h) and p != h for h in skeletons)], run_dir
    ):
        # A copy that withheld credentials is watched like a decoy (read-write bind: the access time
        # must move); one that withheld nothing is bound read-only and never reported.
        mounts.append(Mount("bind" if watched else "ro-bind", real, source=view))
        if watched:
            decoys.files[view] = real
    for decoy, real in decoys.mounts:
        _check_target(real)
        # A read-write bind: a read-only mount would stop the kernel from updating the access time that
        # reports the read. The decoys themselves are mode 0444/0555, so nothing can be written there.
        mounts.append(Mount("bind", real, source=decoy))
    for state in policy.blanked:
        if state.is_dir() and not state.is_symlink():
            mounts.append(Mount("tmpfs", state, size=BLANK_TMPFS_BYTES, read_only=True))
    # "-try": a carve-out removed since the check (Claude Code cleaning its /tmp) is skipped, not a
    # setup failure. Whatever is bound is read-only and read with the user's own permissions.
    mounts.extend(
        Mount("ro-bind-try", path, source=path)
        for path in policy.readable
        # Inside a home the read allow-list is bound above (through the skeleton).
        if not any(_is_within(path, h) for h in skeletons) and _own_real_entry(path)
    )
    mounts.sort(key=lambda m: _depth(m.target))
    for home, skeleton in skeletons.items():
        _fill_skeleton(skeleton, home, mounts)
    ignore.update(m.target for m in mounts)
    return SandboxLayout(
        run_dir=run_dir,
        mounts=mounts,
        layers=layers,
        decoys=decoys,
        ignore_dirs=frozenset(ignore),
        kept=with_ancestors(frozenset(ignore)),
        cache_locks=cache_locks,
        stand_ins=stand_ins,
        tmpfs_bytes=tmpfs_bytes,
        appends=appends,
    )


def _fresh_skeleton(run_dir: Path, key: str) -> Path:
    """Where a home's skeleton lives in this slot (filled by `_fill_skeleton` once the mounts are known)."""
    return run_dir / "skeletons" / key


def _fill_skeleton(skeleton: Path, home: Path, mounts: list[Mount]) -> None:
    """One placeholder per mount point inside `home` (directories for directory mounts, empty files
    for file binds), with the directories on the way: nothing of the home's own content. A slot keeps
    its skeleton while the set of mount points stays the same."""
    wanted: list[tuple[str, bool]] = []
    for mount in mounts:
        target = mount.target
        if target == home or not _is_within(target, home):
            continue
        source = mount.source
        is_dir = mount.kind in ("overlay", "tmpfs") or (
            source is not None and source.is_dir() and not source.is_symlink()
        )
        wanted.append((str(target.relative_to(home)), is_dir))
    manifest = "\n".join(f"{int(d)}{rel}" for rel, d in sorted(wanted))
    marker = skeleton.with_name(skeleton.name + ".manifest")
    try:
        if skeleton.is_dir() and marker.read_text() == manifest:
            return
    except OSError:
        pass
    if os.path.lexists(skeleton):
        import shutil

        shutil.rmtree(skeleton)
    skeleton.mkdir(mode=0o755, parents=True)
    for relative, is_dir in wanted:
        placeholder = skeleton / relative
        if is_dir:
            placeholder.mkdir(mode=0o755, parents=True, exist_ok=True)
        else:
            placeholder.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            if not os.path.lexists(placeholder):
                placeholder.touch(mode=0o644)
    marker.write_text(manifest)


PRIVATE_TMP_ROOTS = (Path("/tmp"), Path("/var/tmp"))
"""Directories the sandbox replaces with a private tmpfs."""


def _private_tmp_ancestors(targets: tuple[Path, ...]) -> list[Path]:
    """Directories strictly between a private tmp root and one of `targets`, outermost first, that are
    neither targets themselves nor inside another target."""
    found: list[Path] = []
    for target in targets:
        for root in PRIVATE_TMP_ROOTS:
            if root not in target.parents:
                continue
            for ancestor in reversed(target.parents):
                inside_another = any(_is_within(ancestor, other) for other in targets)
                if root in ancestor.parents and ancestor not in found and not inside_another:
                    found.append(ancestor)
    return sorted(found, key=_depth)


def _creatable(path: Path, mounts: list[Mount]) -> bool:
    """Whether bwrap can make `path` as a mount point: the deepest mount holding its nearest existing
    ancestor is a capture overlay (not a read-only bind of a directory with mounts below it)."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    holding = [
        m
        for m in mounts
        if m.kind in ("overlay", "ro-bind", "ro-bind-try") and _is_within(ancestor, m.target)
    ]
    return bool(holding) and max(holding, key=lambda m: _depth(m.target)).kind == "overlay"


def _empty_dir(run_dir: Path) -> Path:
    path = run_dir / "empty"
    path.mkdir(mode=0o755, exist_ok=True)
    return path


def reset_layout(layout: SandboxLayout) -> None:
    """Empty the upper layers after the captured changes were applied or discarded, and mark the run
    directory clean so that the next run need not check again."""
    for layer in layout.layers:
        empty_upper(layer.upper, layout.kept, layer.target)
    (layout.run_dir / "clean").touch()


def _lock_cache_layers(layers_dir: Path | None, workspace: Path) -> tuple[Path, int] | None:
    """The project's persistent cache-layer directory, locked for this run; None when there is none or
    another command of the project holds it (that run then gets throwaway layers)."""
    if layers_dir is None:
        return None
    base = project_layers_dir(layers_dir, workspace)
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(base / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return None
    return base, lock


def _cache_layer(project_layers: Path | None, cache: Path, run_dir: Path, index: int) -> tuple[Path, Path]:
    """Upper and work directories for `cache`: persistent per project, or throwaway for this run."""
    if project_layers is not None:
        base = cache_layer_dir(project_layers, cache)
        try:
            # The kernel empties an overlay's work directory at mount time: reuse it as it is.
            (base / "upper").mkdir(parents=True, exist_ok=True)
            (base / "work").mkdir(exist_ok=True)
            return base / "upper", base / "work"
        except OSError:
            pass
    # Emptied with the rest of "cache" when this slot is next prepared.
    base = clear_dir(run_dir / "cache", str(index))
    (base / "upper").mkdir()
    (base / "work").mkdir()
    return base / "upper", base / "work"


def remove_run_dir(run_dir: Path) -> None:
    """Delete a run directory fd-relative, including overlay work dirs that the kernel leaves with mode
    000 and sealed decoy directories (0555)."""
    try:
        parent = open_root(run_dir.parent)
    except FileNotFoundError:
        return
    try:
        remove_entry(parent, run_dir.name)
    finally:
        os.close(parent)


def build_argv(
    bwrap: Path,
    policy: Policy,
    layout: SandboxLayout,
    command: list[str],
    *,
    seccomp_fd: int,
    status_fd: int | None = None,
    block_fd: int | None = None,
    shared_net: bool = False,
    nested_userns: bool = False,
    sandbox_id: int | None = None,
) -> list[str]:
    """The exact bwrap argv for `command` under `policy` (what `corral policy --backend-args` prints).

    `shared_net`: bwrap starts inside the session's network namespace (`sandbox.sessionns`), makes
    none of its own, and does not die with its parent (the session's keeper ends it). `nested_userns` leaves out `--disable-userns` and `sandbox_id` sets the uid and
    gid inside: only for a command that is itself a sandbox and needs a user namespace of its own
    (gVisor's runsc)."""
    ids = ["--uid", str(sandbox_id), "--gid", str(sandbox_id)] if sandbox_id is not None else []
    argv = [
        str(bwrap),
        "--unshare-user",
        *ids,
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        *(() if shared_net else ("--unshare-net",)),
        "--unshare-cgroup-try",
        *([] if nested_userns else ["--disable-userns"]),
        # In a session's namespaces the keeper, not bwrap's parent, bounds the sandbox's life: processes
        # a command leaves in the background outlive it (`sandbox.background`).
        *(() if shared_net else ("--die-with-parent",)),
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "corral",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--size",
        str(layout.tmpfs_bytes),
        "--tmpfs",
        str(DEV_SHM),
        "--remount-ro",
        "/dev",
        "--proc",
        "/proc",
    ]
    for mount in layout.mounts:
        target = str(mount.target)
        if mount.kind == "tmpfs":
            argv += ["--size", str(mount.size or BLANK_TMPFS_BYTES), "--tmpfs", target]
        elif mount.kind == "ro-bind":
            argv += ["--ro-bind", str(mount.source), target]
        elif mount.kind == "ro-bind-try":
            argv += ["--ro-bind-try", str(mount.source), target]
        elif mount.kind == "bind":
            argv += ["--bind", str(mount.source), target]
        elif mount.kind == "overlay":
            argv += [
                "--overlay-src",
                str(mount.source),
                "--overlay",
                str(mount.upper),
                str(mount.work),
                target,
            ]
    # Read-only once every mount is in place (a mount point below one would need a directory there).
    for mount in layout.mounts:
        if mount.kind == "tmpfs" and mount.read_only:
            argv += ["--remount-ro", str(mount.target)]
    argv += ["--seccomp", str(seccomp_fd)]
    if status_fd is not None:
        argv += ["--json-status-fd", str(status_fd)]
    if block_fd is not None:
        argv += ["--block-fd", str(block_fd)]
    argv += ["--clearenv"]
    for name, value in sorted(policy.env.items()):
        argv += ["--setenv", name, value]
    argv += ["--chdir", str(policy.cwd), "--", *command]
    return argv
