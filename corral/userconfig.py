"""The user's own settings, `~/.config/corral/config.toml` (never read from a repository).

    [network]
    allow = ["pypi.org", "*.githubusercontent.com"]   # exact hosts or *.subdomain patterns
    deny = ["uploads.github.com"]                      # deny beats allow
    presets = ["python", "npm", "github"]              # named registry / forge lists
    ask_timeout_s = 120                                # no answer in time = deny

    [prompts]
    timeout_s = 300

    [limits]                                           # every sandboxed command's bounds
    processes = 4096                                   # processes and threads together
    memory_mib = 8192                                  # default: half the machine's memory
    tmpfs_mib = 4096                                   # each tmpfs (/tmp, /var/tmp, /dev/shm)

Unknown keys and wrong types are errors naming the file and key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class UserConfigError(ValueError):
    """One line: the file, the key, what is wrong."""


@dataclass(frozen=True, slots=True)
class UserConfig:
    network_allow: tuple[str, ...] = ()
    network_deny: tuple[str, ...] = ()
    network_presets: tuple[str, ...] = ()
    network_ask_timeout_s: float = 120.0
    prompt_timeout_s: float = 300.0
    limits_processes: int | None = None
    limits_memory_mib: int | None = None
    limits_tmpfs_mib: int | None = None
    source: str = "(defaults)"
    extra: dict[str, Any] = field(default_factory=dict)


_SCHEMA: dict[str, dict[str, type]] = {
    "network": {"allow": list, "deny": list, "presets": list, "ask_timeout_s": float},
    "prompts": {"timeout_s": float},
    "limits": {"processes": float, "memory_mib": float, "tmpfs_mib": float},
}


def load_user_config(path: Path) -> UserConfig:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return UserConfig()
    except OSError as error:
        raise UserConfigError(f"{path}: cannot read: {error.strerror}") from error
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserConfigError(f"{path}: not valid TOML: {error}") from error
    values: dict[str, Any] = {}
    for table, content in data.items():
        if table not in _SCHEMA or not isinstance(content, dict):
            raise UserConfigError(f"{path}: key '{table}': unknown table")
        for key, value in content.items():
            expected = _SCHEMA[table].get(key)
            if expected is None:
                raise UserConfigError(f"{path}: key '{table}.{key}': unknown key")
            if expected is float and isinstance(value, int | float) and not isinstance(value, bool):
                if not value > 0:
                    raise UserConfigError(f"{path}: key '{table}.{key}': must be positive")
                values[f"{table}.{key}"] = float(value)
            elif expected is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
                values[f"{table}.{key}"] = tuple(value)
            else:
                raise UserConfigError(f"{path}: key '{table}.{key}': expected {expected.__name__}")
    return UserConfig(
        network_allow=values.get("network.allow", ()),
        network_deny=values.get("network.deny", ()),
        network_presets=values.get("network.presets", ()),
        network_ask_timeout_s=values.get("network.ask_timeout_s", 120.0),
        prompt_timeout_s=values.get("prompts.timeout_s", 300.0),
        limits_processes=_whole(values.get("limits.processes")),
        limits_memory_mib=_whole(values.get("limits.memory_mib")),
        limits_tmpfs_mib=_whole(values.get("limits.tmpfs_mib")),
        source=str(path),
    )


def _whole(value: float | None) -> int | None:
    return None if value is None else max(1, int(value))
