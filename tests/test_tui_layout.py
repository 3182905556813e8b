"""Layout at a small, a common and a large terminal (Pilot): a dialog's buttons always show and never
cover its body, a dialog stays between the header and the input row without shifting the shell drawn
behind it, and tables end long cells in an ellipsis instead of scrolling sideways."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from textual.app import App
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widgets import Button, DataTable, Footer

from screenshots import demo
from screenshots.scenes import SCENES, Scene

pytestmark = pytest.mark.usefixtures("demo_directory")
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
        row = next(line for line in lines if "…" in line and "trusted" in line)
        assert "…" in row and "trusted" in row and row.rstrip().endswith(("0", "1", "2", "3"))
        assert row.lstrip().startswith("/tmp/corral-demo/") and "…/project " in row  # shortened in the middle


def test_paths_are_shortened_in_the_middle_keeping_whole_components_at_the_end() -> None:
    from rich.text import Text

    from tui.tables import shorten_middle

    path = "/tmp/corral-demo/project/.git/hooks/pre-push"
    assert shorten_middle(Text(path), 80).plain == path
    assert shorten_middle(Text(path), 30).plain == "/tmp/corral-de…/hooks/pre-push"
    assert shorten_middle(Text(path), 20).plain == "/tmp/corra…/pre-push"
    for width in range(5, len(path)):
        assert len(shorten_middle(Text(path), width).plain) == width


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_a_long_protected_path_keeps_its_file_name_in_view(size: tuple[int, int]) -> None:
    scene = _scene("escalation-protected")
    app = scene.build()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.1)
        row = next(line for line in screen_lines(app) if "!  protected path" in line)
        assert "/.envrc" in row and "/tmp/corral-demo/" in row, row
        assert ("…" in row) is (size[0] < 120), row


def _footer_keys(app: App[Any]) -> list[tuple[str, Region]]:
    from textual.widgets._footer import FooterKey

    footer = app.screen.query(Footer).last()
    return [(key.key, key.region) for key in footer.query(FooterKey)]


@pytest.mark.parametrize(
    "keys", [(), ("f2",), ("f3",), ("f4",), ("f5",)], ids=["shell", "review", "rules", "stats", "background"]
)
async def test_every_footer_key_fits_at_80_columns(keys: tuple[str, ...]) -> None:
    app = _scene("trust-review").build()
    async with app.run_test(size=(80, 24)) as pilot:
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        for _ in range(40):  # the footer fills in after the first focus
            await pilot.pause(0.05)
            shown = _footer_keys(app)
            if shown:
                break
        assert shown and all(region.right <= 80 for _key, region in shown), shown
        names = {key for key, _region in shown}
        assert "f1" in names  # the help is always one key away
        if keys:
            assert not names & {"f2", "f3", "f4", "f5", "ctrl+l"}, (
                names
            )  # the view's own keys, not the shell's


async def test_f1_lists_the_keys_of_the_screen_underneath_and_closes_again() -> None:
    from tui.escalation import EscalationScreen
    from tui.views import HelpScreen

    app = _scene("escalation").build()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        names = {name for _key, name, _tooltip in app.screen.rows}
        assert {"Trust", "Rules", "Stats", "Interrupt", "Quit"} <= names
        assert "Move cursor left" not in names  # the input line's editing keys are not corral's keys
        await pilot.press("f1")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await _scene("escalation").steps(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert {"Allow once", "Session", "Project", "Deny"} <= {n for _k, n, _t in app.screen.rows}
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, EscalationScreen)  # Escape closed the help, not the dialog


async def test_views_never_open_over_a_dialog() -> None:
    from tui.escalation import EscalationScreen

    scene = _scene("escalation")
    app = scene.build()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        for key in ("f2", "f3", "f4"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, EscalationScreen)


@pytest.mark.parametrize(
    ("name", "offered", "not_offered"),
    [
        ("escalation-net", {"escape", "o", "s", "p"}, {"c", "x", "v"}),
        ("escalation-write", {"c"}, {"x", "v"}),
        ("escalation", {"c", "x"}, {"v"}),
        ("escalation-flood", {"x", "v"}, {"c"}),
    ],
)
async def test_the_dialog_footer_offers_only_keys_that_do_something(
    name: str, offered: set[str], not_offered: set[str]
) -> None:
    scene = _scene(name)
    app = scene.build()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.1)
        names = {key for key, _region in _footer_keys(app)}
        assert offered <= names and not (not_offered & names), names


@pytest.mark.parametrize("size", [(80, 24), (120, 35)], ids=["80x24", "120x35"])
async def test_the_focused_button_is_legible_and_differs_from_the_others(size: tuple[int, int]) -> None:
    scene = _scene("escalation")
    app = scene.build()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.1)
        deny = app.screen.query_one("#deny", Button)
        assert app.screen.focused is deny
        focused = deny.rich_style
        app.screen.query_one("#once", Button).focus()
        await pilot.pause()
        unfocused = deny.rich_style
        assert not focused.reverse, "focus never reverses the colours"
        assert focused.color != focused.bgcolor
        assert focused != unfocused, "focus shows"


@pytest.mark.parametrize("name", DIALOGS)
async def test_a_dialog_has_one_border(name: str) -> None:
    scene = _scene(name)
    app = scene.build()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.1)
        dialog = app.screen.query(".dialog").last().region
        lines = screen_lines(app)
        top = lines[dialog.y][dialog.x : dialog.right]
        bottom = lines[dialog.bottom - 1][dialog.x : dialog.right]
        assert top.startswith("╭") and top.endswith("╮") and top.count("╭") == 1, top
        assert bottom.startswith("╰") and bottom.endswith("╯") and bottom.count("╰") == 1, bottom
        inside = [line[dialog.x + 1 : dialog.right - 1] for line in lines[dialog.y + 1 : dialog.bottom - 1]]
        assert not any(row.startswith(("│", "┃", "║")) for row in inside), "no second frame inside"
