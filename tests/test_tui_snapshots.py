"""SVG snapshots of every screen of `corral shell` (every scene in screenshots/scenes.py: the shell,
the escalation dialog for writes, hosts, protected paths and floods, the captured changes, the
sensitive confirmation, the trust dialog, viewer and review, rules, stats and the F1 help) at 80x24,
120x35 and 200x50 (pytest-textual-snapshot).

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

from screenshots.scenes import SCENES, SIZE, Scene

pytestmark = pytest.mark.usefixtures("demo_directory")


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dates on screen are shown in local time: pin it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


SIZES = ((80, 24), SIZE, (200, 50))


# The F1 help lists the keys of whatever has focus underneath, which is timing-dependent in a snapshot:
# its content is checked by tests/test_tui_layout.py instead.
SNAPSHOT_SCENES = [scene for scene in SCENES if scene.name != "help"]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("scene", SNAPSHOT_SCENES, ids=[scene.name for scene in SNAPSHOT_SCENES])
def test_screen(scene: Scene, size: tuple[int, int], snap_compare: Callable[..., Any]) -> None:
    """Every screen at a small, a common and a large terminal: headers end in an ellipsis instead of
    wrapping, dialogs stay between the header and the input row with their buttons in view, tables
    end long cells in an ellipsis, views replace each other."""
    assert snap_compare(scene.build(), run_before=scene.steps, terminal_size=size)
