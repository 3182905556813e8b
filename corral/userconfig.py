"""The user's own settings, `~/.config/corral/config.toml` (never read from a repository).

    [network]
    allow = ["pypi.org", "*.githubusercontent.com"]   # exact hosts or *.subdomain patterns
    deny = ["uploads.github.com"]                      # deny beats allow
    presets = ["python", "npm", "github"]              # named registry / forge lists
    ask_timeout_s = 120                                # no answer in time = deny

    [prompts]
    timeout_s = 300

    [filesystem]
    readable = ["~/.config/nvim", "~/notes"]            # widen the home's read allow-list (read-only)

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
    filesystem_readable: tuple[str, ...] = ()
    """Home paths a sandboxed command may read besides the built-in allow-list (only from this file,
    never from a repository)."""
    source: str = "(defaults)"
    extra: dict[str, Any] = field(default_factory=dict)


_SCHEMA: dict[str, dict[str, type]] = {
    "network": {"allow": list, "deny": list, "presets": list, "ask_timeout_s": float},
    "prompts": {"timeout_s": float},
    "filesystem": {"readable": list},
}


def _readable(path: Path, entries: tuple[str, ...]) -> tuple[str, ...]:
    for index, entry in enumerate(entries):
        if not (entry.startswith("~/") or entry.startswith("/")) or "\0" in entry:
            raise UserConfigError(
                f"{path}: key 'filesystem.readable[{index}]': '{entry}' must be an absolute path or start with ~/"
            )
        if any(part == ".." for part in entry.split("/")):
            raise UserConfigError(f"{path}: key 'filesystem.readable[{index}]': '{entry}' contains '..'")
    return entries


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
        filesystem_readable=_readable(path, values.get("filesystem.readable", ())),
        source=str(path),
    )
