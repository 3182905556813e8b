"""Host patterns: an exact host or every subdomain of a domain, checked once when a rule is read.

A pattern is an exact host (``pypi.org``, ``127.0.0.1``), ``*.`` followed by a domain
(``*.example.com``), which matches every subdomain of that domain and never the domain itself, or an
address range in CIDR form (``10.0.0.0/8``, ``fd00::/8``), which matches every address in it (and no
name: a name is judged by the addresses it resolves to, see `sandbox.egress.addresses`). Both
go through the same `canonical_host` as the requests they are matched against. A ``*`` anywhere else,
a wildcard over an IP address, and a wildcard over a public suffix (``*``, ``*.com``, ``*.co.uk``,
``*.github.io``: anything the Public Suffix List says anyone can register under) are refused.

Allowing a host on which anyone can publish (a forge, a cloud storage or hosting domain, a model hub)
lets a sandboxed command send data to anyone who publishes there: `user_content_warning` says so.

The sandbox's proxy (`sandbox.egress.hostpolicy`) and the project config loader (`trust.config`) both
read patterns through this module, so a rule means the same thing wherever it is written.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

import publicsuffixlist

from boundary.hosts import HostError, canonical_host, ip_of, visible

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
        network = self.network
        if network is not None:
            address = ip_of(host)
            return address is not None and address.version == network.version and address in network
        if self.subdomains:
            return host.endswith("." + self.domain)
        return host == self.domain

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        """The address range of a CIDR pattern, else None."""
        return _network(self.domain) if "/" in self.domain else None

    def __str__(self) -> str:
        return f"*.{self.domain}" if self.subdomains else self.domain


@functools.cache
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR range (``10.0.0.0/24``, ``fd00::/8``) in canonical form, or `HostError` saying what is wrong."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise HostError(f"{visible(text)} is not an address range ({error})") from None
        raise HostError(f"{visible(text)} has host bits set", suggestion=str(loose)) from None


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
    if "/" in text and not text.startswith("*"):
        return HostPattern(str(parse_network(text)))
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
