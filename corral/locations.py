"""Every directory corral keeps state in, from one place, built on platformdirs.

Nothing here is ever inside a repository, and the sandbox hides all of it from the commands it runs.
Tests point these at a temporary directory through XDG_* variables and HOME, never at a real home.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "corral"


@dataclass(frozen=True, slots=True)
class Locations:
    """Where corral keeps its own files.

    config_dir: the user's settings (`config.toml`).
    data_dir: the trust store, rules and the prompt ledger.
    cache_dir: per-project tool-chain cache layers and the compiled seccomp filter.
    runtime_dir: per-command capture directories and the session broker socket.
    """

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    runtime_dir: Path

    @classmethod
    def default(cls) -> Locations:
        """The platform's directories for the current user."""
        xdg_runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        runtime = os.path.join(xdg_runtime, APP_NAME) if xdg_runtime else ""
        if not xdg_runtime or not os.path.isdir(xdg_runtime):
            # No per-user runtime directory (root, containers): a private directory in /tmp, which the
            # sandbox replaces with its own tmpfs. Never under $HOME: overlay upper directories cannot
            # live inside the directories they capture. Keyed by uid and home, so that two homes of one
            # uid (containers, tests, `sudo -H`) never share run slots; the runner checks it is a 0700
            # directory owned by this uid, not a link, before using it.
            runtime = os.path.join("/tmp", fallback_runtime_name())
        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
            runtime_dir=Path(runtime),
        )

    def all(self) -> tuple[Path, ...]:
        """Every directory, for the sandbox to hide."""
        return (self.config_dir, self.data_dir, self.cache_dir, self.runtime_dir)

    def ensure(self, path: Path) -> Path:
        """Create `path` (one of ours) private to the user, and return it."""
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.sqlite3"

    @property
    def rules_path(self) -> Path:
        return self.data_dir / "rules.sqlite3"

    @property
    def cache_layers_dir(self) -> Path:
        """Per-project tool-chain cache layers (`sandbox.cachelayers`; `corral cache path|clean`)."""
        return self.data_dir / "layers"

    @property
    def trust_dir(self) -> Path:
        return self.data_dir / "trust"

    @property
    def user_config_path(self) -> Path:
        return self.config_dir / "config.toml"


def fallback_runtime_name() -> str:
    """`corral-<uid>-<hash of $HOME>`: the runtime directory's name in /tmp without XDG_RUNTIME_DIR."""
    home = os.path.abspath(os.path.expanduser("~"))
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:12]
    return f"corral-{os.getuid()}-{digest}"
