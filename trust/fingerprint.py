"""One fingerprint over every trust-relevant file of a project.

The fingerprint is a SHA-256 over the sorted list of (path, digest) pairs of the fingerprinted files and
the tree-level problems of a discovery, each field length-prefixed so no two different lists can encode
to the same bytes. Any changed byte, added file, removed file, re-pointed symlink or new problem changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from trust.discovery import Discovery

FINGERPRINT_FORMAT = b"corral-trust-fingerprint-v1"


def _field(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    return len(raw).to_bytes(8, "big") + raw


def fingerprint_entries(entries: Iterable[tuple[str, str]], problems: Iterable[str] = ()) -> str:
    """The hex fingerprint of (path, digest) pairs and tree-level problems (order does not matter)."""
    hasher = hashlib.sha256(FINGERPRINT_FORMAT)
    for path, digest in sorted(entries, key=lambda pair: pair[0].encode("utf-8", "surrogateescape")):
        hasher.update(b"F" + _field(path) + _field(digest))
    for problem in sorted(problems):
        hasher.update(b"P" + _field(problem))
    return hasher.hexdigest()


def fingerprint(discovery: Discovery) -> str:
    """The fingerprint of a discovery: its fingerprinted files and its tree-level problems."""
    return fingerprint_entries(
        ((f.path, f.fingerprint_digest) for f in discovery.fingerprinted_files), discovery.tree_problems
    )
