"""The trust store: one JSON record per project in a private directory the caller names, never in a repo.

Layout: `<directory>/<sha256 of the canonical root>.json`, mode 0600, directory 0700, plus a `.lock` file.
Every write takes an exclusive `fcntl` lock, writes a temporary file in the same directory, fsyncs it and
renames it over the record (then fsyncs the directory), so concurrent processes and a process killed at
any moment leave either the old or the new record, never a torn one. Reads need no lock (rename is atomic).
A record that does not parse, or names a different root than its file name says, counts as absent:
absent means untrusted, so a damaged store fails closed.

The key is the real path of the project directory itself (`canonical_root`): a `.git` file, a worktree's
`commondir`/`gitdir` link or a symlinked directory cannot make one directory inherit another's trust,
because nothing but the directory's own real path is ever looked at. `$HOME` and `/` cannot be trusted.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import fcntl
import hashlib
import json
import os
import pwd
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD_FORMAT = 1
MAX_STORED_FILE_BYTES = 256 * 1024
"""A trusted file larger than this is not copied into the record (its diff cannot be shown)."""
MAX_STORED_TOTAL_BYTES = 2 * 1024 * 1024
"""Total content copied into one record."""
MAX_RECORD_BYTES = 8 * 1024 * 1024
"""A record file larger than this is treated as damaged (absent)."""


class TrustError(Exception):
    """A request the trust store refuses (untrustable directory, unusable store directory)."""


class Decision(enum.Enum):
    """What the person decided about a project."""

    TRUSTED = "trusted"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A copy of one trusted file: path, hash and (when small enough) the content, for diffs."""

    path: str
    sha256: str | None
    content: bytes | None


@dataclass(frozen=True, slots=True)
class TrustRecord:
    """The person's decision about one project root.

    root: canonical root (real path of the directory). fingerprint: of the discovery decided on.
    decided_at: Unix time. corral_version: of the corral that recorded it. git_head: the commit checked
    out at decision time, if any (lets history list commits since without trusting commit dates).
    files: copies of the decided-on files (bounded; see `MAX_STORED_*`).
    """

    root: str
    fingerprint: str
    decision: Decision
    decided_at: float
    corral_version: str
    files: tuple[StoredFile, ...] = ()
    git_head: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored on disk."""
        return {
            "format": RECORD_FORMAT,
            "root": self.root,
            "fingerprint": self.fingerprint,
            "decision": self.decision.value,
            "decided_at": self.decided_at,
            "corral_version": self.corral_version,
            "git_head": self.git_head,
            "files": [
                {
                    "path": f.path,
                    "sha256": f.sha256,
                    "content_b64": None if f.content is None else base64.b64encode(f.content).decode("ascii"),
                }
                for f in self.files
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> TrustRecord:
        """Parse a stored object; raises ValueError (or KeyError/TypeError) on anything unexpected."""
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError("unknown record format")
        files = []
        for item in data["files"]:
            encoded = item["content_b64"]
            content = None if encoded is None else base64.b64decode(encoded, validate=True)
            sha = item["sha256"]
            if not isinstance(item["path"], str) or not (sha is None or isinstance(sha, str)):
                raise ValueError("bad file entry")
            files.append(StoredFile(item["path"], sha, content))
        root, fingerprint, version = data["root"], data["fingerprint"], data["corral_version"]
        head = data.get("git_head")
        if not all(isinstance(v, str) for v in (root, fingerprint, version)):
            raise ValueError("bad record fields")
        if head is not None and not isinstance(head, str):
            raise ValueError("bad git_head")
        decided_at = data["decided_at"]
        if not isinstance(decided_at, int | float) or isinstance(decided_at, bool):
            raise ValueError("bad decided_at")
        return cls(
            root, fingerprint, Decision(data["decision"]), float(decided_at), version, tuple(files), head
        )


def _home_dirs() -> set[str]:
    homes = set()
    env_home = os.environ.get("HOME")
    if env_home:
        homes.add(os.path.realpath(env_home))
    with contextlib.suppress(KeyError):
        homes.add(os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir))
    return homes


def canonical_root(project_root: Path | str) -> str:
    """The store key of a project: the real path of the directory itself.

    Raises TrustError when it is not a directory, or when it is `/` or the user's home (which can never
    be trusted as a project). Nothing inside the directory (`.git` files, worktree links) is consulted.
    """
    real = os.path.realpath(os.fspath(project_root))
    if not os.path.isdir(real):
        raise TrustError(f"{real}: not a directory")
    if real == "/":
        raise TrustError("/: the root directory can never be trusted as a project")
    if real in _home_dirs():
        raise TrustError(f"{real}: the home directory can never be trusted as a project")
    return real


def bounded_copies(files: list[tuple[str, str | None, bytes | None]]) -> tuple[StoredFile, ...]:
    """StoredFile copies of (path, sha256, content), dropping content past the size limits."""
    total = 0
    out = []
    for path, sha, content in files:
        kept = content
        if content is not None and (
            len(content) > MAX_STORED_FILE_BYTES or total + len(content) > MAX_STORED_TOTAL_BYTES
        ):
            kept = None
        if kept is not None:
            total += len(kept)
        out.append(StoredFile(path, sha, kept))
    return tuple(out)


class TrustStore:
    """Trust records in `directory` (the caller passes `Locations.trust_dir`)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def _ensure_directory(self) -> None:
        missing = [p for p in (self.directory, *self.directory.parents) if not os.path.lexists(p)]
        for path in reversed(missing):  # every directory we create is private, not only the last
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700)
        info = os.lstat(self.directory)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise TrustError(f"{self.directory}: trust store is not a plain directory")
        if info.st_uid != os.getuid():
            raise TrustError(f"{self.directory}: trust store is owned by another user")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(self.directory, 0o700)

    def record_path(self, root: str) -> Path:
        """Where the record of canonical `root` lives."""
        key = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()
        return self.directory / f"{key}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_directory()
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.directory / ".lock", flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self, path: Path) -> TrustRecord | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
                return None
            with os.fdopen(os.dup(fd), "rb") as handle:
                raw = handle.read(MAX_RECORD_BYTES + 1)
        finally:
            os.close(fd)
        try:
            record = TrustRecord.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            return None
        if self.record_path(record.root) != path:
            return None
        return record

    def get(self, project_root: Path | str) -> TrustRecord | None:
        """The record of a project (any path; it is canonicalised), or None."""
        root = os.path.realpath(os.fspath(project_root))
        return self._read(self.record_path(root))

    def put(self, record: TrustRecord) -> None:
        """Store `record`, replacing any previous one for its root, atomically under the lock."""
        if record.root != canonical_root(record.root):
            raise TrustError(f"{record.root}: not a canonical project root")
        payload = json.dumps(record.to_json(), sort_keys=True).encode("ascii")
        target = self.record_path(record.root)
        with self._locked():
            fd, temp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.directory)
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(payload)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
                os.close(fd)
                fd = -1
                os.replace(temp_name, target)
            except BaseException:
                if fd >= 0:
                    os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)
                raise
            self._fsync_directory()

    def remove(self, project_root: Path | str) -> bool:
        """Forget the decision about a project; True when there was one."""
        root = os.path.realpath(os.fspath(project_root))
        with self._locked():
            try:
                os.unlink(self.record_path(root))
            except FileNotFoundError:
                return False
            self._fsync_directory()
            return True

    def records(self) -> list[TrustRecord]:
        """Every readable record, sorted by root (damaged ones are skipped)."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in sorted(self.directory.glob("*.json")):
            if entry.name.startswith("."):
                continue
            record = self._read(entry)
            if record is not None:
                found.append(record)
        return sorted(found, key=lambda r: r.root)

    def clean_temporaries(self) -> None:
        """Remove temporary files left by a writer killed mid-write."""
        with self._locked():
            for leftover in self.directory.glob(".tmp-*.json"):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
