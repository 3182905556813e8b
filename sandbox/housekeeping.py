"""Environment that keeps tools' own housekeeping inside the boundary, so it never asks.

Tools do things on their own that would cross the boundary for no reason the person cares about, and
each crossing is a prompt (or, denied, a broken command). One rule, here, composed into every policy:

- **Bytecode**: Python writes `.pyc` files next to the modules it imports, so importing from an
  interpreter under `~` (pyenv, uv, a user site) writes outside the workspace. `PYTHONPYCACHEPREFIX`
  sends all bytecode into `~/.cache/python-bytecode`, inside corral's per-project cache layer (never
  written back to the home), whenever `~/.cache` is a cache directory of the policy.
- **Cloud metadata fallbacks**: with `~/.aws` hidden, the AWS CLI and SDKs fall back to the instance
  metadata service (169.254.169.254), which becomes a network prompt; the same for Google's libraries
  and `gcloud` with their config hidden. Their fallbacks are turned off while those credentials are
  hidden (an `fs-read` rule that shows them again turns the fallback back on).
- **Update notifiers and version checks** (npm, pnpm, `update-notifier`, pip, Homebrew, Deno, gcloud)
  are off: each is a network call and sometimes a write under `~`, never the person's intent.

These are set by corral after the environment filter, so neither the caller's environment nor a
project can turn them back on; none of them widens anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

BYTECODE_CACHE = ".cache/python-bytecode"
"""Below the home: where PYTHONPYCACHEPREFIX points (inside the `~/.cache` cache layer)."""

NOTIFIERS_OFF: Mapping[str, str] = {
    "NO_UPDATE_NOTIFIER": "1",
    "npm_config_update_notifier": "false",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "HOMEBREW_NO_AUTO_UPDATE": "1",
    "DENO_NO_UPDATE_CHECK": "1",
    "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
}

METADATA_OFF: tuple[tuple[str, Mapping[str, str]], ...] = (
    (".aws", {"AWS_EC2_METADATA_DISABLED": "true"}),
    (".config/gcloud", {"NO_GCE_CHECK": "True", "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false"}),
)
"""(credential directory below the home, variables that turn its metadata fallback off)."""


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def housekeeping_env(home: Path, hidden: Iterable[Path], cache_dirs: Iterable[Path]) -> dict[str, str]:
    """The variables for a command whose home is `home`, with `hidden` paths and `cache_dirs`."""
    env = dict(NOTIFIERS_OFF)
    hidden_paths = tuple(hidden)
    for relative, variables in METADATA_OFF:
        credentials = home / relative
        if any(_is_within(credentials, path) for path in hidden_paths):
            env.update(variables)
    bytecode = home / BYTECODE_CACHE
    if any(_is_within(bytecode, cache) for cache in cache_dirs):
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    return env
