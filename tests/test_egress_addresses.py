"""Resolved-address checks (catalog N09): special addresses are refused unless allowed exactly."""

from __future__ import annotations

import ipaddress

import pytest

from sandbox.egress.addresses import refusal_reason, special_range


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("168.63.129.16", "metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a9fe:a9fe::1", "metadata"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a00:1", "private"),
        ("64:ff9b:1::1", "reserved"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("2001:db8::1", "documentation"),
        ("192.0.2.1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("fec0::1", "site-local"),
        ("4000::1", "outside global unicast"),
    ],
)
def test_special_addresses_are_named(address: str, expected: str) -> None:
    reason = special_range(ipaddress.ip_address(address))
    assert reason is not None and expected in reason


@pytest.mark.parametrize(
    "address", ["1.1.1.1", "93.184.215.14", "2606:4700::1111", "2002:101:101::1", "64:ff9b::101:101"]
)
def test_public_addresses_pass(address: str) -> None:
    assert special_range(ipaddress.ip_address(address)) is None
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_special_address_passes_only_when_that_exact_address_is_allowed() -> None:
    allowed = {ipaddress.ip_address("127.0.0.1")}
    loopback = ipaddress.ip_address("127.0.0.1")
    assert refusal_reason(loopback, allowed.__contains__) is None
    assert refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1"), allowed.__contains__) is None
    assert refusal_reason(ipaddress.ip_address("127.0.0.2"), allowed.__contains__) is not None
    assert refusal_reason(ipaddress.ip_address("::1"), allowed.__contains__) is not None
    reason = refusal_reason(loopback)
    assert reason is not None and "not explicitly allowed" in reason


def test_a_failing_allow_callback_refuses() -> None:
    def broken(address: object) -> bool:
        raise RuntimeError("boom")

    reason = refusal_reason(ipaddress.ip_address("10.0.0.1"), broken)
    assert reason is not None and "failed" in reason
