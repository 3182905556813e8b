"""Package registries' settings are visible to pip and npm; their credentials never are.

`~/.npmrc` and pip's config files name the registry or index a person installs from (a company mirror,
a scoped registry), its CA certificate and its tokens, side by side. Hiding the file breaks the mirror
(npm and pip silently go to the public registry, or fail), showing it shows the tokens. So the sandbox
shows a filtered copy (the `boundary.table` `FILTERED` rows, and the file `PIP_CONFIG_FILE` names when it
lies in a home), made from the real file for each command:

- npm (`.npmrc`): every `key=value` line is kept except per-registry keys (`//host/:_authToken`,
  `:_auth`, `:_password`, `:username`, `:email`, `:certfile`, `:keyfile`, ...: npm keeps all of a
  registry's credentials under `//`), keys that name a credential (`_auth*`, `*token*`, `*password*`,
  `*secret*`, `username`, `email`, `otp`, inline `key`/`cert`) and proxy settings (the sandbox has its
  own proxy; a proxy URL can carry a password);
- pip (INI): the same rule per option (`client-cert`, `proxy`, any option naming a password, token or
  secret dropped);
- in what is kept, a URL's user information (`https://user:token@host/`) is removed.

`filter_config` says whether anything was withheld: a read of a copy that withheld something is
reported like a decoy's (the command did not get what it read), one of a copy that withheld nothing is
not (reading a file that holds no secret never turns a success into 77). A file that cannot be parsed
is shown empty, as withholding everything.

`registry_env` is the same rule for the environment: `PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`,
`NPM_CONFIG_REGISTRY`, the CA-bundle variables, ... pass when they carry no credentials.
"""

from __future__ import annotations

import configparser
import io
import os
import re
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 256 * 1024
"""A registry config larger than this is shown empty (withheld)."""

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s]*@")
_SECRET_WORDS = ("auth", "token", "password", "passwd", "secret", "credential", "otp")
_NPM_DROPPED = frozenset({"username", "email", "key", "cert", "certfile", "keyfile", "proxy", "https-proxy",
                          "http-proxy", "noproxy"})  # fmt: skip
_PIP_DROPPED = frozenset({"client-cert", "proxy", "keyring-provider"})

REGISTRY_ENV: tuple[str, ...] = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_CERT",
    "PIP_CONFIG_FILE",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "NPM_CONFIG_CAFILE",
    "npm_config_cafile",
    "YARN_NPM_REGISTRY_SERVER",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)
"""Registry and certificate variables passed into the sandbox when their value holds no credential."""


@dataclass(frozen=True, slots=True)
class Filtered:
    """A registry config as the sandbox shows it."""

    text: str
    withheld: tuple[str, ...]
    """What was left out: key names (never values), `user information in URLs`, or `the whole file`."""


def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _strip_userinfo(value: str) -> tuple[str, bool]:
    stripped = _USERINFO.sub(r"\1", value)
    return stripped, stripped != value


def filter_npmrc(text: str) -> Filtered:
    kept: list[str] = []
    withheld: list[str] = []
    for line in text.splitlines():
        body = line.strip()
        if not body or body.startswith(("#", ";")):
            kept.append(line)
            continue
        key, sep, value = body.partition("=")
        key = key.strip()
        if not sep:
            withheld.append(key[:40] or "a line")
            continue
        name = key.rsplit(":", 1)[-1] if key.startswith("//") or key.startswith("@") else key
        if key.startswith("//") or _secret_key(name) or name.lower() in _NPM_DROPPED:
            withheld.append(key)
            continue
        value, had_userinfo = _strip_userinfo(value.strip())
        if had_userinfo:
            withheld.append(f"{key} (user information in a URL)")
        kept.append(f"{key}={value}")
    return Filtered("\n".join(kept) + "\n" if kept else "", tuple(withheld))


def filter_pip_conf(text: str) -> Filtered:
    parser = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=", ":"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error:
        return Filtered("", ("the whole file (it could not be parsed)",))
    withheld: list[str] = []
    out = configparser.RawConfigParser(interpolation=None)
    out.optionxform = str  # type: ignore[assignment,method-assign]
    for section in parser.sections():
        out.add_section(section)
        for key, value in parser.items(section, raw=True):
            if _secret_key(key) or key.lower().replace("_", "-") in _PIP_DROPPED:
                withheld.append(f"{section}.{key}")
                continue
            value, had_userinfo = _strip_userinfo(value)
            if had_userinfo:
                withheld.append(f"{section}.{key} (user information in a URL)")
            out.set(section, key, value)
    buffer = io.StringIO()
    out.write(buffer)
    return Filtered(buffer.getvalue(), tuple(withheld))


def filter_config(path: Path, data: bytes) -> Filtered:
    """The view of the registry config `path` whose content is `data`."""
    if len(data) > MAX_BYTES:
        return Filtered("", ("the whole file (too large)",))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Filtered("", ("the whole file (not UTF-8)",))
    if path.name == ".npmrc" or path.name == "npmrc":
        return filter_npmrc(text)
    return filter_pip_conf(text)


def registry_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The registry and certificate variables of `environ` that hold no credential."""
    passed: dict[str, str] = {}
    for name in REGISTRY_ENV:
        value = environ.get(name)
        if value is None or "\n" in value or "\0" in value:
            continue
        if _strip_userinfo(value)[1]:
            continue
        passed[name] = value
    return passed


def _read_real(path: Path) -> bytes | None:
    """The real file's bytes (no link followed, regular files only, bounded), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    return data


def build_views(paths: Sequence[Path], run_dir: Path) -> list[tuple[Path, Path, bool]]:
    """Write the filtered copy of each registry config in `paths` under `run_dir/views` (made afresh
    for every run). Returns (view file, real path, whether it withheld anything)."""
    root = run_dir / "views"
    if os.path.lexists(root):
        for directory, _dirs, _files in os.walk(root):
            os.chmod(directory, 0o700)
        shutil.rmtree(root)
    if not paths:
        return []
    root.mkdir(mode=0o700)
    views: list[tuple[Path, Path, bool]] = []
    for index, real in enumerate(paths):
        data = _read_real(real)
        if data is None:
            continue
        filtered = filter_config(real, data)
        view = root / f"v{index}"
        fd = os.open(view, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, filtered.text.encode())
        finally:
            os.close(fd)
        os.chmod(view, 0o444)
        views.append((view, real, bool(filtered.withheld)))
    return views
