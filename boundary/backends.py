"""The names of corral's sandbox backends: the words `--backend`, the config key and `sandbox.backend` share."""

from __future__ import annotations

AUTO = "auto"
BACKEND_NAMES: tuple[str, ...] = (AUTO, "bwrap", "landlock", "gvisor", "seatbelt")
"""The names `--backend` and `sandbox.backend` accept (`auto` picks; a name this build or platform cannot
run refuses)."""
