"""One normalisation for every host name corral sees: in rules, in requests, in prompts.

A host is either a domain name or an IP literal. `canonical_host` turns what a client or a config file
wrote into one canonical string, or raises `HostError` before anything is matched or looked up:

- Domain names are ASCII only. Letters are lower-cased, one trailing dot is dropped, each label is
  1-63 characters of ``a-z 0-9 - _``, the whole name at most 253 characters. A label that starts with
  ``xn--`` must be a valid IDNA A-label in its canonical form; the person sees its Unicode form through
  `describe_host`.
- Non-ASCII input is refused, never mapped. On the wire (CONNECT line, request target, Host header,
  SOCKS5 domain) a name is ASCII by definition; a client that sends ``github。com`` (U+3002),
  ``github．com`` (U+FF0E) or ``gіthub.com`` (Cyrillic і) is doing something odd, and refusing it
  means no Unicode trick can ever match a rule. A person who writes a Unicode name in a config file is
  told the A-label to write instead (`HostError.suggestion`).
- IPv4 literals in any form a resolver accepts (``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
  ``127.1``) become dotted decimal; IPv6 literals (bracketed or not) become their compressed form, and
  an IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) becomes the IPv4 address it maps. A name whose
  last label is numeric must be a valid IPv4 literal (as the WHATWG URL standard says), so
  ``1.2.3.999`` is refused rather than looked up as a name.
- NUL, CR, LF, spaces, ``@``, ``%`` (percent-encoding or IPv6 zone), ``/``, ``\\``, ``:`` outside
  IPv6 literals and every other character no host name has are refused.
"""

from __future__ import annotations

import ipaddress
import re
import string

import idna

from boundary import termsafe

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63

_LABEL_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-_")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_IPV6_CHARACTERS = frozenset(string.hexdigits + ":.")


class HostError(ValueError):
    """A host name that corral refuses before any matching or lookup.

    `suggestion` is set when the input was a readable Unicode name: the ASCII form to write instead.
    """

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


def visible(text: str) -> str:
    """Return `text` quoted, every control and every non-ASCII character shown as a label.

    Used wherever an untrusted host name is shown to a person, so nothing unusual can hide (a homograph
    cannot pass for the ASCII name). The escaping is the one escaping function's.
    """
    return "'" + termsafe.visible(text, one_line=True, ascii_only=True) + "'"


def canonical_host(raw: str) -> str:
    """Return the canonical form of the host name or IP literal `raw`, or raise `HostError`."""
    if not isinstance(raw, str):
        raise HostError("host name is not text")
    if raw == "":
        raise HostError("empty host name")
    if not raw.isascii():
        raise HostError(f"non-ASCII host name {visible(raw)}", _ascii_suggestion(raw))
    if raw.startswith("[") or raw.endswith("]"):
        if not (raw.startswith("[") and raw.endswith("]")):
            raise HostError(f"unbalanced brackets in host {visible(raw)}")
        return _canonical_ipv6(raw[1:-1], raw)
    if ":" in raw:
        return _canonical_ipv6(raw, raw)
    name = raw.lower()
    if name.endswith("."):
        name = name[:-1]
    if name == "":
        raise HostError(f"empty host name {visible(raw)}")
    labels = name.split(".")
    for label in labels:
        _check_label(label, raw)
    if _NUMERIC_LABEL.match(labels[-1]):
        ipv4 = parse_ipv4_number_forms(name)
        if ipv4 is None:
            raise HostError(f"malformed IPv4 address {visible(raw)}")
        return str(ipv4)
    if len(name) > MAX_NAME_LENGTH:
        raise HostError(f"host name longer than {MAX_NAME_LENGTH} characters")
    return name


def _check_label(label: str, raw: str) -> None:
    if label == "":
        raise HostError(f"empty label in host {visible(raw)}")
    if len(label) > MAX_LABEL_LENGTH:
        raise HostError(f"label longer than {MAX_LABEL_LENGTH} characters in host {visible(raw)}")
    bad = sorted(set(label) - _LABEL_CHARACTERS)
    if bad:
        shown = ", ".join(visible(character) for character in bad)
        raise HostError(f"character {shown} not allowed in host {visible(raw)}")
    if label.startswith("xn--"):
        _check_a_label(label, raw)
    elif len(label) >= 4 and label[2:4] == "--":
        raise HostError(f"reserved label {visible(label)} in host {visible(raw)}")


def _check_a_label(label: str, raw: str) -> None:
    """An ``xn--`` label must decode under IDNA 2008 and re-encode to itself."""
    try:
        unicode_label = idna.decode(label)
        round_trip = idna.encode(unicode_label).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as error:
        raise HostError(f"invalid IDNA label {visible(label)} in host {visible(raw)}: {error}") from None
    if round_trip != label:
        raise HostError(f"non-canonical IDNA label {visible(label)} in host {visible(raw)}")


def _ascii_suggestion(raw: str) -> str | None:
    try:
        return idna.encode(raw, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def _canonical_ipv6(text: str, raw: str) -> str:
    if "%" in text:
        raise HostError(f"IPv6 zone identifiers are not allowed: {visible(raw)}")
    if not text or set(text) - _IPV6_CHARACTERS:
        raise HostError(f"malformed IPv6 address {visible(raw)}")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise HostError(f"malformed IPv6 address {visible(raw)}") from None
    return str(canonical_address(address))


def canonical_address(address: IPAddress) -> IPAddress:
    """Return `address` with an IPv4-mapped IPv6 address replaced by the IPv4 address it maps."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_ipv4_number_forms(text: str) -> ipaddress.IPv4Address | None:
    """Parse an IPv4 address in any of the forms inet_aton accepts, or return None.

    One to four dot-separated parts, each decimal, ``0x`` hexadecimal or ``0``-prefixed octal; the
    last part fills the remaining bytes (``127.1`` is 127.0.0.1, ``2130706433`` is 127.0.0.1).
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _parse_ipv4_part(part)
        if number is None:
            return None
        numbers.append(number)
    last = numbers.pop()
    if any(number > 255 for number in numbers) or last >= 256 ** (4 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(numbers):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_ipv4_part(part: str) -> int | None:
    if part == "":
        return None
    try:
        if part.startswith(("0x", "0X")):
            return int(part[2:], 16) if part[2:] else 0
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def ip_of(host: str) -> IPAddress | None:
    """Return the address if the canonical `host` is an IP literal, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def format_authority(host: str, port: int) -> str:
    """``host:port`` with an IPv6 literal in brackets."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def describe_host(host: str) -> str:
    """How to show a canonical host to a person: IDNA names also show their Unicode form."""
    if not any(label.startswith("xn--") for label in host.split(".")):
        return host
    try:
        unicode_form = idna.decode(host)
    except (idna.IDNAError, UnicodeError, ValueError):
        return host
    return f"{host} (internationalised name, displayed as {visible(unicode_form)})"


def split_authority(text: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port`` or ``[v6]:port`` into the canonical host and the port (or None).

    The host goes through `canonical_host`, so ``0x7f000001:80`` is ``("127.0.0.1", 80)`` here exactly as
    in the proxy; a port is a decimal number from 1 to 65535. Anything else raises `HostError`.
    """
    if text.startswith("["):
        inner, closed, rest = text[1:].partition("]")
        if not closed:
            raise HostError(f"unbalanced brackets in host {visible(text)}")
        host = canonical_host(f"[{inner}]")
        if rest == "":
            return host, None
        if not rest.startswith(":"):
            raise HostError(f"malformed host:port {visible(text)}")
        return host, _port(rest[1:], text)
    if text.count(":") == 1:
        name, _, port = text.partition(":")
        return canonical_host(name), _port(port, text)
    return canonical_host(text), None


def _port(text: str, raw: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise HostError(f"malformed port in {visible(raw)}")
    return int(text)


def authority_text(host: str, port: int | None) -> str:
    """The one written form of a canonical host with an optional port (IPv6 literals in brackets)."""
    if port is None:
        return f"[{host}]" if ":" in host else host
    return format_authority(host, port)
