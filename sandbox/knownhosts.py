"""Which of some (host, port) destinations an OpenSSH known_hosts file gives a host key to.

The lines ssh itself writes and reads: `host`, `[host]:port` (a port other than 22), comma lists,
`*`/`?` wildcards, `!` negations and hashed names (`|1|salt|hmac-sha1`). `@cert-authority` lines are not
used (a host certificate is not a host key); a key marked `@revoked` matches nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024


def ssh_name(host: str, port: int) -> str:
    """How ssh names a destination in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


def _pattern_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            _, _, salt, digest = pattern.split("|", 3)
            key = base64.b64decode(salt, validate=True)
            expected = base64.b64decode(digest, validate=True)
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(hmac.new(key, name.encode(), hashlib.sha1).digest(), expected)
    # ssh's wildcards are `*` and `?` only (`[host]:port` brackets are literal).
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern.lower())
    return re.fullmatch(regex, name.lower(), re.DOTALL) is not None


def _line_matches(patterns: str, name: str) -> bool:
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if _pattern_matches(pattern[1:], name):
                return False
        elif _pattern_matches(pattern, name):
            matched = True
    return matched


def host_with_key(text: str, key: bytes, destinations: Iterable[tuple[str, int]]) -> str | None:
    """The first destination whose known_hosts entry is `key` (wire blob), as ssh names it."""
    names = [ssh_name(host, port) for host, port in destinations]
    lines: list[tuple[str, bytes, bool]] = []
    for raw in text.splitlines():
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        revoked = False
        if fields[0].startswith("@"):
            if fields[0] != "@revoked":
                continue
            revoked = True
            fields = fields[1:]
        if len(fields) < 3:
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except (ValueError, binascii.Error):
            continue
        if blob == key:
            lines.append((fields[0], blob, revoked))
    if any(revoked for _, _, revoked in lines):
        return None
    for name in names:
        if any(_line_matches(patterns, name) for patterns, _, _ in lines):
            return name
    return None


def read_known_hosts(paths: Iterable[Path]) -> str:
    """The text of the known_hosts files that exist (each bounded; unreadable ones are skipped)."""
    texts: list[str] = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                texts.append(handle.read(MAX_BYTES).decode("utf-8", "replace"))
        except OSError:
            continue
    return "\n".join(texts)
