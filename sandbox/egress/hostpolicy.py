"""Host rules: patterns, allow and deny lists, and the named presets.

A pattern is either an exact host (``pypi.org``, ``127.0.0.1``) or ``*.`` followed by a domain
(``*.example.com``), which matches every subdomain of that domain and never the domain itself. Both
go through the same `canonical_host` as the requests they are matched against. A ``*`` anywhere else,
a wildcard over an IP address, and a wildcard over a public suffix (``*``, ``*.com``, ``*.co.uk``,
``*.github.io``: anything the Public Suffix List says anyone can register under) are refused when the
rules are loaded, with an error that names the file and key.

Deny beats allow. An empty allow list allows nothing: every host then needs a decision.

Allowing a host on which anyone can publish (a forge, a cloud storage or hosting domain, a model hub)
lets a sandboxed command send data to anyone who publishes there. Such entries load, with a warning.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import publicsuffixlist

from sandbox.egress.hosts import HostError, IPAddress, canonical_address, canonical_host, ip_of, visible


class PolicyError(ValueError):
    """A host rule that cannot be loaded; the message names the file and key."""


class HostDecision(enum.StrEnum):
    """What the rules say about a host."""

    ALLOW = "allow"
    DENY = "deny"
    UNKNOWN = "unknown"
    """No rule matches: the person is asked (or, without an answer, the connection is refused)."""


# Domains on which anyone can publish content or run a server. Allowing one of them, or a wildcard
# under one, opens a channel to whoever controls that content.
USER_CONTENT_DOMAINS: frozenset[str] = frozenset(
    {
        "githubusercontent.com",
        "github.io",
        "gist.github.com",
        "uploads.github.com",
        "gitlab.io",
        "bitbucket.io",
        "amazonaws.com",
        "cloudfront.net",
        "windows.net",
        "azure.net",
        "azurewebsites.net",
        "azureedge.net",
        "cloudapp.azure.com",
        "appspot.com",
        "googleusercontent.com",
        "storage.googleapis.com",
        "firebaseapp.com",
        "web.app",
        "herokuapp.com",
        "vercel.app",
        "netlify.app",
        "pages.dev",
        "workers.dev",
        "r2.dev",
        "trycloudflare.com",
        "ngrok.io",
        "ngrok-free.app",
        "nip.io",
        "sslip.io",
        "huggingface.co",
        "hf.co",
        "pastebin.com",
        "webhook.site",
        "glitch.me",
        "replit.app",
    }
)


@dataclass(frozen=True, slots=True)
class HostPattern:
    """One canonical rule: an exact host, or every subdomain of `domain` when `subdomains` is set."""

    domain: str
    subdomains: bool = False

    def matches(self, host: str) -> bool:
        """Whether the canonical `host` matches this pattern (exact labels, no prefix tricks)."""
        if self.subdomains:
            return host.endswith("." + self.domain)
        return host == self.domain

    def __str__(self) -> str:
        return f"*.{self.domain}" if self.subdomains else self.domain


@functools.cache
def _public_suffix_list() -> publicsuffixlist.PublicSuffixList:
    return publicsuffixlist.PublicSuffixList()


@functools.cache
def _parents_of_public_suffixes() -> frozenset[str]:
    """Every domain that has a public suffix strictly beneath it (``amazonaws.com``, ``azure.net``...)."""
    parents: set[str] = set()
    with open(publicsuffixlist.PSLFILE, encoding="utf-8") as source:
        for line in source:
            rule = line.strip().lstrip("*!.").lower()
            if not rule or rule.startswith("//") or not rule.isascii():
                continue
            labels = rule.split(".")
            for start in range(1, len(labels)):
                parents.add(".".join(labels[start:]))
    return frozenset(parents)


def is_public_suffix(domain: str) -> bool:
    """Whether anyone can register names directly under the canonical `domain` (``com``, ``github.io``)."""
    return "." not in domain or bool(_public_suffix_list().is_public(domain))


def parse_pattern(text: str) -> HostPattern:
    """Parse one rule into a canonical `HostPattern`, or raise `HostError` saying what is wrong."""
    if text.strip() != text:
        raise HostError(f"surrounding spaces in {visible(text)}")
    if text.startswith("*."):
        body, subdomains = text[2:], True
    else:
        body, subdomains = text, False
    if "*" in body:
        raise HostError(
            f"{visible(text)}: '*' is only allowed as a whole first label ('*.example.com'), "
            "and a lone '*' is never allowed"
        )
    if ":" in body and not body.startswith("[") and body.count(":") == 1:
        raise HostError(f"{visible(text)}: host rules name hosts, not ports")
    domain = canonical_host(body)
    if subdomains:
        if ip_of(domain) is not None:
            raise HostError(f"{visible(text)}: wildcards over IP addresses are not allowed")
        if is_public_suffix(domain):
            raise HostError(
                f"{visible(text)}: '{domain}' is a public suffix, so this wildcard matches hosts "
                "anyone can register"
            )
    return HostPattern(domain, subdomains)


def user_content_warning(pattern: HostPattern) -> str | None:
    """A warning when `pattern` reaches hosts on which anyone can publish, else None."""
    labels = pattern.domain.split(".")
    for start in range(len(labels)):
        suffix = ".".join(labels[start:])
        if suffix in USER_CONTENT_DOMAINS:
            return (
                f"'{pattern}' reaches user content on '{suffix}': anyone can publish there, so a "
                "sandboxed command could send data to them"
            )
    if pattern.subdomains and pattern.domain in _parents_of_public_suffixes():
        return (
            f"'{pattern}' covers domains that the Public Suffix List marks as open for anyone to "
            "register under: anyone could receive data sent there"
        )
    return None


@dataclass(frozen=True, slots=True)
class Preset:
    """A named, opt-in set of hosts for a common registry or forge."""

    name: str
    hosts: tuple[str, ...]
    caveat: str = ""


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("python", ("pypi.org", "files.pythonhosted.org")),
        Preset("npm", ("registry.npmjs.org",)),
        Preset(
            "github",
            ("github.com", "api.github.com", "codeload.github.com", "objects.githubusercontent.com"),
            caveat=(
                "github.com and api.github.com accept pushes, gists and issues to any account, including "
                "an attacker's: the github preset lets a sandboxed command publish what it can read"
            ),
        ),
        Preset("crates", ("crates.io", "index.crates.io", "static.crates.io")),
        Preset("go", ("proxy.golang.org", "sum.golang.org")),
    )
}


@dataclass(slots=True)
class HostPolicy:
    """Allow and deny lists of canonical patterns; deny beats allow, nothing listed means unknown.

    `warnings` holds one line for every allowed entry that reaches user content, and the caveat of
    every preset that has one.
    """

    allow: list[HostPattern] = field(default_factory=list)
    deny: list[HostPattern] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_config(
        cls,
        *,
        source: str,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        presets: Iterable[str] = (),
        allow_key: str = "network.allow",
        deny_key: str = "network.deny",
        presets_key: str = "network.presets",
    ) -> HostPolicy:
        """Build a policy from config lists; any bad entry raises `PolicyError` naming file and key."""
        policy = cls()
        policy.extend(
            source=source,
            allow=allow,
            deny=deny,
            presets=presets,
            allow_key=allow_key,
            deny_key=deny_key,
            presets_key=presets_key,
        )
        return policy

    def extend(
        self,
        *,
        source: str,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        presets: Iterable[str] = (),
        allow_key: str = "network.allow",
        deny_key: str = "network.deny",
        presets_key: str = "network.presets",
    ) -> None:
        """Add entries from another source (a project file after trust, ``--allow-host`` ...)."""
        new_allow = _parse_list(allow, source, allow_key)
        new_deny = _parse_list(deny, source, deny_key)
        for pattern in new_allow:
            warning = user_content_warning(pattern)
            if warning:
                self.warnings.append(f"{source}: {allow_key}: {warning}")
        for name in _check_strings(presets, source, presets_key):
            preset = PRESETS.get(name)
            if preset is None:
                known = ", ".join(sorted(PRESETS))
                raise PolicyError(f"{source}: {presets_key}: unknown preset {visible(name)} (known: {known})")
            new_allow.extend(parse_pattern(host) for host in preset.hosts)
            if preset.caveat:
                self.warnings.append(f"{source}: {presets_key}: preset '{name}': {preset.caveat}")
        self.allow.extend(new_allow)
        self.deny.extend(new_deny)

    def match(self, host: str) -> HostDecision:
        """Decide for a raw or canonical host; a host that fails normalisation is denied."""
        try:
            canonical = canonical_host(host)
        except HostError:
            return HostDecision.DENY
        if any(pattern.matches(canonical) for pattern in self.deny):
            return HostDecision.DENY
        if any(pattern.matches(canonical) for pattern in self.allow):
            return HostDecision.ALLOW
        return HostDecision.UNKNOWN

    def allows_address(self, address: IPAddress) -> bool:
        """Whether `address` itself is on the allow list (and not denied): the explicit opt-in that lets
        an allowed name reach a loopback, private or other special address."""
        text = str(canonical_address(address))
        return self.match(text) is HostDecision.ALLOW


def exact_rule_for(host: str) -> str:
    """The rule to save when a person allows `host` for good: the exact canonical host, never a wildcard."""
    return canonical_host(host)


def _check_strings(values: Iterable[str], source: str, key: str) -> list[str]:
    if isinstance(values, str):
        raise PolicyError(f"{source}: {key}: expected a list of strings, got a string")
    checked: list[str] = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise PolicyError(f"{source}: {key}[{index}]: expected a string, got {type(value).__name__}")
        checked.append(value)
    return checked


def _parse_list(values: Iterable[str], source: str, key: str) -> list[HostPattern]:
    patterns: list[HostPattern] = []
    for index, value in enumerate(_check_strings(values, source, key)):
        try:
            patterns.append(parse_pattern(value))
        except HostError as error:
            hint = f" (write '{error.suggestion}')" if error.suggestion else ""
            raise PolicyError(f"{source}: {key}[{index}]: {error}{hint}") from None
    return patterns


def describe_patterns(patterns: Sequence[HostPattern]) -> list[str]:
    """The patterns as a person would write them."""
    return [str(pattern) for pattern in patterns]
