"""Host normalisation and host rules: one canonical form for rules and requests (catalog D01-D08,
N04, N07, N10)."""

from __future__ import annotations

import pytest

from boundary.hostpatterns import parse_pattern
from boundary.hosts import HostError, canonical_host, describe_host, format_authority
from sandbox.egress.hostpolicy import (
    PRESETS,
    HostDecision,
    HostPolicy,
    PolicyError,
    exact_rule_for,
)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("GitHub.COM", "github.com"),
        ("github.com.", "github.com"),
        ("UPLOADS.GitHub.com", "uploads.github.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("[::FFFF:7f00:1]", "127.0.0.1"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("[FD00:EC2:0::254]", "fd00:ec2::254"),
        ("_dmarc.example.com", "_dmarc.example.com"),
    ],
)
def test_canonical_forms(raw: str, canonical: str) -> None:
    assert canonical_host(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "github.com..",
        ".github.com",
        "git hub.com",
        "github.com\x00.evil",
        "github.com\r\nX: y",
        "github.com\n",
        "user@github.com",
        "uploads%2egithub.com",
        "github.com/evil",
        "github.com\\evil",
        "github.com:443",
        "gіthub.com",  # Cyrillic і
        "github。com",  # U+3002
        "github．com",  # U+FF0E
        "ｇithub.com",  # fullwidth g
        "github.com\u200b",  # zero-width space
        "xn--gthub-n4d.com",  # not a valid A-label
        "xn--.com",
        "ab--cd.com",  # reserved hyphen position
        "1.2.3.999",
        "1.2.3.4.5",
        "example.123",
        "0x.0x.0x.0x.0x",
        "08.0.0.1",
        "[::1",
        "[fe80::1%eth0]",
        "fe80::1%25eth0",
        "[github.com]",
        "a" * 64 + ".com",
        ("a" * 60 + ".") * 5 + "com",
        "exa*mple.com",
    ],
)
def test_refused_before_matching(raw: str) -> None:
    with pytest.raises(HostError):
        canonical_host(raw)


def test_unicode_rule_suggests_its_ascii_form() -> None:
    with pytest.raises(HostError) as caught:
        canonical_host("bücher.example")
    assert caught.value.suggestion == "xn--bcher-kva.example"


def test_idna_names_are_shown_with_their_unicode_form() -> None:
    homoglyph = "xn--gthub-n2e.com"  # gіthub.com with a Cyrillic і
    assert canonical_host(homoglyph) == homoglyph
    shown = describe_host(homoglyph)
    assert homoglyph in shown and "<U+0456>" in shown
    assert describe_host("github.com") == "github.com"


def test_format_authority_brackets_ipv6() -> None:
    assert format_authority("::1", 443) == "[::1]:443"
    assert format_authority("example.com", 80) == "example.com:80"


def _policy(allow: list[str], deny: list[str] | None = None) -> HostPolicy:
    return HostPolicy.from_config(source="config.toml", allow=allow, deny=deny or [])


def test_d01_prefix_of_an_allowed_name_is_not_allowed() -> None:
    policy = _policy(["docs.python.org"])
    assert policy.match("docs.python.org") is HostDecision.ALLOW
    assert policy.match("docs.python.org.attacker.example") is HostDecision.UNKNOWN
    assert policy.match("xdocs.python.org") is HostDecision.UNKNOWN


def test_d04_case_and_percent_encoding_cannot_escape_a_deny() -> None:
    policy = _policy(["*.github.com"], deny=["uploads.github.com"])
    assert policy.match("UPLOADS.GitHub.com") is HostDecision.DENY
    assert policy.match("uploads.github.com.") is HostDecision.DENY
    assert policy.match("uploads%2egithub.com") is HostDecision.DENY
    assert policy.match("api.github.com") is HostDecision.ALLOW


@pytest.mark.parametrize("trick", ["gіthub.com", "github。com", "github．com", "xn--gthub-n2e.com"])
def test_d06_homoglyphs_and_unicode_dots_never_match(trick: str) -> None:
    policy = _policy(["github.com"])
    assert policy.match(trick) is not HostDecision.ALLOW


def test_d08_wildcard_boundaries() -> None:
    policy = _policy(["*.example.com"])
    assert policy.match("a.example.com") is HostDecision.ALLOW
    assert policy.match("a.b.example.com") is HostDecision.ALLOW
    assert policy.match("example.com") is HostDecision.UNKNOWN
    assert policy.match("example.com.attacker.net") is HostDecision.UNKNOWN
    assert policy.match("attacker-example.com") is HostDecision.UNKNOWN
    assert policy.match("attackerexample.com") is HostDecision.UNKNOWN


@pytest.mark.parametrize("pattern", ["example.*", "*example.com", "a.*.example.com", "**.example.com", "*"])
def test_d08_non_leading_or_partial_wildcards_are_refused(pattern: str) -> None:
    with pytest.raises(PolicyError, match=r"config\.toml: network\.allow\[0\]"):
        _policy([pattern])


@pytest.mark.parametrize(
    "pattern",
    ["*.com", "*.co.uk", "*.github.io", "*.githubusercontent.com", "*.s3.amazonaws.com", "*.xn--p1ai"],
)
def test_wildcards_over_public_suffixes_are_refused_naming_file_and_key(pattern: str) -> None:
    with pytest.raises(PolicyError) as caught:
        HostPolicy.from_config(source="/home/p/.config/corral/config.toml", deny=[pattern])
    message = str(caught.value)
    assert message.startswith("/home/p/.config/corral/config.toml: network.deny[0]:")
    assert "public suffix" in message or "'*'" in message


def test_wildcards_over_ip_addresses_are_refused() -> None:
    with pytest.raises(PolicyError, match="IP addresses"):
        _policy(["*.127.0.0.1"])


def test_bad_entries_name_file_and_key() -> None:
    with pytest.raises(PolicyError, match=r"^f\.toml: network\.allow\[1\]: non-ASCII .*xn--bcher-kva"):
        HostPolicy.from_config(source="f.toml", allow=["ok.example", "bücher.example"])
    with pytest.raises(PolicyError, match=r"^f\.toml: network\.allow: expected a list"):
        HostPolicy.from_config(source="f.toml", allow="github.com")
    with pytest.raises(PolicyError, match=r"^f\.toml: network\.allow\[0\]: expected a string"):
        HostPolicy.from_config(source="f.toml", allow=[42])  # type: ignore[list-item]
    with pytest.raises(PolicyError, match=r"^f\.toml: network\.presets: unknown preset"):
        HostPolicy.from_config(source="f.toml", presets=["everything"])
    with pytest.raises(PolicyError, match="ports"):
        HostPolicy.from_config(source="f.toml", allow=["github.com:443"])


def test_deny_beats_allow() -> None:
    policy = _policy(["*.example.com", "a.example.com"], deny=["a.example.com"])
    assert policy.match("a.example.com") is HostDecision.DENY
    assert policy.match("b.example.com") is HostDecision.ALLOW


@pytest.mark.parametrize("allow", [[], ()])
def test_n04_empty_allow_list_allows_nothing(allow: list[str]) -> None:
    policy = HostPolicy.from_config(source="config.toml", allow=allow)
    for host in ("example.com", "github.com", "127.0.0.1", "::1", "localhost"):
        assert policy.match(host) is HostDecision.UNKNOWN
    assert HostPolicy().match("example.com") is HostDecision.UNKNOWN


def test_patterns_use_the_same_normalisation_as_requests() -> None:
    policy = _policy(["GitHub.com.", "2130706433", "[::1]"])
    assert [str(pattern) for pattern in policy.allow] == ["github.com", "127.0.0.1", "::1"]
    assert policy.match("127.1") is HostDecision.ALLOW
    assert policy.match("::ffff:127.0.0.1") is HostDecision.ALLOW


def test_explicitly_allowed_addresses() -> None:
    import ipaddress

    policy = _policy(["127.0.0.1"], deny=["10.0.0.1"])
    assert policy.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert policy.allows_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not policy.allows_address(ipaddress.ip_address("127.0.0.2"))
    assert not policy.allows_address(ipaddress.ip_address("10.0.0.1"))


def test_n07_user_content_entries_warn() -> None:
    policy = _policy(
        ["*.azure.net", "huggingface.co", "*.amazonaws.com", "pypi.org", "acct.blob.core.windows.net"]
    )
    warned = "\n".join(policy.warnings)
    assert "*.azure.net" in warned
    assert "huggingface.co" in warned
    assert "*.amazonaws.com" in warned
    assert "acct.blob.core.windows.net" in warned
    assert "pypi.org" not in warned
    assert all(line.startswith("config.toml: network.allow: ") for line in policy.warnings)


def test_n07_presets_have_no_user_content_wildcards() -> None:
    for preset in PRESETS.values():
        for host in preset.hosts:
            pattern = parse_pattern(host)
            assert not pattern.subdomains, f"preset {preset.name} has wildcard {host}"


def test_presets_are_opt_in_and_named() -> None:
    assert HostPolicy.from_config(source="c").match("pypi.org") is HostDecision.UNKNOWN
    policy = HostPolicy.from_config(source="c", presets=["python", "github"])
    assert policy.match("files.pythonhosted.org") is HostDecision.ALLOW
    assert policy.match("objects.githubusercontent.com") is HostDecision.ALLOW
    assert policy.match("evil.githubusercontent.com") is HostDecision.UNKNOWN
    assert policy.match("gist.github.com") is HostDecision.UNKNOWN
    assert any("preset 'github'" in warning for warning in policy.warnings)


def test_n10_a_saved_rule_is_the_exact_host() -> None:
    rule = exact_rule_for("A.Attacker.Example.")
    assert rule == "a.attacker.example"
    policy = _policy([rule])
    assert policy.match("a.attacker.example") is HostDecision.ALLOW
    assert policy.match("b.attacker.example") is HostDecision.UNKNOWN
    assert policy.match("x.a.attacker.example") is HostDecision.UNKNOWN
