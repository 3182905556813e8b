"""Untrusted text made inert for the front ends: one place, used by every widget and prompt.

Commands, paths, host names, file contents and command output come from the agent or the repo. They
must look on screen exactly like what they are:

* never markup: everything becomes a `rich.text.Text` built from plain strings (no `[red]`, `[link=...]`
  or `[@click=...]` is ever parsed);
* never terminal control: SGR colour sequences are dropped, every other control character, bidi
  override or isolate, zero-width or other invisible character is shown as a labelled escape (`^[`,
  `<U+202E>`) styled in reverse video, so it cannot pass for the literal text `<U+202E>`;
* long runs of padding (used to push the real command off-screen) collapse to a flagged marker.

The escaping itself is `boundary.termsafe.visible`'s (the one escaping function, through its `pieces`);
this module only adds the styling, the padding marker and the line limit. `inert(text)` returns a
`Text` for Textual; `plain(text)` returns a `str` with the same escapes for the line mode (no styling
there: the label format itself marks them).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Rich is loaded only by `inert`: the line mode uses `plain` and never imports it
    from rich.text import Text

from boundary.termsafe import pieces as escaped_pieces
from boundary.termsafe import strip_colours

ESCAPE_STYLE = "bold reverse"
"""How an escaped character is shown: it must not look like text the command contains."""
PADDING_STYLE = "bold reverse yellow"
PADDING_RUN = 40
"""A run of at least this many spaces is flagged instead of shown."""
MAX_LINE_CHARS = 4000
"""A longer line is cut, with a marker saying how much was left out."""

_PADDING = re.compile(rf"[ \t]{{{PADDING_RUN},}}")


def _pieces(text: str, one_line: bool = False) -> list[tuple[str, str]]:
    """Split one line of `text` into (kind, piece); kind is "text", "escape" or "padding"."""
    text = strip_colours(text)
    out: list[tuple[str, str]] = []
    position = 0
    for match in _PADDING.finditer(text):
        _escape(text[position : match.start()], one_line, out)
        out.append(("padding", f"⟪{len(match.group())} blanks⟫"))
        position = match.end()
    _escape(text[position:], one_line, out)
    return out


def _escape(segment: str, one_line: bool, out: list[tuple[str, str]]) -> None:
    for escaped, piece in escaped_pieces(segment, one_line=one_line):
        out.append(("escape" if escaped else "text", piece))


def _lines(text: str, one_line: bool, limit: int) -> list[list[tuple[str, str]]]:
    rows: list[list[tuple[str, str]]] = []
    for line in [text] if one_line else text.split("\n"):
        shown, cut = (line, 0) if len(line) <= limit else (line[:limit], len(line) - limit)
        pieces = _pieces(shown, one_line)
        if cut:
            pieces.append(("padding", f"⟪{cut} more characters⟫"))
        rows.append(pieces)
    return rows


_STYLES = {"text": "", "escape": ESCAPE_STYLE, "padding": PADDING_STYLE}


def inert(text: str, style: str = "", *, one_line: bool = False, limit: int = MAX_LINE_CHARS) -> Text:
    """`text` as a Textual-safe `Text`: no markup, visible escapes, flagged padding, bounded lines.

    Newlines stay line breaks unless `one_line` (paths, hosts, commands in a table): then they are
    shown as `^J` like any other control character.
    """
    from rich.text import Text

    result = Text(style=style, end="")
    if one_line:  # a path or host cut by its column ends in an ellipsis, never silently mid-name
        result.no_wrap = True
        result.overflow = "ellipsis"
    for index, pieces in enumerate(_lines(text, one_line, limit)):
        if index:
            result.append("\n")
        for kind, piece in pieces:
            result.append(piece, style=_STYLES[kind] or None)
    return result


def plain(text: str, *, one_line: bool = False, limit: int = MAX_LINE_CHARS) -> str:
    """`text` with the same escapes as `inert`, as a plain string (line mode)."""
    return "\n".join("".join(piece for _kind, piece in pieces) for pieces in _lines(text, one_line, limit))
