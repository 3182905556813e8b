"""Issue 13 item 2: allowing an address or an address range (CIDR) — in your config, as a project rule —
is documented syntax that works; the denial line names the reason and the rule that fixes it; DNS
answers are placeholders that map back to names."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest

from boundary.hostpatterns import parse_pattern
from boundary.hosts import HostError
from boundary.violations import Violation, ViolationKind
from corral.decision import DENY
from corral.denials import allow_command, denial_lines
from corral.rules import RuleError, RuleStore
from sandbox.egress.addresses import refusal_reason, refused_addresses
from sandbox.egress.dns import DnsResponder
from sandbox.egress.hostpolicy import HostPolicy
from sandbox.egress.names import POOL, NamePool
from trust.config import ConfigError, parse_project_config


def test_a_cidr_pattern_matches_addresses_in_the_range_only() -> None:
    pattern = parse_pattern("10.0.0.0/24")
    assert pattern.matches("10.0.0.7") and not pattern.matches("10.0.1.7")
    assert not pattern.matches("ten.example")
    assert parse_pattern("fd00::/8").matches("fd12::1") and not parse_pattern("fd00::/8").matches("10.0.0.1")


def test_a_cidr_with_host_bits_is_refused_with_the_range_to_write() -> None:
    with pytest.raises(HostError) as caught:
        parse_pattern("10.0.0.5/24")
    assert caught.value.suggestion == "10.0.0.0/24"


def test_user_config_allows_an_address_range_for_resolved_addresses() -> None:
    policy = HostPolicy.from_config(source="config.toml", allow=["10.0.0.0/8"])
    assert policy.allows_address(ipaddress.ip_address("10.20.30.40"))
    assert not policy.allows_address(ipaddress.ip_address("192.168.0.1"))


def test_a_project_may_not_allow_an_address_range(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / ".corral").mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        parse_project_config(b'[network]\nallow = ["10.0.0.0/8"]\n', root)
    assert "IP addresses" in str(caught.value)


def test_rules_for_an_address_and_a_range(tmp_path: Path) -> None:
    store = RuleStore.open(tmp_path / "rules.db")
    project = tmp_path / "proj"
    project.mkdir()
    store.add(project, ViolationKind.NET, "192.168.1.0/24")
    store.add(project, ViolationKind.NET, "10.9.9.9")
    assert store.allows_address(project, ipaddress.ip_address("192.168.1.77"))
    assert store.allows_address(project, ipaddress.ip_address("10.9.9.9"))
    assert not store.allows_address(project, ipaddress.ip_address("10.9.9.8"))
    connect = Violation(ViolationKind.NET, "192.168.1.77:22", "connect", "new host")
    assert store.matching(project, [connect])
    with pytest.raises(RuleError):
        store.add(project, ViolationKind.NET, "192.168.1.1/24")


def test_the_denial_line_names_the_reason_and_a_rule_per_refused_address(tmp_path: Path) -> None:
    reason = "db.example resolves to " + "; ".join(
        refusal_reason(ipaddress.ip_address(text)) or "" for text in ("127.0.0.1", "10.1.2.3")
    )
    assert refused_addresses(reason) == ["127.0.0.1", "10.1.2.3"]
    violation = Violation(ViolationKind.NET, "db.example:5432", "connect", reason)
    [line] = denial_lines(tmp_path, {violation: DENY}, cwd=str(tmp_path))
    assert "(db.example resolves to 127.0.0.1 is loopback and not explicitly allowed;" in line
    assert allow_command(tmp_path, violation, cwd=str(tmp_path)) == (
        "corral rules add --project . --host 127.0.0.1 && corral rules add --project . --host 10.1.2.3"
    )


def test_a_plain_denial_suggests_the_host_on_any_port(tmp_path: Path) -> None:
    violation = Violation(ViolationKind.NET, "api.example.com:8443", "connect", "denied")
    assert allow_command(tmp_path, violation, cwd=str(tmp_path)) == (
        "corral rules add --project . --host api.example.com"
    )


def test_dns_answers_a_placeholder_that_maps_back_to_the_name() -> None:
    seen: list[tuple[str, str]] = []
    responder = DnsResponder(NamePool(), on_lookup=lambda name, qtype: seen.append((name, qtype)))
    reply = dns.message.from_wire(
        responder.answer(dns.message.make_query("GitHub.com.", "A").to_wire()) or b""
    )
    [rrset] = reply.answer
    address = ipaddress.ip_address(next(iter(rrset)).to_text())
    assert address in POOL and responder.pool.name_for(address) == "github.com"
    empty = dns.message.from_wire(
        responder.answer(dns.message.make_query("github.com", "AAAA").to_wire()) or b""
    )
    assert empty.answer == [] and empty.rcode() == 0
    assert seen == [("github.com", "A"), ("github.com", "AAAA")]
    assert responder.answer(b"not dns") is None
    query = dns.message.make_query("localhost", dns.rdatatype.A).to_wire()
    local = dns.message.from_wire(responder.answer(query) or b"")
    assert next(iter(local.answer[0])).to_text() == "127.0.0.1"
