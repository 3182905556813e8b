"""Words both front ends show, free of any UI library: paths for display, labels, hints.

The Textual app and the prompt-toolkit line mode render these strings the same way; neither
builds its own. Nothing here decides anything or escapes anything (that is `corral.termsafe`).
"""

from __future__ import annotations

import os


def home_relative(target: str, home: str | None = None) -> str:
    """`target` written with `~/` when it is under the home directory, for display and hints."""
    home_dir = (home if home is not None else os.path.expanduser("~")).rstrip("/")
    if home_dir and (target == home_dir or target.startswith(home_dir + "/")):
        return "~" + target[len(home_dir) :]
    return target
