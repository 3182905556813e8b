"""Make untrusted text safe to print: every character that could hide, reorder or rewrite what a person
sees is shown as a visible escape.

Repo files are shown to the person before they decide to trust them, so the text must look on screen
exactly like what it is: no terminal escapes (ESC, CSI, OSC), no carriage return overwriting a line, no
bidi overrides reordering code (Trojan Source), no zero-width characters hiding a difference.
"""

from __future__ import annotations

import unicodedata

_KEPT = frozenset("\n\t")
_NAMED = {"\r": "\\r", "\x1b": "\\e", "\x00": "\\0", "\x7f": "\\x7f"}
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Cc: C0/C1 controls, ESC, DEL.  Cf: bidi embeddings/overrides/isolates, zero-width space/joiners, BOM,
# soft hyphen, tag characters.  Cs/Co/Cn: surrogates, private use, unassigned.  Zl/Zp: U+2028/U+2029.


def _escape_char(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def needs_escape(char: str) -> bool:
    """Whether `char` (one character) is shown as an escape by `visible`."""
    if char in _KEPT:
        return False
    if char in _NAMED:
        return True
    return unicodedata.category(char) in _ESCAPED_CATEGORIES


def visible(text: str, *, keep_newlines: bool = True) -> str:
    """Return `text` with every control, format, bidi, zero-width and unassigned character escaped.

    Newlines and tabs are kept (unless `keep_newlines` is false, then a newline is shown as `\\n`);
    ESC becomes `\\e`, CR `\\r`, other characters `\\xNN`, `\\uNNNN` or `\\UNNNNNNNN`. The result never
    contains a character a terminal interprets, so it is safe to print or to put in a widget.
    """
    out: list[str] = []
    for char in text:
        if char == "\n" and not keep_newlines:
            out.append("\\n")
        elif needs_escape(char):
            out.append(_escape_char(char))
        else:
            out.append(char)
    return "".join(out)


def visible_bytes(data: bytes, *, keep_newlines: bool = True) -> str:
    """Decode `data` as UTF-8 (invalid bytes shown as `\\xNN`) and escape it with `visible`."""
    return visible(data.decode("utf-8", errors="backslashreplace"), keep_newlines=keep_newlines)


def visible_path(path: str) -> str:
    """A repo path for display on one line (file names may hold newlines and escapes too)."""
    return visible(
        path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"), keep_newlines=False
    )
