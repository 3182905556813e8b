"""TUI behaviour behind the polish: any other key denies, views replace each other, the trust dialog's
footer names the buttons' keys, a trusted project's review says it is trusted, grammar and the chart."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Footer

from corral.decision import DENY
from screenshots import demo
from screenshots.scenes import SCENES
from tui.escalation import EscalationScreen
from tui.review import TrustReviewScreen
from tui.rules_screen import RulesScreen
from tui.stats_screen import StatsScreen, bar_chart, summary_text
from tui.trust_dialog import TrustScreen, TrustViewer, describe_gate

pytestmark = pytest.mark.usefixtures("demo_directory")
SIZE = (120, 35)


def _shell_scene() -> object:
    return next(scene for scene in SCENES if scene.name == "trust-review").build()


async def test_views_replace_each_other_instead_of_stacking() -> None:
    app = _shell_scene()
    async with app.run_test(size=SIZE) as pilot:  # type: ignore[attr-defined]
        depth = len(pilot.app.screen_stack)
        for key, kind in (
            ("f2", TrustReviewScreen),
            ("f3", RulesScreen),
            ("f4", StatsScreen),
            ("f3", RulesScreen),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(pilot.app.screen, kind)
            assert len(pilot.app.screen_stack) == depth + 1
        await pilot.press("f3")  # the same view again: stays, does not stack
        await pilot.pause()
        assert len(pilot.app.screen_stack) == depth + 1
        await pilot.press("escape")
        await pilot.pause()
        assert len(pilot.app.screen_stack) == depth


@pytest.mark.parametrize("key", ["a", "y", "1", "space"])
async def test_any_other_key_denies_once_armed(key: str) -> None:
    from tests.test_tui_dialogs import _answer, _write_request

    assert await _answer(_write_request(), key) == [DENY]


async def test_stray_keys_during_arming_do_nothing() -> None:
    from tests.test_tui_dialogs import Host, _write_request

    request = _write_request()
    app = Host(lambda: EscalationScreen(request, arm_delay_s=30.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "o")
        await pilot.pause()
        assert isinstance(app.screen, EscalationScreen) and app.answers == []
        await pilot.press("enter")
        await pilot.pause()
        assert app.answers == [DENY]  # Enter on the focused Deny button is always a deny


async def test_trust_footer_names_the_buttons_keys() -> None:
    from tests.test_tui_dialogs import Host
    from trust.gate import evaluate
    from trust.store import TrustStore

    demo.prepare()
    from corral.locations import Locations

    gate = evaluate(demo.PROJECT, TrustStore(Locations.default().trust_dir))
    for viewer, expected in ((False, {"u", "t", "q"}), (True, {"escape"})):
        app = Host(lambda viewer=viewer: TrustViewer(gate) if viewer else TrustScreen(gate))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            shown = {
                binding.key
                for _key, active in screen.active_bindings.items()
                for binding in [active.binding]
                if binding.show and active.enabled and active.node is screen
            }
            assert shown == expected
            assert screen.query(Footer)
            labels = " ".join(str(button.label) for button in screen.query(Button))
            for key in expected:
                shown_as = "Esc" if key == "escape" else key
                assert f"({shown_as}" in labels or f"/{shown_as}" in labels


def test_trusted_project_text_does_not_say_until_you_trust_it() -> None:
    from corral.locations import Locations
    from trust.gate import TrustState, evaluate, grant
    from trust.store import TrustStore

    demo.prepare()
    store = TrustStore(Locations.default().trust_dir)
    grant(demo.PROJECT, store, "test")
    gate = evaluate(demo.PROJECT, store)
    assert gate.state is TrustState.TRUSTED
    text = describe_gate(gate).plain
    assert "Until you trust it" not in text and "You trust this content" in text


def test_grammar_and_chart_axes() -> None:
    from corral.fatigue.stats import FatigueStats

    one = FatigueStats(commands=1, prompts=1)
    text = summary_text(one, [one]).plain
    assert "1 command " in text and "1 prompt " in text and "1 prompts" not in text
    chart = bar_chart([0, 3, 1]).plain
    assert chart.startswith("prompts\n") and "3┤" in chart and "3 sessions, oldest → newest" in chart
    assert "█" not in chart and "▁" not in chart  # bars are coloured cells, not glyphs (no stripes)


async def test_output_waits_while_a_dialog_is_open() -> None:
    from tui.app import OutputReceived
    from tui.commandlog import CommandEntry, CommandLog

    app = next(scene for scene in SCENES if scene.name == "shell").build()
    async with app.run_test(size=SIZE) as pilot:
        entry = CommandEntry("flood")
        app.query_one(CommandLog).add_entry(entry)
        await pilot.pause()
        app.push_screen(EscalationScreen(demo.demo_request(), arm_delay_s=0.0))
        await pilot.pause()
        app.post_message(OutputReceived(entry, ["FAKE-PROMPT Allow? [o]"], 0))
        await pilot.pause()
        assert list(entry.output.lines) == []  # nothing changes under the open dialog
        await pilot.press("escape")
        await pilot.pause(0.5)
        assert list(entry.output.lines) == ["FAKE-PROMPT Allow? [o]"]
