"""Brokered credentials: what the proxy puts into requests to a brokered host, and what it refuses.

A `BrokeredCredential` is one secret corral holds for some hosts, the header it goes in (with its
scheme), and the random placeholder the sandbox sees instead (in the environment variables tools read).
`CredentialBroker.rewrite_head` is applied to every request the proxy decrypted for a brokered host:

- the mapped header, when it carries this session's placeholder (bare, after any scheme word, or as
  the user or password of HTTP Basic), is replaced by the real value in the configured form. Nothing
  else is ever substituted: not the body, the URL or any other header;
- a credential that is not the session's own is refused (`CredentialRefused`): any value in the mapped
  header or in a known authentication header (`Authorization`, `X-Api-Key`, `Private-Token`, ...) that
  is not a placeholder, a known credential query parameter (`?access_token=`), and (`check_body`) the
  known fields of a JSON or form body. The refusal names the host and the header or field, never the
  value.

`Scrubber` masks the secret (and the exact header value sent) in what comes back, so a server that
echoes the request cannot hand the secret to the sandbox.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

KNOWN_AUTH_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"x-api-key",
        b"api-key",
        b"x-auth-token",
        b"x-access-token",
        b"private-token",
        b"job-token",
        b"deploy-token",
        b"x-goog-api-key",
        b"x-npm-token",
    }
)
"""Headers that carry a credential on some well-known API: on a brokered host each must be empty or
hold a placeholder of this session (or be the mapped header carrying it)."""

KNOWN_CREDENTIAL_FIELDS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "api-key",
        "auth_token",
        "token",
        "private_token",
        "client_secret",
        "password",
        "x-api-key",
    }
)
"""Query parameters and top-level JSON / form fields that carry a credential on well-known APIs."""

SCHEMES = ("bearer", "token", "basic", "none")
"""How a credential is written in its header: `Bearer <secret>`, `token <secret>`, HTTP Basic with a
user name (`Basic base64(user:secret)`), or the bare secret (`X-Api-Key: <secret>`)."""

PLACEHOLDER_PREFIX = "corral-placeholder-"


class CredentialRefused(Exception):
    """A request to a brokered host that carries a credential other than the session's own."""


def new_placeholder() -> str:
    """A fresh random placeholder (one per credential per session); it reveals nothing of the secret."""
    return PLACEHOLDER_PREFIX + secrets.token_hex(20)


@dataclass(frozen=True, slots=True)
class BrokeredCredential:
    """One secret held outside the sandbox. `hosts` are canonical names, reached on `port`."""

    name: str
    hosts: tuple[str, ...]
    header: str
    scheme: str
    secret: str = field(repr=False)
    placeholder: str = field(default_factory=new_placeholder)
    env: tuple[str, ...] = ()
    """Variables that hold the placeholder inside the sandbox (where tools look for the secret)."""
    username: str = ""
    """The user name of HTTP Basic (`scheme = "basic"`)."""
    port: int = 443

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r} (one of {', '.join(SCHEMES)})")
        if not self.secret or any(ch in self.secret for ch in "\r\n\0"):
            raise ValueError(f"credential {self.name}: the secret is empty or spans lines")

    @property
    def header_name(self) -> bytes:
        return self.header.lower().encode("ascii")

    def header_value(self) -> bytes:
        """The real header value, as the upstream receives it."""
        if self.scheme == "bearer":
            return b"Bearer " + self.secret.encode()
        if self.scheme == "token":
            return b"token " + self.secret.encode()
        if self.scheme == "basic":
            return b"Basic " + base64.b64encode(f"{self.username}:{self.secret}".encode())
        return self.secret.encode()

    def carries_placeholder(self, value: bytes) -> bool:
        """Whether a header value holds this credential's placeholder, in any usual form."""
        return credential_token(value) == self.placeholder


def credential_token(value: bytes) -> str:
    """The credential a header value carries: the bare value, the word after a scheme (`Bearer x`,
    `token x`), or for HTTP Basic the password (the user name when the password is empty)."""
    text = value.decode("latin-1").strip()
    scheme, _, rest = text.partition(" ")
    rest = rest.strip()
    if not rest:
        return text
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return rest
        user, _, password = decoded.partition(":")
        return password or user
    return rest


def _is_placeholder_only(value: str, placeholders: frozenset[str]) -> bool:
    return not value.strip() or value.strip() in placeholders


class CredentialBroker:
    """The session's brokered credentials, looked up by host; immutable once made."""

    def __init__(self, credentials: Iterable[BrokeredCredential]) -> None:
        self.credentials = tuple(credentials)
        self._by_host: dict[tuple[str, int], list[BrokeredCredential]] = {}
        for credential in self.credentials:
            for host in credential.hosts:
                self._by_host.setdefault((host, credential.port), []).append(credential)
        self._placeholders = frozenset(c.placeholder for c in self.credentials)

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every brokered host name, in order."""
        return tuple(dict.fromkeys(host for host, _ in self._by_host))

    def for_host(self, host: str, port: int) -> tuple[BrokeredCredential, ...]:
        return tuple(self._by_host.get((host, port), ()))

    def is_brokered(self, host: str, port: int | None = None) -> bool:
        if port is None:
            return any(h == host for h, _ in self._by_host)
        return (host, port) in self._by_host

    def placeholder_env(self) -> dict[str, str]:
        """The variables that hold placeholders inside the sandbox."""
        return {name: c.placeholder for c in self.credentials for name in c.env}

    def rewrite_head(
        self, host: str, port: int, target: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> tuple[list[tuple[bytes, bytes]], list[BrokeredCredential]]:
        """The headers to send upstream and the credentials put in; `CredentialRefused` if the request
        carries a credential that is not this session's own. Header names come lower-case (h11)."""
        mine = self.for_host(host, port)
        if not mine:
            return list(headers), []
        mapped: dict[bytes, list[BrokeredCredential]] = {}
        for each in mine:
            mapped.setdefault(each.header_name, []).append(each)
        used: list[BrokeredCredential] = []
        out: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            candidates = mapped.get(name, [])
            credential = next((c for c in candidates if c.carries_placeholder(value)), None)
            if credential is not None:
                if credential in used:
                    raise CredentialRefused(f"the {name.decode()} header is sent twice")
                out.append((credential.header.encode("ascii"), credential.header_value()))
                used.append(credential)
                continue
            if (candidates or name in KNOWN_AUTH_HEADERS) and not _is_placeholder_only(
                credential_token(value), self._placeholders
            ):
                raise CredentialRefused(
                    f"a credential that is not this session's own in the {name.decode()} header"
                )
            out.append((name, value))
        self._check_query(target)
        return out, used

    def _check_query(self, target: bytes) -> None:
        _, _, query = target.partition(b"?")
        if not query:
            return
        for key, value in urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if key.lower() in KNOWN_CREDENTIAL_FIELDS and not _is_placeholder_only(value, self._placeholders):
                raise CredentialRefused(f"a credential that is not this session's own in the URL ({key})")

    def check_body(self, content_type: str, body: bytes) -> None:
        """Refuse a JSON or form body whose known credential fields hold anything but a placeholder."""
        kind = content_type.split(";", 1)[0].strip().lower()
        fields: list[tuple[str, object]] = []
        if kind == "application/x-www-form-urlencoded":
            fields = list(urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        elif body.strip() and ("json" in kind or (not kind and body.lstrip()[:1] in (b"{", b"["))):
            # Every key/value pair as sent, duplicates included: a parser upstream may keep the first of
            # two `token` keys where Python keeps the last. A body that does not parse is refused, not
            # passed unchecked (an upstream parser may be more lenient than this one).
            built: list[tuple[list[tuple[str, object]], dict[str, object]]] = []

            def keep_pairs(items: list[tuple[str, object]]) -> dict[str, object]:
                made = dict(items)
                built.append((items, made))
                return made

            try:
                document = json.loads(body, object_pairs_hook=keep_pairs)
            except (ValueError, UnicodeDecodeError) as error:
                raise CredentialRefused("a JSON body that cannot be checked for credentials") from error
            tops = document if isinstance(document, list) else [document]
            top_ids = {id(item) for item in tops if isinstance(item, dict)}
            fields = [pair for items, made in built if id(made) in top_ids for pair in items]
        for key, value in fields:
            if key.lower() not in KNOWN_CREDENTIAL_FIELDS:
                continue
            if isinstance(value, str) and _is_placeholder_only(value, self._placeholders):
                continue
            if value is None:
                continue
            raise CredentialRefused(f"a credential that is not this session's own in the body ({key})")

    def secrets_for(self, host: str, port: int) -> list[bytes]:
        """The byte strings to mask in responses from this host: each secret and each header value."""
        found: list[bytes] = []
        for credential in self.for_host(host, port):
            found += [credential.secret.encode(), credential.header_value()]
        return sorted(set(found), key=len, reverse=True)


class Scrubber:
    """Masks `secrets` in a stream of chunks with same-length stars, so framing stays exact.

    It holds back the last ``len(longest) - 1`` bytes of each chunk until the next one (or `flush`), so
    a secret split across two chunks is masked too."""

    def __init__(self, secrets_: Sequence[bytes]) -> None:
        self._secrets = [s for s in secrets_ if s]
        self._keep = max((len(s) for s in self._secrets), default=1) - 1
        self._pending = b""

    def mask(self, data: bytes) -> bytes:
        for secret in self._secrets:
            data = data.replace(secret, b"*" * len(secret))
        return data

    def feed(self, chunk: bytes) -> bytes:
        data = self.mask(self._pending + chunk)
        if self._keep <= 0:
            self._pending = b""
            return data
        cut = max(len(data) - self._keep, 0)
        self._pending = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        data, self._pending = self.mask(self._pending), b""
        return data
