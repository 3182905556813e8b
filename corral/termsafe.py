"""Make untrusted output inert before it reaches a terminal.

Sandboxed output may carry escape sequences that move the cursor, rewrite the screen, set the clipboard
(OSC 52), emit OSC 7/8 that some terminals resolve over DNS, or query the terminal so that its reply is
"typed" into the user's shell (P07). `TerminalFilter` passes text, newlines, tabs and SGR colour
sequences (`ESC [ params m`), and caret-encodes every other control character: ESC becomes `^[`,
so the terminal never receives a raw escape it would act on.
"""

from __future__ import annotations

import codecs
import os
import re

_SGR = re.compile(r"\x1b\[[0-9;:]{0,64}m")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
_PARTIAL_TAIL = 72


def _caret(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def neutralise(text: str) -> str:
    """`text` with SGR colours kept and every other control character made visible."""
    out: list[str] = []
    position = 0
    for match in _SGR.finditer(text):
        out.append(_CONTROL.sub(_caret, text[position : match.start()]))
        out.append(match.group())
        position = match.end()
    out.append(_CONTROL.sub(_caret, text[position:]))
    return "".join(out)


class TerminalFilter:
    """Streaming version of `neutralise` for chunks of bytes (keeps a short tail for split sequences)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    def feed(self, data: bytes) -> bytes:
        text = self._pending + self._decoder.decode(data)
        cut = text.rfind("\x1b", max(0, len(text) - _PARTIAL_TAIL))
        if cut != -1 and not _SGR.match(text, cut) and _could_become_sgr(text[cut:]):
            text, self._pending = text[:cut], text[cut:]
        else:
            self._pending = ""
        return neutralise(text).encode("utf-8")

    def flush(self) -> bytes:
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return neutralise(text).encode("utf-8")


def _could_become_sgr(tail: str) -> bool:
    return bool(re.fullmatch(r"\x1b(\[[0-9;:]{0,64})?", tail))


def copy_filtered(read_end: int, target_fd: int) -> None:
    """Copy everything from `read_end` to `target_fd` through a `TerminalFilter`; closes `read_end`."""
    terminal_filter = TerminalFilter()
    try:
        while chunk := os.read(read_end, 65536):
            _write_all(target_fd, terminal_filter.feed(chunk))
        _write_all(target_fd, terminal_filter.flush())
    except OSError:
        pass
    finally:
        os.close(read_end)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
