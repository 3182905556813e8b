"""Layout at a small, a common and a large terminal (Pilot): a dialog's buttons always show and never
cover its body, a dialog stays between the header and the input row without shifting the shell drawn
behind it, and tables end long cells in an ellipsis instead of scrolling sideways."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console
from textual.app import App
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widgets import Button, DataTable, Footer

from screenshots import demo
from screenshots.scenes import SCENES, Scene

pytestmark = pytest.mark.asyncio(loop_scope="function")
SIZES = ((80, 24), (120, 35), (200, 50))
DIALOGS = (
    "escalation",
    "escalation-changes",
    "escalation-confirm",
    "escalation-flood",
    "escalation-flood-details",
    "trust",
    "trust-changed",
)
HEADER_ROWS = 2
INPUT_AND_FOOTER_ROWS = 4


@pytest.fixture(autouse=True)
def demo_directory() -> Iterator[None]:
    with demo.exclusive():
        yield


def _scene(name: str) -> Scene:
    return next(scene for scene in SCENES if scene.name == name)


def screen_lines(app: App[Any]) -> list[str]:
    """The screen as plain text, the background screens included, exactly as the compositor draws it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False).split("\n")[:height]


def _inside(inner: Region, outer: Region) -> bool:
    return outer.contains_region(inner)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("name", DIALOGS)
async def test_dialog_buttons_show_between_header_and_input(name: str, size: tuple[int, int]) -> None:
    scene = _scene(name)
    app = scene.build()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.1)
        screen = app.screen
        dialog = screen.query_one(".dialog")
        allowed = Region(0, HEADER_ROWS, size[0], size[1] - HEADER_ROWS - INPUT_AND_FOOTER_ROWS)
        assert _inside(dialog.region, allowed), (dialog.region, allowed)
        footer = dialog.query_one(Footer)
        assert footer.region.height == 1 and _inside(footer.region, dialog.region)
        buttons = list(screen.query(".buttons Button").results(Button))
        assert buttons or name == "escalation-changes", "every dialog but the changes view has buttons"
        for button in buttons:
            assert button.region.height >= 1 and _inside(button.region, dialog.region), button
        for body in screen.query(".dialog-body"):
            # the body ends above the buttons and the footer: nothing of it is hidden behind them
            assert body.region.bottom <= min(b.region.y for b in [*buttons, footer]), body.region
        lines = screen_lines(app)
        # the shell behind the dialog is drawn where it is (a padded modal screen shifted it down)
        assert "corral" in lines[0] and "writable:" in lines[1], lines[:3]
        assert any("$" in line and "type a command" in line for line in lines[-3:]), lines[-4:]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_escalation_body_scrolls_to_its_last_line_and_follows_the_selection(
    size: tuple[int, int],
) -> None:
    scene = _scene("escalation")
    app = scene.build()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.1)
        body = app.screen.query_one("#escalation-body", VerticalScroll)
        table = app.screen.query_one("#violations", DataTable)
        for _ in range(table.row_count):
            await pilot.press("down")
            await pilot.pause()
        last = table.row_count - 1
        assert table.cursor_row == last
        row_bottom = table.region.y + table.header_height + sum(r.height for r in table.ordered_rows)
        row_bottom -= round(table.scroll_y)
        assert body.region.y <= row_bottom - 2 and row_bottom <= body.region.bottom, "selected row shows"
        body.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        body.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        assert table.region.bottom <= body.region.bottom, "the last line is never hidden"
        assert table.max_scroll_y == 0, "one scrollbar (the body's), never two nested"


@pytest.mark.parametrize("name", ["rules", "escalation"])
async def test_tables_end_long_cells_in_an_ellipsis_instead_of_scrolling_sideways(name: str) -> None:
    scene = _scene(name)
    app = scene.build()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.1)
        table = app.screen.query_one(DataTable)
        assert table.virtual_size.width <= table.content_region.width, "no sideways scrolling"
        assert table.max_scroll_x == 0
        text = "\n".join(screen_lines(app))
        assert "…" in text
        if name == "rules":
            assert "created" in text and "2026-01-01 10:00" in text  # the last column shows


async def test_a_long_project_path_in_the_review_ends_in_an_ellipsis() -> None:
    from corral import __version__
    from corral.locations import Locations
    from trust.gate import grant
    from trust.store import TrustStore

    scene = _scene("trust-review")
    app = scene.build()
    deep = demo.DEMO_ROOT / ("a-very-long-directory-name-" * 4).rstrip("-") / "project"
    deep.mkdir(parents=True)
    grant(deep, TrustStore(Locations.default().trust_dir), __version__)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.1)
        table = app.screen.query_one(DataTable)
        assert table.max_scroll_x == 0
        lines = screen_lines(app)
        row = next(line for line in lines if "a-very-long" in line)
        assert "…" in row and "trusted" in row and row.rstrip().endswith(("0", "1", "2", "3"))
