"""The credential map: the person's `[credentials.NAME]` tables (user config only, never a repository).

Each entry says where a secret comes from and where it goes:

    [credentials.github]            # a preset: hosts, header, scheme and variables are built in
    from = "env:GITHUB_TOKEN"       # or "keyring:SERVICE[:USER]", or "file:~/.config/gh/hosts.yml"

    [credentials.internal]          # any other name spells them out
    from = "file:~/.config/internal/token"
    hosts = ["api.internal.example"]
    header = "Authorization"
    scheme = "bearer"               # bearer | token | basic (with `username`) | none (the bare secret)
    env = ["INTERNAL_TOKEN"]        # variables that hold the placeholder inside the sandbox

`parse_credentials` validates the tables (errors name the file and key); `resolve_credentials` reads
each secret in corral's own process, outside the sandbox, and returns the `BrokeredCredential`s plus
one warning line for each entry whose secret could not be read (that entry is then not brokered).
"""

from __future__ import annotations

import configparser
import netrc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boundary.hostpatterns import parse_pattern
from boundary.hosts import HostError, canonical_host
from corral.errors import UsageError
from sandbox.egress.credentials import SCHEMES, BrokeredCredential, new_placeholder


class CredentialConfigError(UsageError):
    """One line: the file, the key, what is wrong."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where a credential goes on some hosts: a header, in a scheme."""

    hosts: tuple[str, ...]
    header: str
    scheme: str
    username: str = ""


@dataclass(frozen=True, slots=True)
class CredentialPreset:
    name: str
    routes: tuple[Route, ...]
    env: tuple[str, ...]
    fixed_env: tuple[tuple[str, str], ...] = ()
    """Variables that are not secret but that tools need beside the placeholder (TWINE_USERNAME)."""
    file_selector: str = ""
    """What `file:` reads when no `#selector` is given (gh's hosts.yml: the host; .npmrc: the key)."""
    note: str = ""


CREDENTIAL_PRESETS: dict[str, CredentialPreset] = {
    preset.name: preset
    for preset in (
        CredentialPreset(
            "github",
            (
                Route(("api.github.com", "uploads.github.com"), "Authorization", "token"),
                Route(("github.com",), "Authorization", "basic", "x-access-token"),
            ),
            ("GH_TOKEN", "GITHUB_TOKEN"),
            file_selector="github.com",
            note="`gh` and git over HTTPS (a credential helper inside hands git the placeholder)",
        ),
        CredentialPreset(
            "gitlab",
            (
                Route(("gitlab.com",), "PRIVATE-TOKEN", "none"),
                Route(("gitlab.com",), "Authorization", "basic", "oauth2"),
            ),
            ("GITLAB_TOKEN",),
            note="`glab` (PRIVATE-TOKEN) and git over HTTPS",
        ),
        CredentialPreset(
            "npm",
            (Route(("registry.npmjs.org",), "Authorization", "bearer"),),
            ("NPM_TOKEN",),
            file_selector="//registry.npmjs.org/:_authToken",
            note="a generated global npmrc inside reads the placeholder from NPM_TOKEN (your ~/.npmrc settings stay)",
        ),
        CredentialPreset(
            "pypi",
            (Route(("upload.pypi.org",), "Authorization", "basic", "__token__"),),
            ("TWINE_PASSWORD", "UV_PUBLISH_TOKEN"),
            fixed_env=(("TWINE_USERNAME", "__token__"),),
            file_selector="pypi.password",
            note="uploads with twine or `uv publish`",
        ),
        CredentialPreset(
            "anthropic",
            (Route(("api.anthropic.com",), "x-api-key", "none"),),
            ("ANTHROPIC_API_KEY",),
            note="an agent inside reaches its model with a key it never sees",
        ),
        CredentialPreset(
            "openai",
            (Route(("api.openai.com",), "Authorization", "bearer"),),
            ("OPENAI_API_KEY",),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class CredentialEntry:
    """One validated `[credentials.NAME]` table (the secret not read yet)."""

    name: str
    source: str
    routes: tuple[Route, ...]
    env: tuple[str, ...]
    fixed_env: tuple[tuple[str, str], ...] = ()
    file_selector: str = ""

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(host for route in self.routes for host in route.hosts))


@dataclass(frozen=True, slots=True)
class ResolvedCredentials:
    credentials: tuple[BrokeredCredential, ...]
    fixed_env: dict[str, str]
    warnings: tuple[str, ...]


CREDENTIAL_KEYS: tuple[tuple[str, str, str], ...] = (
    (
        "from",
        "string (required)",
        "where corral reads the secret, in its own process: `env:VARIABLE` (corral's environment), "
        "`keyring:SERVICE[:USER]` (the OS keychain), `file:PATH[#SELECTOR]` (gh's `hosts.yml`: the host; "
        "`.npmrc`: the key; `.netrc`: the machine; `.pypirc`: `section.key`; any other file: the secret alone)",
    ),
    ("hosts", "list of strings", "exact host names that receive it, on port 443 (a preset's by default)"),
    ("header", "string", "the request header it goes in, e.g. `Authorization`, `x-api-key`"),
    (
        "scheme",
        "string",
        "`bearer` (default), `token`, `basic` (with `username`) or `none` (the bare secret)",
    ),
    ("username", "string", "the user name of `basic` (e.g. `x-access-token`, `__token__`)"),
    ("env", "list of strings", "variables that hold the placeholder inside (a preset's by default)"),
)
"""The keys of one `[credentials.NAME]` table, documented in the README's generated reference."""

_KEYS = {key for key, _, _ in CREDENTIAL_KEYS}


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise CredentialConfigError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or any(ch in value for ch in "\r\n\0"):
        raise CredentialConfigError(f"{where}: expected a non-empty one-line string")
    return value


def _source(value: str, where: str) -> str:
    kind, _, rest = value.partition(":")
    if kind not in ("env", "keyring", "file") or not rest:
        raise CredentialConfigError(
            f"{where}: '{value}' must be env:VARIABLE, keyring:SERVICE[:USER] or file:PATH[#SELECTOR]"
        )
    if kind == "file" and not (rest.startswith("~/") or rest.startswith("/")):
        raise CredentialConfigError(f"{where}: the file must be absolute or start with ~/")
    return value


def parse_credentials(data: Any, source: str) -> tuple[CredentialEntry, ...]:
    """Validate the `[credentials]` table of a user config."""
    if not isinstance(data, dict):
        raise CredentialConfigError(f"{source}: key 'credentials': expected tables [credentials.NAME]")
    entries: list[CredentialEntry] = []
    for name, table in data.items():
        where = f"{source}: key 'credentials.{name}'"

        def key(suffix: str, name: str = name) -> str:
            return f"{source}: key 'credentials.{name}.{suffix}'"

        if not isinstance(table, dict):
            raise CredentialConfigError(f"{where}: expected a table")
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise CredentialConfigError(f"{source}: key 'credentials.{name}.{unknown[0]}': unknown key")
        if "from" not in table:
            raise CredentialConfigError(
                f"{source}: key 'credentials.{name}.from': missing (where the secret is)"
            )
        origin = _source(_text(table["from"], key("from")), f"{source}: key 'credentials.{name}.from'")
        preset = CREDENTIAL_PRESETS.get(name)
        env = _strings(table["env"], key("env")) if "env" in table else (preset.env if preset else ())
        for variable in env:
            if not variable.replace("_", "").isalnum():
                raise CredentialConfigError(f"{key('env')}: '{variable}' is not a variable name")
        if preset is not None and not ({"hosts", "header", "scheme", "username"} & set(table)):
            routes = preset.routes
        else:
            if "hosts" not in table or "header" not in table:
                raise CredentialConfigError(f"{where}: needs hosts and header (or a preset name)")
            hosts = []
            for index, raw in enumerate(_strings(table["hosts"], key("hosts"))):
                try:
                    hosts.append(canonical_host(raw))
                except HostError as error:
                    raise CredentialConfigError(f"{key(f'hosts[{index}]')}: {error}") from None
            header = _text(table["header"], key("header"))
            if not all(ch.isalnum() or ch == "-" for ch in header):
                raise CredentialConfigError(f"{key('header')}: '{header}' is not a header name")
            scheme = _text(table.get("scheme", "bearer"), key("scheme")).lower()
            if scheme not in SCHEMES:
                raise CredentialConfigError(f"{key('scheme')}: '{scheme}' is not one of {', '.join(SCHEMES)}")
            username = _text(table["username"], key("username")) if "username" in table else ""
            if scheme == "basic" and not username:
                raise CredentialConfigError(f'{key("username")}: needed with scheme = "basic"')
            routes = (Route(tuple(hosts), header, scheme, username),)
        entries.append(
            CredentialEntry(
                name,
                origin,
                routes,
                env,
                preset.fixed_env if preset else (),
                preset.file_selector if preset else "",
            )
        )
    return tuple(entries)


class _SourceError(Exception):
    pass


def _expand(path: str, environ: Mapping[str, str]) -> Path:
    if path.startswith("~/"):
        return Path(environ.get("HOME") or Path.home()) / path[2:]
    return Path(path)


def _from_file(path: Path, selector: str, default_selector: str = "") -> str:
    """The secret in `path`: by its format (from the name), at `selector` (or the preset's default)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise _SourceError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise _SourceError(f"{path} is not UTF-8 text") from None
    name = path.name
    if name in ("hosts.yml", "hosts.yaml"):
        return _gh_hosts_token(text, selector or default_selector or "github.com", path)
    if name == ".npmrc" or name.endswith(".npmrc"):
        key = selector or (default_selector if default_selector.startswith("//") else "")
        key = key or "//registry.npmjs.org/:_authToken"
        for line in text.splitlines():
            left, equals, right = line.partition("=")
            if equals and left.strip() == key:
                return right.strip()
        raise _SourceError(f"{path} has no {key}")
    if name in (".netrc", "netrc", "_netrc"):
        try:
            selector = selector or default_selector
            found = netrc.netrc(str(path)).authenticators(selector)
        except (netrc.NetrcParseError, OSError) as error:
            raise _SourceError(f"cannot parse {path}: {type(error).__name__}") from None
        if not selector or found is None or not found[2]:
            raise _SourceError(f"{path} has no password for machine {selector or '(none given)'}")
        return found[2]
    if name == ".pypirc" or (selector.count(".") == 1 and name.endswith((".ini", ".cfg"))):
        fallback = default_selector if default_selector.count(".") == 1 else "pypi.password"
        section, _, key = (selector or fallback).partition(".")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text)
            return parser.get(section, key).strip()
        except (configparser.Error, KeyError):
            raise _SourceError(f"{path} has no {key} in [{section}]") from None
    if selector:
        raise _SourceError(f"a #selector is not understood for {path.name}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise _SourceError(f"{path} should hold the secret alone on one line")
    return lines[0]


def _gh_hosts_token(text: str, host: str, path: Path) -> str:
    """`oauth_token` of `host` in gh's hosts.yml (the plain YAML subset gh writes)."""
    inside = False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.rstrip().rstrip(":").strip().strip("\"'") == host
            continue
        key, _, value = line.strip().partition(":")
        if inside and key == "oauth_token" and value.strip():
            return value.strip().strip("\"'")
    raise _SourceError(f"{path} has no oauth_token for {host} (gh may keep it in the keychain: use keyring:)")


def _from_keyring(rest: str) -> str:
    service, _, user = rest.partition(":")
    try:
        import keyring
        import keyring.errors

        if user:
            secret = keyring.get_password(service, user)
        else:
            found = keyring.get_credential(service, None)
            secret = found.password if found is not None else None
    except Exception as error:
        raise _SourceError(f"the keychain did not answer ({type(error).__name__})") from None
    if not secret:
        raise _SourceError(f"the keychain has nothing for {rest}")
    return secret


def read_secret(entry: CredentialEntry, environ: Mapping[str, str]) -> str:
    """The secret of `entry`, read in corral's own process; `_SourceError` says why not (never its value)."""
    kind, _, rest = entry.source.partition(":")
    if kind == "env":
        secret = environ.get(rest, "")
        if not secret:
            raise _SourceError(f"{rest} is not set in corral's environment")
    elif kind == "keyring":
        secret = _from_keyring(rest)
    else:
        path_text, _, selector = rest.partition("#")
        secret = _from_file(_expand(path_text, environ), selector, entry.file_selector)
    secret = secret.strip()
    if not secret or any(ch in secret for ch in "\r\n\0"):
        raise _SourceError("the secret is empty or spans lines")
    return secret


def resolve_credentials(
    entries: tuple[CredentialEntry, ...], environ: Mapping[str, str]
) -> ResolvedCredentials:
    """Read every entry's secret; an entry whose secret cannot be read is left out with a warning."""
    credentials: list[BrokeredCredential] = []
    fixed: dict[str, str] = {}
    warnings: list[str] = []
    for entry in entries:
        try:
            secret = read_secret(entry, environ)
        except _SourceError as error:
            warnings.append(f"credential '{entry.name}' is not brokered: {error}")
            continue
        placeholder = new_placeholder()
        env = entry.env
        kind, _, variable = entry.source.partition(":")
        if kind == "env" and variable not in env:
            env = (*env, variable)  # the source variable never carries the secret inside, whatever passes
        for route in entry.routes:
            credentials.append(
                BrokeredCredential(
                    entry.name,
                    route.hosts,
                    route.header,
                    route.scheme,
                    secret,
                    placeholder=placeholder,
                    env=env,
                    username=route.username,
                )
            )
        fixed.update(entry.fixed_env)
    return ResolvedCredentials(tuple(credentials), fixed, tuple(warnings))


def brokered_notices(project_hosts: Sequence[str], entries: Sequence[CredentialEntry]) -> list[str]:
    """One line per project host rule that would send requests to a host with a brokered credential
    (for the trust dialog and report: the project does not see the secret, but its commands use it)."""
    notices: list[str] = []
    for text in project_hosts:
        bare = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
        try:
            pattern = parse_pattern(bare)
        except HostError:
            continue
        for entry in entries:
            hosts = [host for host in entry.hosts if pattern.matches(host)]
            if hosts:
                notices.append(
                    f"{text}: commands would reach {', '.join(hosts)} with your brokered credential "
                    f"'{entry.name}' (added outside the sandbox; its value never enters)"
                )
    return notices
