"""The one escaping function and the output hold-back, as units."""

from __future__ import annotations

import ast
import os
import threading
import time
from pathlib import Path

import pytest

from boundary.termsafe import TerminalFilter, label, pieces, visible, visible_bytes, visible_output
from corral.termsafe import OutputHold

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGES = ("boundary", "cli", "corral", "sandbox", "trust", "tui")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J\x1b[H", "^[[2J^[[H"),
        ("a\rb", "a^Mb"),
        ("\x7f\x9b31m", "^?<U+009B>31m"),
        ("r\u202egnp.exe", "r<U+202E>gnp.exe"),
        ("is\u2066olate\u2069", "is<U+2066>olate<U+2069>"),
        ("zero\u200bwidth\u200d\ufeff\u00ad", "zero<U+200B>width<U+200D><U+FEFF><U+00AD>"),
        ("line\u2028sep", "line<U+2028>sep"),
        ("blank\u3164\u2800", "blank<U+3164><U+2800>"),
        ("tag\U000e0041", "tag<U+E0041>"),
        ("ünïcode ✓ and tabs\t", "ünïcode ✓ and tabs\t"),
    ],
)
def test_visible_labels_every_dangerous_character(text: str, shown: str) -> None:
    assert visible(text) == shown
    assert visible(visible(text)) == visible(text)  # labels are plain ASCII: escaping twice is harmless


def test_one_line_ascii_only_and_bytes() -> None:
    assert visible("a\nb") == "a\nb" and visible("a\nb", one_line=True) == "a^Jb"
    assert visible("gіthub", ascii_only=True) == "g<U+0456>thub"
    assert visible_bytes(b"ok \xff\n") == "ok <0xFF>\n"
    assert pieces("a\x1bb") == [(False, "a"), (True, "^["), (False, "b")]
    assert label("\x00") == "^@"


def test_output_keeps_colours_only() -> None:
    assert visible_output("\x1b[31mred\x1b[0m\x1b[2K\u202e") == "\x1b[31mred\x1b[0m^[[2K<U+202E>"
    flt = TerminalFilter()
    out = flt.feed(b"a\x1b[3") + flt.feed(b"1mb\x1b]0;t\x07") + flt.flush()
    assert out == b"a\x1b[31mb^[]0;t^G"


def _functions_escaping_characters(path: Path) -> list[str]:
    """Functions outside boundary/termsafe.py that classify characters for display themselves."""
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "category"
            and getattr(node.func.value, "id", "") == "unicodedata"
        ):
            found.append(f"{path}:{node.lineno}: unicodedata.category")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ascii":
            found.append(f"{path}:{node.lineno}: ascii()")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "\\x00-\\x08" in repr(node.value)
        ):
            found.append(f"{path}:{node.lineno}: a control-character class")
    return found


def test_there_is_one_escaping_function() -> None:
    offenders: list[str] = []
    for package in SOURCE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "boundary" / "termsafe.py":
                continue
            offenders += _functions_escaping_characters(path)
    assert offenders == [], "escape through boundary.termsafe.visible instead"
    assert not (ROOT / "trust" / "display.py").exists()


def test_hold_keeps_output_back_until_the_prompt_is_answered() -> None:
    read_end, write_end = os.pipe()
    hold = OutputHold()
    try:
        hold.write(write_end, b"before ")
        with hold.holding():
            hold.write(write_end, b"during ")
            os.set_blocking(read_end, False)
            assert os.read(read_end, 100) == b"before "
            with pytest.raises(BlockingIOError):
                os.read(read_end, 100)  # nothing reaches the terminal while the prompt is open
        assert os.read(read_end, 100) == b"during "
        hold.write(write_end, b"after")
        assert os.read(read_end, 100) == b"after"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_full_hold_stops_the_pump_instead_of_growing() -> None:
    read_end, write_end = os.pipe()
    hold = OutputHold(limit=10)
    written: list[int] = []

    def pump() -> None:
        for _ in range(3):
            hold.write(write_end, b"x" * 8)
            written.append(1)

    try:
        with hold.holding():
            thread = threading.Thread(target=pump, daemon=True)
            thread.start()
            time.sleep(0.3)
            assert len(written) == 1  # the second chunk would exceed the bound: the pump waits
        thread.join(timeout=5)
        assert len(written) == 3
        os.set_blocking(read_end, False)
        assert os.read(read_end, 100) == b"x" * 24  # nothing lost, in order
    finally:
        os.close(read_end)
        os.close(write_end)


def test_summary_names_deletions_with_their_count() -> None:
    from boundary.violations import Change, ChangeOp, Violation, ViolationKind
    from corral.grouping import summarize

    deleted = Violation(
        ViolationKind.FS_WRITE,
        "/h/a",
        "delete",
        "",
        (Change(Path("/h/a/x"), ChangeOp.DELETE), Change(Path("/h/a/y"), ChangeOp.DELETE)),
    )
    written = Violation(
        ViolationKind.FS_WRITE, "/h/b", "create", "", (Change(Path("/h/b"), ChangeOp.CREATE),)
    )
    assert summarize([deleted, written]) == (
        "1 write outside the workspace, 2 deletions outside the workspace"
    )
    assert summarize([deleted]) == "2 deletions outside the workspace"
