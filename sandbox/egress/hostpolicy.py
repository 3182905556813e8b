"""Host rules: allow and deny lists of host patterns, and the named presets.

Patterns (`boundary.hostpatterns`) and host names (`boundary.hosts`) are normalised by the shared leaf
package, so the proxy matches a request against exactly what the config or a person wrote; a bad entry
is refused when the rules are loaded, with an error that names the file and key.

Deny beats allow. An empty allow list allows nothing: every host then needs a decision.

Allowing a host on which anyone can publish (a forge, a cloud storage or hosting domain, a model hub)
lets a sandboxed command send data to anyone who publishes there. Such entries load, with a warning.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from boundary.hostpatterns import HostPattern, parse_pattern, user_content_warning
from boundary.hosts import HostError, IPAddress, canonical_address, canonical_host, visible


class PolicyError(ValueError):
    """A host rule that cannot be loaded; the message names the file and key."""


class HostDecision(enum.StrEnum):
    """What the rules say about a host."""

    ALLOW = "allow"
    DENY = "deny"
    UNKNOWN = "unknown"
    """No rule matches: the person is asked (or, without an answer, the connection is refused)."""


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
