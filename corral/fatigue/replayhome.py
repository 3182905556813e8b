"""The throwaway home a replay runs in, so that a workload never touches the person's real home.

A workload is someone else's list of commands (`>> ~/.bashrc`, `touch ~/agent-was-here`, credential
reads): replayed against the real home, `--on-violation allow` would apply those writes to it. So
`corral replay` points HOME at a directory of its own — a fresh temporary one by default, or `--home
DIR` to keep one across runs (the second-run figures need the same paths as the first) — seeded with
placeholder files where a workload looks (a `.bashrc`, decoy-worthy credential files holding no
secret, a `.gitconfig` so commits work), and the simulated person allows nothing outside the project
and that home (`ReplayAnswers.confine`).
"""

from __future__ import annotations

import os
from pathlib import Path

PLACEHOLDERS: dict[str, str] = {
    ".bashrc": "# corral replay: placeholder start-up file\n",
    ".profile": "# corral replay: placeholder start-up file\n",
    ".gitconfig": "[user]\n\tname = corral replay\n\temail = replay@example.invalid\n",
    ".ssh/id_rsa": "placeholder: not a key\n",
    ".aws/credentials": "[default]\naws_access_key_id = placeholder\n",
    ".netrc": "machine example.invalid login placeholder password placeholder\n",
}
"""Files a replay home starts with (none holds anything secret)."""


class ReplayHomeError(ValueError):
    """A `--home` that could let the replay touch the real home or the project."""


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_replay_home(home: Path, real_home: Path, project: Path) -> Path:
    """The canonical `home`, or ReplayHomeError when it is, holds or lies in the real home or the
    project (a replay must never write to either through HOME)."""
    resolved = Path(os.path.realpath(home))
    real = Path(os.path.realpath(real_home))
    if _within(resolved, real) or _within(real, resolved):
        raise ReplayHomeError(f"--home {home}: a replay never runs in your home (or around or inside it)")
    if _within(resolved, project) or _within(project, resolved):
        raise ReplayHomeError(f"--home {home}: must be outside the project")
    return resolved


def seed_home(home: Path) -> None:
    """Create `home` (private) and the placeholder files it does not have yet."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    for relative, text in PLACEHOLDERS.items():
        path = home / relative
        if os.path.lexists(path):
            continue
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
