"""The default boundary, as the lists the sandbox enforces: all derived from `boundary.table`, the one
table the prompt reads too.

Every list here is data, not code, so `corral policy` can print it and tests can check it.
Paths starting with `~/` are relative to the user's home.
"""

from __future__ import annotations

from boundary.table import ENV_ALLOW, ENV_DENY, Kind, rows

__all__ = ["ENV_ALLOW", "ENV_DENY"]

CREDENTIAL_PATHS: tuple[str, ...] = tuple(row.pattern for row in rows(Kind.CREDENTIAL))
"""Always hidden inside the sandbox, whatever else is visible. A read attempt is reported as `fs-read`."""

HOME_READABLE: tuple[str, ...] = tuple(row.pattern for row in rows(Kind.READABLE))
"""The home's read allow-list: visible read-only. Everything else in the home is hidden (see
`sandbox.homeview`); the person widens this only in their own config (`[filesystem] readable`)."""

PROTECTED_SUBTREES: tuple[str, ...] = tuple(
    row.pattern for row in rows(Kind.PROTECTED) if row.subtree and not row.top
)
"""Directories (at any depth of the workspace) whose content runs later outside the sandbox."""

PROTECTED_FILES: tuple[str, ...] = tuple(
    row.pattern for row in rows(Kind.PROTECTED) if not row.subtree and not row.top
)
"""Single paths (at any depth) that hosts tools run or load outside the sandbox."""

PROTECTED_AT_TOP: tuple[str, ...] = tuple(row.pattern for row in rows(Kind.PROTECTED) if row.top)
"""Protected only at the top of the workspace: the files that make it a bare repository for host git."""

CACHE_DIRS: tuple[str, ...] = tuple(row.pattern for row in rows(Kind.CACHE))
"""Tool-chain caches: readable, and writable without prompting through a per-project layer corral owns;
never written back to the host."""

PRIVATE_CACHE_DIRS: tuple[str, ...] = tuple(row.pattern for row in rows(Kind.PRIVATE_CACHE))
"""Per-project layers that start empty: the host's content there stays hidden (`~/.cache` can hold
tokens); the tool-chain caches inside are shown on top."""

APPENDABLE_FILES: tuple[str, ...] = tuple(row.pattern for row in rows(Kind.APPEND))
"""Hidden shell start-up files whose stand-in takes appends, captured against the real file
(`sandbox.appends`)."""

FILTERED_FILES: tuple[str, ...] = tuple(row.pattern for row in rows(Kind.FILTERED))
"""Package-registry configs shown as a filtered copy: registry settings without credentials
(`sandbox.registryview`)."""

EXTRA_CAPTURE_ROOTS: tuple[str, ...] = (
    "/etc",
    "/opt",
    "/srv",
    "/usr/local",
    "/var",
    "/root",
    "/home",
    "/mnt",
    "/media",
)
"""Outside the home and the workspace, directories whose writes are captured and reported rather than
failing with EROFS (they matter for a root caller; for a normal user most are not writable anyway)."""
