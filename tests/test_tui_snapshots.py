"""SVG snapshots of every screen of `corral shell` at 120x40, and of the main screens at 80x24, 120x35
and 200x50 (pytest-textual-snapshot).

The scenes (screenshots/scenes.py) include spoofing attempts: Rich markup (`[red]`, `[link=...]`), escape
sequences (CSI erase, SGR conceal, OSC 8 links, OSC 52 clipboard writes), bidi overrides, zero-width
characters and long padding, in commands, paths, file contents and output. The snapshots show them as
visible text. Update with `pytest tests/test_tui_snapshots.py --snapshot-update` after a UI change,
then regenerate screenshots/ with `screenshots/make_screenshots.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from screenshots import demo
from screenshots.scenes import SCENES, SIZE, Scene


@pytest.fixture(autouse=True)
def demo_directory() -> Iterator[None]:
    """The demo project lives at a fixed path: take turns with other processes using it."""
    with demo.exclusive():
        yield


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dates on screen are shown in local time: pin it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("scene", SCENES, ids=[scene.name for scene in SCENES])
def test_screen(scene: Scene, snap_compare: Callable[..., Any]) -> None:
    assert snap_compare(scene.build(), run_before=scene.steps, terminal_size=SIZE)


MAIN_SCREENS = ("shell", "escalation", "escalation-changes", "trust", "trust-review", "rules", "stats")
SIZES = ((80, 24), (120, 35), (200, 50))


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("name", MAIN_SCREENS)
def test_main_screens_at_three_sizes(
    name: str, size: tuple[int, int], snap_compare: Callable[..., Any]
) -> None:
    """The main screens at a small, a common and a large terminal: headers end in an ellipsis instead of
    wrapping, dialogs stay between the header and the input row, views replace each other."""
    scene = next(scene for scene in SCENES if scene.name == name)
    assert snap_compare(scene.build(), run_before=scene.steps, terminal_size=size)
