"""The project configuration `.corral/config.toml`: strict schema, parsed only after trust.

Schema (every key optional; any other key is an error naming the file and key)::

    [paths]
    writable = ["build", "out/cache"]   # extra writable paths, relative, inside the workspace
    hidden = ["secrets"]                # extra paths commands cannot read, relative, inside the workspace

    [network]
    allow = ["pypi.org", "*.example.com"]   # extra hosts commands may reach (canonical host rules)

    [env]
    RUST_LOG = "debug"                  # string variables set for commands (names checked, see below)

    [hooks]                             # each runs INSIDE the sandbox, like an agent command
    session_start = ".corral/hooks/start.sh"   # a script under .corral/ ...
    before_command = "make -s check-env"       # ... or a shell string (run with `sh -c`)
    after_command = ".corral/hooks/after.sh"

Rules:

- Paths (`paths.writable`, `paths.hidden`) are relative, with no `..`, no leading `~`, no `$`, no glob
  characters, not the whole workspace, and must resolve (symlinks followed, at load time) inside the
  workspace. `paths.writable` may not name, contain or lie inside a protected path (`.git`, `.corral`,
  other agents' config, shell startup files: `boundary.table` PROTECTED rows).
- Hosts (`network.allow`) go through `boundary.hostpatterns.parse_pattern` (one normalisation; no lone
  `*`, no wildcard over a public suffix); a project may also not allow IP addresses or `localhost`.
- `env` names that route credentials or endpoints, change loaders or shells, or move corral's or another
  tool's state are refused (`REFUSED_ENV_PATTERNS`, plus `boundary.table.ENV_DENY`).
- Keys that would loosen corral itself are refused even in a trusted project (`NEVER_ALLOWED`): turning
  the sandbox off, Unix sockets, auto-approval, state locations, outside paths.

`paths.writable` and `network.allow` widen the boundary; `ProjectConfig.widening()` lists them for the
dialog. `COMMAND_VALUED_KEYS` lists every key whose value runs as a command: the gate only exposes a
`ProjectConfig` for a trusted project, and tests fail if a command-valued key is added without review.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from boundary.hostpatterns import parse_pattern, user_content_warning
from boundary.hosts import HostError, ip_of

CONFIG_SOURCE = ".corral/config.toml"
HOOK_EVENTS: tuple[str, ...] = ("session_start", "before_command", "after_command")
MAX_STRING = 4096
MAX_LIST = 256

KeyKind = Literal["path_list", "host_list", "env_table", "command"]


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One key of the schema: the single source for the loader and for the README's reference.

    key: dotted name. kind: how the loader validates the value. widens: the value widens the sandbox
    boundary (highlighted at trust time). runs_code: the value runs as a command. doc: what the key
    does. limits: what the value may not do (the loader refuses it, naming the file and key).
    """

    key: str
    kind: KeyKind
    widens: bool
    runs_code: bool
    doc: str
    limits: str = ""

    @property
    def table(self) -> str:
        """The TOML table the key lives in (`paths` for `paths.writable`)."""
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        """The key inside its table (`writable`); the table itself for a whole-table key (`env`)."""
        return self.key.split(".", 1)[-1]

    @property
    def type_text(self) -> str:
        """The TOML type, in words."""
        return _TYPE_TEXT[self.kind]

    @property
    def default(self) -> str:
        """The value when the key is absent."""
        return _DEFAULT_TEXT[self.kind]


_TYPE_TEXT: dict[str, str] = {
    "path_list": "list of strings",
    "host_list": "list of strings",
    "env_table": "table of strings",
    "command": "string",
}
_DEFAULT_TEXT: dict[str, str] = {
    "path_list": "`[]`",
    "host_list": "`[]`",
    "env_table": "`{}`",
    "command": "none",
}
_PATH_LIMITS = (
    "relative to the workspace; no `..`, `~`, `$`, glob or control characters; not the whole "
    "workspace; must resolve (symlinks followed, at load time and again at each command) inside it"
)
_HOOK_MOMENT = {
    "session_start": "once when a session opens (see Hooks below)",
    "before_command": "before every command",
    "after_command": "after every command",
}

SCHEMA: tuple[KeySpec, ...] = (
    KeySpec(
        "paths.writable",
        "path_list",
        True,
        False,
        "paths inside the workspace whose changes never count as protected (the workspace itself is "
        "already writable; changes are still captured and applied after each command)",
        _PATH_LIMITS + "; may not name, contain or lie inside a protected path (`.git`, `.corral`, "
        "other agents' config, shell start-up files)",
    ),
    KeySpec(
        "paths.hidden",
        "path_list",
        False,
        False,
        "extra paths commands cannot read (they see an empty decoy; reads are reported)",
        _PATH_LIMITS,
    ),
    KeySpec(
        "network.allow",
        "host_list",
        True,
        False,
        "extra hosts commands may reach through the proxy (`host`, `host:port`, `*.domain`)",
        "no lone `*`, no wildcard over a public suffix (`*.com`, `*.github.io`), no IP addresses, no "
        "`localhost`; the user's `network.deny` still wins",
    ),
    KeySpec(
        "env",
        "env_table",
        False,
        False,
        'environment variables for every command (`NAME = "value"`)',
        "no names that route credentials or endpoints (`*TOKEN*`, `*_URL`, `*_PROXY`, `AWS_*`, …), "
        "change loaders, interpreters or shells (`LD_*`, `*PATH*`, `PYTHON*`, `BASH_ENV`, …) or move "
        "corral's or another tool's state (`HOME`, `XDG_*`, `CORRAL_*`, `*_CONFIG`, …)",
    ),
    *(
        KeySpec(
            f"hooks.{event}",
            "command",
            False,
            True,
            f"runs {_HOOK_MOMENT[event]}, inside the sandbox, decided like any command: a script "
            "under `.corral/` (run with `sh` from the exact bytes you trusted) or a shell string",
            "a script may not resolve outside `.corral/`; never runs before trust, never unsandboxed",
        )
        for event in HOOK_EVENTS
    ),
)
"""Every key a project config may set, in the order the reference lists them."""


def _tables(schema: tuple[KeySpec, ...]) -> dict[str, tuple[str, ...]]:
    tables: dict[str, tuple[str, ...]] = {}
    for spec in schema:
        keys = tables.setdefault(spec.table, ())
        if spec.key != spec.table:
            tables[spec.table] = (*keys, spec.name)
    return tables


TABLES: dict[str, tuple[str, ...]] = _tables(SCHEMA)
"""Top-level tables and the keys each may hold (`env`, a whole-table key, holds any valid names)."""

COMMAND_VALUED_KEYS: frozenset[str] = frozenset(spec.key for spec in SCHEMA if spec.runs_code)
"""Keys whose value is run as a command (only ever exposed after trust, and only run in the sandbox)."""

NEVER_ALLOWED: dict[str, str] = {
    "sandbox": "a project can never configure or turn off the sandbox",
    "enabled": "a project can never turn the sandbox off",
    "disabled": "a project can never turn the sandbox off",
    "unsandboxed": "a project can never run commands outside the sandbox",
    "excluded_commands": "a project can never run commands outside the sandbox",
    "unix_sockets": "a project can never open Unix sockets",
    "allow_unix_sockets": "a project can never open Unix sockets",
    "sockets": "a project can never open Unix sockets",
    "auto_approve": "a project can never approve prompts",
    "approve": "a project can never approve prompts",
    "permissions": "a project can never approve prompts",
    "yolo": "a project can never approve prompts",
    "trust": "a project can never trust itself",
    "trusted": "a project can never trust itself",
    "state_dir": "a project can never move corral's state",
    "data_dir": "a project can never move corral's state",
    "config_dir": "a project can never move corral's state",
    "cache_dir": "a project can never move corral's state",
    "home": "a project can never move corral's state",
    "outside": "a project can never open paths outside the workspace",
    "readable": "a project can never open paths outside the workspace",
    "read": "a project can never open paths outside the workspace",
}
"""Key names (at any level) refused even in a trusted project, with the reason shown."""

REFUSED_ENV_PATTERNS: tuple[str, ...] = (
    # endpoints and credential routing
    "*_URL",
    "*_URI",
    "*_ENDPOINT",
    "*_API_BASE",
    "*_BASE",
    "*_HOST",
    "*_PROXY",
    "NO_PROXY",
    "*TOKEN*",
    "*KEY*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*CREDENTIAL*",
    "*AUTH*",
    "*COOKIE*",
    "*SESSION*",
    "*CA_BUNDLE*",
    "*CA_CERT*",
    "*_CERT*",
    "SSL_*",
    "CURL_*",
    "WGET*",
    "*SOCK*",
    "*SOCKET*",
    "ANTHROPIC_*",
    "OPENAI_*",
    "CLAUDE_*",
    "CODEX_*",
    "GEMINI_*",
    "GOOGLE_*",
    "AWS_*",
    "AZURE_*",
    "DOCKER_*",
    "KUBECONFIG",
    "PIP_*",
    "NPM_CONFIG_*",
    "UV_*",
    "YARN_*",
    "GH_*",
    "GITHUB_*",
    "HF_*",
    # loaders, interpreters and shells
    "LD_*",
    "DYLD_*",
    "*PRELOAD*",
    "*PATH*",
    "PYTHON*",
    "PERL*",
    "RUBY*",
    "NODE_OPTIONS",
    "*_OPTIONS",
    "*_OPTS",
    "JAVA_TOOL_OPTIONS",
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "PS4",
    "IFS",
    "SHELLOPTS",
    "BASHOPTS",
    "GLOBIGNORE",
    "SHELL",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "*_PAGER",
    "BROWSER",
    "GIT_*",
    "SSH_*",
    "GPG*",
    "GNUPG*",
    "TERM",
    "TERMINFO*",
    # homes and state locations (corral's and other tools')
    "HOME",
    "*_HOME",
    "*_CONFIG_DIR",
    "*_DATA_DIR",
    "*_CACHE_DIR",
    "*_CONFIG",
    "XDG_*",
    "TMPDIR",
    "TMP",
    "TEMP",
    "USER",
    "LOGNAME",
    "CORRAL_*",
    "DISPLAY",
    "WAYLAND_*",
    "DBUS_*",
)
"""Environment names a project may not set (matched case-insensitively, shell-style)."""

_LOOSENING_WORDS = (
    "sandbox",
    "dangerous",
    "disable",
    "bypass",
    "weaker",
    "unsandbox",
    "approv",
    "unixsocket",
    "yolo",
    "trust",
    "permission",
    "statedir",
    "datadir",
    "configdir",
    "cachedir",
    "excludedcommand",
    "skip",
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_GLOB_CHARS = frozenset("*?[]{}")


class ConfigError(ValueError):
    """A project config that cannot be loaded; `str()` is one line naming the file and key."""

    def __init__(self, source: str, key: str | None, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: key '{key}': " if key is not None else f"{source}: "
        super().__init__(where + reason.replace("\n", " "))


@dataclass(frozen=True, slots=True)
class Hook:
    """A hook: the event, the command text as written, and the script path when it names one."""

    event: str
    command: str
    script: str | None

    def argv(self) -> list[str]:
        """How to run it inside the sandbox (cwd = workspace): the script with `sh`, or `sh -c command`."""
        if self.script is not None:
            return ["/bin/sh", self.script]
        return ["/bin/sh", "-c", self.command]


@dataclass(frozen=True, slots=True)
class Widening:
    """One value that widens the sandbox boundary, for highlighting in a dialog."""

    key: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """A validated project config. Only `trust.gate` hands one out, and only for a trusted project.

    writable/hidden: relative paths as written (normalised). allowed_hosts: canonical host rules.
    env: (name, value) pairs. hooks: in `HOOK_EVENTS` order. host_warnings: rules that reach hosts where
    anyone can publish (they load, with this warning shown).
    """

    root: Path
    writable: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    hooks: tuple[Hook, ...] = ()
    host_warnings: tuple[str, ...] = ()

    def writable_paths(self) -> tuple[Path, ...]:
        """Absolute writable paths, each re-checked to resolve inside the workspace right now.

        Raises ConfigError if a symlink created since loading now points outside.
        """
        return tuple(_resolve_inside(self.root, rel, "paths.writable") for rel in self.writable)

    def hidden_paths(self) -> tuple[Path, ...]:
        """Absolute hidden paths (re-checked like `writable_paths`)."""
        return tuple(_resolve_inside(self.root, rel, "paths.hidden") for rel in self.hidden)

    def env_dict(self) -> dict[str, str]:
        """The environment additions as a dict."""
        return dict(self.env)

    def hook(self, event: str) -> Hook | None:
        """The hook for `event`, if configured."""
        for hook in self.hooks:
            if hook.event == event:
                return hook
        return None

    def widening(self) -> tuple[Widening, ...]:
        """Every value that widens the boundary (new hosts, extra writable paths)."""
        hosts = tuple(
            Widening("network.allow", h, "commands may reach this host") for h in self.allowed_hosts
        )
        paths = tuple(
            Widening("paths.writable", p, "commands may write here directly") for p in self.writable
        )
        return paths + hosts


def _resolve_inside(root: Path, relative: str, key: str) -> Path:
    real_root = os.path.realpath(root)
    resolved = os.path.realpath(os.path.join(real_root, relative))
    if resolved == real_root or not resolved.startswith(real_root.rstrip("/") + "/"):
        raise ConfigError(CONFIG_SOURCE, key, f"'{relative}' resolves outside the workspace ({resolved})")
    return Path(resolved)


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(CONFIG_SOURCE, key, f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_STRING:
        raise ConfigError(CONFIG_SOURCE, key, f"longer than {MAX_STRING} characters")
    if "\x00" in value:
        raise ConfigError(CONFIG_SOURCE, key, "contains a NUL character")
    return value


def _string_list(value: Any, key: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(CONFIG_SOURCE, key, f"expected a list of strings, got {type(value).__name__}")
    if len(value) > MAX_LIST:
        raise ConfigError(CONFIG_SOURCE, key, f"more than {MAX_LIST} entries")
    return [_string(item, f"{key}[{index}]") for index, item in enumerate(value)]


def _protected_patterns() -> tuple[str, ...]:
    from boundary.table import Kind, rows

    return tuple(row.pattern for row in rows(Kind.PROTECTED))


def _touches_protected(parts: list[str]) -> str | None:
    """The protected pattern a writable path names, lies inside or contains, if any."""
    for pattern in _protected_patterns():
        pattern_parts = pattern.split("/")
        for start in range(len(parts)):
            suffix = parts[start:]
            # the path is (inside) a protected path
            if len(suffix) >= len(pattern_parts) and all(
                fnmatch.fnmatchcase(s.lower(), p.lower()) for s, p in zip(suffix, pattern_parts, strict=False)
            ):
                return pattern
        # the path contains a protected path (written relative to the workspace)
        if len(parts) < len(pattern_parts) and all(
            fnmatch.fnmatchcase(s.lower(), p.lower()) for s, p in zip(parts, pattern_parts, strict=False)
        ):
            return pattern
    return None


def _path_entry(raw: str, key: str, root: Path, writable: bool) -> str:
    if not raw or raw.strip() != raw:
        raise ConfigError(CONFIG_SOURCE, key, "empty path or surrounding spaces")
    if raw.startswith("/"):
        raise ConfigError(CONFIG_SOURCE, key, f"'{raw}' is absolute; paths are relative to the workspace")
    if raw.startswith("~") or "$" in raw:
        raise ConfigError(CONFIG_SOURCE, key, f"'{raw}' names a home or variable; only workspace paths")
    if any(char in _GLOB_CHARS for char in raw) or "\\" in raw:
        raise ConfigError(CONFIG_SOURCE, key, f"'{raw}' contains glob or escape characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in raw):
        raise ConfigError(CONFIG_SOURCE, key, "contains control characters")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ConfigError(CONFIG_SOURCE, key, f"'{raw}' contains '..'")
    if not parts:
        raise ConfigError(CONFIG_SOURCE, key, f"'{raw}' names the whole workspace")
    if writable:
        protected = _touches_protected(parts)
        if protected is not None:
            raise ConfigError(CONFIG_SOURCE, key, f"'{raw}' touches protected path '{protected}'")
    normalised = "/".join(parts)
    _resolve_inside(root, normalised, key)
    return normalised


def _host_entry(raw: str, key: str) -> tuple[str, str | None]:
    try:
        pattern = parse_pattern(raw)
    except HostError as error:
        hint = f" (write '{error.suggestion}')" if error.suggestion else ""
        raise ConfigError(CONFIG_SOURCE, key, f"{error}{hint}") from None
    if ip_of(pattern.domain) is not None or pattern.network is not None:
        raise ConfigError(CONFIG_SOURCE, key, f"'{raw}': a project may not allow IP addresses")
    if pattern.domain == "localhost" or pattern.domain.endswith(".localhost"):
        raise ConfigError(CONFIG_SOURCE, key, f"'{raw}': a project may not allow localhost")
    return str(pattern), user_content_warning(pattern)


def refused_env_reason(name: str) -> str | None:
    """Why a project may not set environment variable `name`, or None when it may."""
    from boundary.table import ENV_DENY

    if not _ENV_NAME.match(name):
        return "not a valid variable name"
    upper = name.upper()
    for pattern in REFUSED_ENV_PATTERNS + ENV_DENY:
        if fnmatch.fnmatchcase(upper, pattern.upper()):
            return f"a project may not set variables matching '{pattern}' (endpoints, credentials, loaders)"
    return None


def _hook_entry(raw: str, key: str, event: str, root: Path) -> Hook:
    command = _string(raw, key)
    if not command.strip():
        raise ConfigError(CONFIG_SOURCE, key, "empty command")
    if command.startswith(".corral/") and not any(char.isspace() for char in command):
        parts = command.split("/")
        if ".." in parts or "" in parts[1:]:
            raise ConfigError(CONFIG_SOURCE, key, f"'{command}': bad script path")
        resolved = _resolve_inside(root, command, key)
        corral_dir = os.path.realpath(os.path.join(root, ".corral"))
        if not str(resolved).startswith(corral_dir + "/"):
            raise ConfigError(CONFIG_SOURCE, key, f"'{command}' resolves outside .corral/")
        if not resolved.is_file():
            raise ConfigError(CONFIG_SOURCE, key, f"'{command}': script not found")
        return Hook(event, command, command)
    return Hook(event, command, None)


def _check_never_allowed(table: dict[str, Any], prefix: str) -> None:
    """Refuse keys that would loosen corral, naming the deepest such key (`sandbox.enabled`)."""
    for name, value in table.items():
        dotted = f"{prefix}{name}"
        if dotted == "env":
            continue  # variable names are checked by `refused_env_reason`
        if isinstance(value, dict):
            _check_never_allowed(value, dotted + ".")
        lowered = name.lower()
        reason = NEVER_ALLOWED.get(lowered)
        squashed = lowered.replace("_", "").replace("-", "")
        if reason is None and any(word in squashed for word in _LOOSENING_WORDS):
            reason = "a project can never loosen the sandbox, the prompts or corral's state"
        if reason is not None:
            raise ConfigError(CONFIG_SOURCE, dotted, reason)


def _table(data: dict[str, Any], name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(CONFIG_SOURCE, name, f"expected a table, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise ConfigError(CONFIG_SOURCE, f"{name}.{key}", "unknown key")
    return value


def parse_project_config(raw: bytes, project_root: Path) -> ProjectConfig:
    """Validate the bytes of `.corral/config.toml` into a ProjectConfig, or raise ConfigError.

    Call only on bytes the person has trusted (`trust.gate` does); this function parses but never runs
    anything. `project_root` is the canonical workspace root paths are checked against.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(CONFIG_SOURCE, None, f"not UTF-8 (byte {error.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(CONFIG_SOURCE, None, f"invalid TOML: {error}") from None
    _check_never_allowed(data, "")
    for name in data:
        if name not in TABLES:
            raise ConfigError(CONFIG_SOURCE, name, "unknown key")
    paths = _table(data, "paths", TABLES["paths"])
    network = _table(data, "network", TABLES["network"])
    hooks_table = _table(data, "hooks", TABLES["hooks"])
    env_table = data.get("env", {})
    if not isinstance(env_table, dict):
        raise ConfigError(CONFIG_SOURCE, "env", f"expected a table, got {type(env_table).__name__}")
    root = Path(os.path.realpath(project_root))

    writable = tuple(
        _path_entry(item, f"paths.writable[{i}]", root, True)
        for i, item in enumerate(_string_list(paths.get("writable", []), "paths.writable"))
    )
    hidden = tuple(
        _path_entry(item, f"paths.hidden[{i}]", root, False)
        for i, item in enumerate(_string_list(paths.get("hidden", []), "paths.hidden"))
    )
    hosts: list[str] = []
    warnings: list[str] = []
    for i, item in enumerate(_string_list(network.get("allow", []), "network.allow")):
        host, warning = _host_entry(item, f"network.allow[{i}]")
        hosts.append(host)
        if warning is not None:
            warnings.append(warning)
    env: list[tuple[str, str]] = []
    for name, value in env_table.items():
        reason = refused_env_reason(name)
        if reason is not None:
            raise ConfigError(CONFIG_SOURCE, f"env.{name}", reason)
        env.append((name, _string(value, f"env.{name}")))
    hooks = tuple(
        _hook_entry(hooks_table[event], f"hooks.{event}", event, root)
        for event in HOOK_EVENTS
        if event in hooks_table
    )
    return ProjectConfig(root, writable, hidden, tuple(hosts), tuple(env), hooks, tuple(warnings))


@dataclass(frozen=True, slots=True)
class ConfigReview:
    """What a config would do, for the trust dialog: strings only, never a ProjectConfig.

    error: the one-line ConfigError the config would fail with (None when it would load).
    """

    widening: tuple[Widening, ...]
    hooks: tuple[Hook, ...]
    env: tuple[tuple[str, str], ...]
    host_warnings: tuple[str, ...]
    error: str | None


def review_config(raw: bytes | None, project_root: Path) -> ConfigReview:
    """Describe untrusted config bytes for the person deciding on trust.

    This validates the text with the same strict rules, purely to list the widening values, hooks and
    environment for display; nothing from it reaches a policy, and nothing in it is run.
    """
    if raw is None:
        return ConfigReview((), (), (), (), None)
    try:
        config = parse_project_config(raw, project_root)
    except ConfigError as error:
        return ConfigReview((), (), (), (), str(error))
    return ConfigReview(config.widening(), config.hooks, config.env, config.host_warnings, None)
