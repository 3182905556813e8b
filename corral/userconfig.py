"""The user's own settings, `~/.config/corral/config.toml` (never read from a repository).

`USER_SETTINGS` is the one schema: the loader validates against it and the README's reference is
generated from it (`python -m corral.configref --write README.md`), so the two cannot drift. Unknown
tables or keys and wrong types are errors naming the file and key; host patterns are checked later by
`sandbox.egress.hostpolicy` (public-suffix wildcards are errors there, naming the file and key).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from boundary.backends import BACKEND_NAMES as KNOWN_NAMES
from corral.credentialmap import CredentialConfigError, CredentialEntry, parse_credentials
from corral.errors import UsageError
from sandbox.limits import MIB, ResourceLimits, default_limits

SettingKind = Literal["hosts", "names", "seconds", "count", "paths", "backend", "switch"]


class UserConfigError(UsageError):
    """One line: the file, the key, what is wrong."""


@dataclass(frozen=True, slots=True)
class UserSetting:
    """One key of the user config: dotted name, value kind, default (as TOML) and what it does."""

    key: str
    kind: SettingKind
    default: str
    doc: str

    @property
    def type_text(self) -> str:
        """The TOML type, in words."""
        return {
            "hosts": "list of strings",
            "names": "list of strings",
            "paths": "list of strings",
            "seconds": "number > 0",
            "count": "integer > 0",
            "backend": "string: " + ", ".join(KNOWN_NAMES),
            "switch": "true or false",
        }[self.kind]


USER_SETTINGS: tuple[UserSetting, ...] = (
    UserSetting(
        "network.allow",
        "hosts",
        "[]",
        "hosts commands may reach with no prompt: `host`, `host:port`, `*.domain` (subdomains only), "
        "an address or a CIDR range (`10.0.0.0/24`: also lets allowed names reach those addresses); "
        "a wildcard over a public suffix (`*.com`) is an error, hosts where anyone can publish load "
        "with a warning",
    ),
    UserSetting("network.deny", "hosts", "[]", "hosts always refused without a prompt; deny beats allow"),
    UserSetting(
        "network.presets",
        "names",
        "[]",
        "named host lists to allow (the presets below)",
    ),
    UserSetting(
        "prompts.timeout_s",
        "seconds",
        "300",
        "how long a prompt waits for an answer; no answer in time is a denial. A new host's connection waits"
        " the same deadline: at it the prompt is dismissed, and a late answer stores no rule",
    ),
    UserSetting(
        "limits.processes",
        "count",
        "4096",
        "processes and threads one sandboxed command may run at once (a cgroup where corral can make "
        "one, else RLIMIT_NPROC in the sandbox's user namespace); `corral doctor` says which",
    ),
    UserSetting(
        "limits.memory_mib",
        "count",
        "half the memory",
        "memory of one command in MiB: the whole command under a cgroup, each process under rlimits",
    ),
    UserSetting(
        "limits.tmpfs_mib",
        "count",
        "a quarter of the memory, at most 8192",
        "size in MiB of each tmpfs a command can write (/var/tmp, /dev/shm) and bound of a session's /tmp; a full one is reported",
    ),
    UserSetting(
        "filesystem.readable",
        "paths",
        "[]",
        "home paths (`~/...` or absolute) sandboxed commands may read, read-only, besides the built-in "
        "allow-list; everything else in the home stays hidden (credential stores always do)",
    ),
    UserSetting(
        "sandbox.backend",
        "backend",
        '"auto"',
        "which sandbox runs commands: `auto` is Seatbelt on macOS, bubblewrap on Linux, and where bwrap cannot start (e.g. Ubuntu's AppArmor "
        "blocks its user namespaces) Landlock, which enforces less (every session says so when it opens; "
        "see Backends); a named backend that cannot run here refuses "
        "(exit 125) instead of running with less. "
        "`--backend NAME` overrides it for one command; `corral doctor` says which runs and why",
    ),
    UserSetting(
        "sandbox.landlock_layer",
        "switch",
        "false",
        "bwrap only: also run every command under a Landlock ruleset inside the sandbox (writes allowed only "
        "where the policy allows them), so a mistake in the sandbox's mounts is still refused; needs "
        "/usr/bin/python3 and costs a few ms per command (see Backends)",
    ),
    UserSetting(
        "ssh.agent",
        "switch",
        "false",
        "bwrap only: offer sandboxed commands an ssh agent (`SSH_AUTH_SOCK` inside) that signs only for "
        "hosts they were allowed to reach, with your agent or your key files outside; every Unix socket a "
        "command creates then leads to that agent and nowhere else (see SSH without the key inside)",
    ),
)
"""Every key of the user config, in the order the reference lists them."""


@dataclass(frozen=True, slots=True)
class UserConfig:
    """The loaded settings (defaults for absent keys). `source` names the file, for messages."""

    network_allow: tuple[str, ...] = ()
    network_deny: tuple[str, ...] = ()
    network_presets: tuple[str, ...] = ()
    prompt_timeout_s: float = 300.0
    filesystem_readable: tuple[str, ...] = ()
    """Home paths a sandboxed command may read besides the built-in allow-list (from this file only,
    never from a repository)."""
    limits_processes: int | None = None
    limits_memory_mib: int | None = None
    limits_tmpfs_mib: int | None = None
    credentials: tuple[CredentialEntry, ...] = ()
    """The credential map (`[credentials.NAME]`): secrets corral adds to requests outside the sandbox."""
    sandbox_backend: str = "auto"
    sandbox_landlock_layer: bool = False
    ssh_agent: bool = False
    source: str = "(defaults)"

    def resource_limits(self) -> ResourceLimits:
        """The bounds of every sandboxed command: these settings over `sandbox.limits` defaults."""
        return default_limits(
            max_processes=self.limits_processes,
            memory_bytes=self.limits_memory_mib * MIB if self.limits_memory_mib else None,
            tmpfs_bytes=self.limits_tmpfs_mib * MIB if self.limits_tmpfs_mib else None,
        )


_FIELD_OF: dict[str, str] = {
    "network.allow": "network_allow",
    "network.deny": "network_deny",
    "network.presets": "network_presets",
    "prompts.timeout_s": "prompt_timeout_s",
    "filesystem.readable": "filesystem_readable",
    "limits.processes": "limits_processes",
    "limits.memory_mib": "limits_memory_mib",
    "limits.tmpfs_mib": "limits_tmpfs_mib",
    "sandbox.backend": "sandbox_backend",
    "sandbox.landlock_layer": "sandbox_landlock_layer",
    "ssh.agent": "ssh_agent",
}
assert set(_FIELD_OF) == {setting.key for setting in USER_SETTINGS}


def _value(setting: UserSetting, value: Any, where: str) -> object:
    if setting.kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UserConfigError(f"{where}: expected a whole number > 0")
        return value
    if setting.kind == "backend":
        if not isinstance(value, str) or value not in KNOWN_NAMES:
            raise UserConfigError(f"{where}: expected one of {', '.join(KNOWN_NAMES)}")
        return value
    if setting.kind == "switch":
        if not isinstance(value, bool):
            raise UserConfigError(f"{where}: expected true or false")
        return value
    if setting.kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserConfigError(f"{where}: expected a number of seconds")
        if not value > 0:
            raise UserConfigError(f"{where}: must be positive")
        return float(value)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UserConfigError(f"{where}: expected a list of strings")
    if setting.kind == "paths":
        for index, entry in enumerate(value):
            if not (entry.startswith("~/") or entry.startswith("/")) or "\0" in entry:
                raise UserConfigError(f"{where}[{index}]: '{entry}' must be absolute or start with ~/")
            if ".." in entry.split("/"):
                raise UserConfigError(f"{where}[{index}]: '{entry}' contains '..'")
    return tuple(value)


def parse_user_config(raw: bytes, source: str) -> UserConfig:
    """Validate the bytes of a user config against `USER_SETTINGS`, or raise UserConfigError."""
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserConfigError(f"{source}: not valid TOML: {error}") from error
    by_key = {setting.key: setting for setting in USER_SETTINGS}
    tables = {setting.key.split(".")[0] for setting in USER_SETTINGS}
    values: dict[str, object] = {}
    for table, content in data.items():
        if table == "credentials":
            try:
                values["credentials"] = parse_credentials(content, source)
            except CredentialConfigError as error:
                raise UserConfigError(str(error)) from None
            continue
        if table not in tables:
            raise UserConfigError(f"{source}: key '{table}': unknown table")
        if not isinstance(content, dict):
            raise UserConfigError(f"{source}: key '{table}': expected a table")
        for key, value in content.items():
            setting = by_key.get(f"{table}.{key}")
            if setting is None:
                raise UserConfigError(f"{source}: key '{table}.{key}': unknown key")
            values[_FIELD_OF[setting.key]] = _value(setting, value, f"{source}: key '{setting.key}'")
    return UserConfig(source=source, **values)  # type: ignore[arg-type]


def load_user_config(path: Path) -> UserConfig:
    """The user's settings from `path` (defaults when it does not exist)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return UserConfig()
    except OSError as error:
        raise UserConfigError(f"{path}: cannot read: {error.strerror}") from error
    return parse_user_config(raw, str(path))
