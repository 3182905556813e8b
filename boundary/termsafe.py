"""The one escaping function: every untrusted string becomes inert before it reaches a terminal.

Commands, paths, host names, file contents, commit messages and command output come from the agent,
the repo or the sandbox. Whatever corral prints or draws must look exactly like what it is, so every
character a terminal could act on, or that could hide, reorder or fake text, is shown as a visible label:

* C0 and C1 controls, ESC and DEL (cursor moves, screen clears, OSC 52 clipboard writes, OSC 8 links,
  terminal queries whose reply would be "typed" into the shell): `^[`, `^M`, `^?`, `<U+009B>`;
* format characters: bidi overrides and isolates (Trojan Source), zero-width spaces and joiners, BOM,
  soft hyphen, tag characters; line and paragraph separators; surrogates, private-use and unassigned
  code points: `<U+202E>`;
* letters that render blank (Hangul fillers, braille blank, ...), so a name cannot look empty.

Newlines and tabs are kept unless `one_line` (paths, hosts, commands in a table or a one-line message):
then a newline is `^J` like any other control. `ascii_only` also labels every non-ASCII character
(host names, where a homograph must not pass for the ASCII name).

`visible` is the only function in corral that makes text inert. The front ends style the same pieces
(`pieces`) in reverse video; `TerminalFilter` applies it to a command's live output stream, keeping only
SGR colour sequences (`ESC [ params m`), which cannot move the cursor or change anything but colour.
This package is a leaf: it imports only the standard library, so `sandbox/`, `trust/`, `corral/` and
`tui/` can all use it.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Unicode categories that are always labelled (see the module docstring)."""
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u034f")
"""Characters that render blank or nearly so although unicodedata calls them letters or symbols."""

_SAFE_ASCII = re.compile(r"[\t\x20-\x7e]*")
_SGR = re.compile(r"\x1b\[[0-9;:]{0,64}m")
_PARTIAL_TAIL = 72


def label(char: str) -> str:
    """The visible label of one escaped character: `^[` for C0 controls, `^?` for DEL, `<0xFF>` for an
    undecodable byte, else `<U+XXXX>`."""
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as Python's surrogateescape carries it
        return f"<0x{code - 0xDC00:02X}>"
    return f"<U+{code:04X}>"


def needs_escape(char: str, *, one_line: bool = False, ascii_only: bool = False) -> bool:
    """Whether `char` (one character) is shown as a label by `visible`."""
    if char == "\t":
        return False
    if char == "\n":
        return one_line
    if ascii_only and not char.isascii():
        return True
    if "\x20" <= char <= "\x7e":
        return False
    return char in INVISIBLE_LETTERS or unicodedata.category(char) in ESCAPED_CATEGORIES


def pieces(text: str, *, one_line: bool = False, ascii_only: bool = False) -> list[tuple[bool, str]]:
    """`text` split into `(escaped, piece)`: plain runs as they are, each escaped character as its label."""
    if _SAFE_ASCII.fullmatch(text):
        return [(False, text)] if text else []
    out: list[tuple[bool, str]] = []
    run: list[str] = []
    for char in text:
        if needs_escape(char, one_line=one_line, ascii_only=ascii_only):
            if run:
                out.append((False, "".join(run)))
                run.clear()
            out.append((True, label(char)))
        else:
            run.append(char)
    if run:
        out.append((False, "".join(run)))
    return out


def visible(text: str, *, one_line: bool = False, ascii_only: bool = False) -> str:
    """`text` with every character a terminal could act on, or that could hide text, shown as a label."""
    if _SAFE_ASCII.fullmatch(text):
        return text
    return "".join(piece for _escaped, piece in pieces(text, one_line=one_line, ascii_only=ascii_only))


def visible_bytes(data: bytes, *, one_line: bool = False) -> str:
    """`data` decoded as UTF-8 (each invalid byte shown as `<0xNN>`) and made `visible`."""
    return visible(data.decode("utf-8", errors="surrogateescape"), one_line=one_line)


def visible_path(path: str) -> str:
    """A path on one line (file names may hold newlines and escapes; undecodable bytes are labelled)."""
    return visible(path, one_line=True)


def visible_output(text: str) -> str:
    """Command output: SGR colour sequences kept, everything else as `visible` (newlines and tabs kept)."""
    out: list[str] = []
    position = 0
    for match in _SGR.finditer(text):
        out.append(visible(text[position : match.start()]))
        out.append(match.group())
        position = match.end()
    out.append(visible(text[position:]))
    return "".join(out)


def strip_colours(text: str) -> str:
    """`text` without SGR colour sequences (for widgets that draw their own colours)."""
    return _SGR.sub("", text)


class TerminalFilter:
    """Streaming `visible_output` for chunks of bytes (keeps a short tail for a split SGR sequence)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    def feed(self, data: bytes) -> bytes:
        """The inert bytes for `data` (a sequence cut at the chunk end waits for the next chunk)."""
        text = self._pending + self._decoder.decode(data)
        cut = text.rfind("\x1b", max(0, len(text) - _PARTIAL_TAIL))
        if cut != -1 and not _SGR.match(text, cut) and re.fullmatch(r"\x1b(\[[0-9;:]{0,64})?", text[cut:]):
            text, self._pending = text[:cut], text[cut:]
        else:
            self._pending = ""
        return visible_output(text).encode("utf-8")

    def flush(self) -> bytes:
        """Whatever was held back, made inert."""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return visible_output(text).encode("utf-8")
