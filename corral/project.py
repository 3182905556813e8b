"""What a project adds to the user's policy, once the person trusts it.

`open_project` asks the trust gate; only a TRUSTED project's `.corral/config.toml` is parsed, from the
exact bytes that were fingerprinted. Anything else runs with the user's policy alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corral.locations import Locations
from trust.config import ConfigError, ProjectConfig
from trust.gate import GateResult, TrustState, evaluate
from trust.store import TrustStore


@dataclass(frozen=True, slots=True)
class ProjectContext:
    """The trust state of a workspace and, when trusted, its validated config."""

    gate: GateResult
    config: ProjectConfig | None

    @property
    def trusted(self) -> bool:
        return self.gate.state is TrustState.TRUSTED

    def notice(self) -> str | None:
        """One line to show when project config exists but is not used (None when nothing to say)."""
        if self.trusted:
            return None
        if self.gate.has_project_config or self.gate.state in (TrustState.CHANGED, TrustState.DENIED):
            return self.gate.notice()
        return None


def open_project(workspace: Path, locations: Locations, *, with_history: bool = False) -> ProjectContext:
    """Evaluate trust for `workspace`; parse its config only when trusted. Raises ConfigError (one line,
    naming the file and key) when a trusted config is invalid."""
    gate = evaluate(workspace, TrustStore(locations.trust_dir), with_history=with_history)
    config = gate.load_config() if gate.state is TrustState.TRUSTED else None
    return ProjectContext(gate, config)


__all__ = ["ConfigError", "ProjectContext", "open_project"]
