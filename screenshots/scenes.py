"""Every screen of the shell as a reproducible scene: an app plus the steps that bring it to the screen.

Used by the snapshot tests (`snap_compare(scene.app(), run_before=scene.steps)`) and by
`screenshots/make_screenshots.py`. Each scene rebuilds the demo project (`screenshots.demo.prepare`) and, where
needed, seeds trust records, rules and ledger rows with fixed dates into the current user's corral
state (tests and the script point HOME/XDG at a temporary directory first). Nothing here runs a
sandboxed command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from textual.pilot import Pilot

from corral import __version__
from corral.locations import Locations
from corral.trusting import ProjectTrust
from screenshots import demo
from tui.app import CorralShell, ShellOptions
from tui.commandlog import CommandLog
from tui.escalation import EscalationScreen
from tui.trust_dialog import TrustScreen

Steps = Callable[[Pilot[object]], Awaitable[None]]
SIZE = (120, 35)
"""The README's screenshots; the snapshot tests also take every scene at 80x24 and 200x50."""


@dataclass(frozen=True)
class Scene:
    """A named screen: how to build the app and what to do before the picture is taken."""

    name: str
    title: str
    build: Callable[[], CorralShell]
    steps: Steps


def _shell(seed: bool = False) -> CorralShell:
    demo.prepare()
    locations = Locations.default()
    if seed:
        demo.seed_state(locations)
    project = ProjectTrust(demo.PROJECT, locations)
    project.refresh(with_history=False)
    return CorralShell(project, options=ShellOptions(arm_delay_s=0.0, show_trust_dialog=False))


def _steady_cursor(pilot: Pilot[object]) -> None:
    """No blinking cursor: a snapshot must not depend on when in the blink it was taken."""
    from textual.widgets import Input

    for field in pilot.app.query(Input):
        field.cursor_blink = False


async def _with_log(pilot: Pilot[object]) -> None:
    _steady_cursor(pilot)
    app = pilot.app
    assert isinstance(app, CorralShell)
    log = app.query_one(CommandLog)
    for entry, lines, finished in demo.demo_entries():
        log.add_entry(entry)
        await pilot.pause()
        if lines:
            entry.add_output(lines, 0)
        entry.finish(finished)
    await pilot.pause()
    log.scroll_end(animate=False)
    await pilot.pause()


def _dialog(request_factory: Callable[[], object], *keys: str) -> Steps:
    async def steps(pilot: Pilot[object]) -> None:
        await _with_log(pilot)
        request = request_factory()
        pilot.app.push_screen(EscalationScreen(request, arm_delay_s=0.0))  # type: ignore[arg-type]
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()

    return steps


def _trust(changed: bool) -> Steps:
    async def steps(pilot: Pilot[object]) -> None:
        _steady_cursor(pilot)
        app = pilot.app
        assert isinstance(app, CorralShell)
        project = app.project
        if changed:
            from trust.gate import grant
            from trust.store import TrustStore

            store = TrustStore(project.locations.trust_dir)
            record = grant(project.workspace, store, __version__)
            store.put(dataclasses.replace(record, decided_at=demo.FIXED_TIME))
            config = project.workspace / ".corral" / "config.toml"
            config.write_text(
                config.read_text().replace('"pypi.org"', '"pypi.org", "uploads.evil\u200b.example"')
                + "\n# harmless \x1b]8;;https://evil.example\x07comment\x1b]8;;\x07\n"
            )
        project.refresh(with_history=False)
        app._refresh_header()
        await pilot.pause()
        assert project.gate is not None
        app.push_screen(TrustScreen(project.gate))
        await pilot.pause()

    return steps


def _key(*keys: str) -> Steps:
    async def steps(pilot: Pilot[object]) -> None:
        _steady_cursor(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await pilot.pause(0.1)

    return steps


SCENES: tuple[Scene, ...] = (
    Scene(
        "shell",
        "The shell: status chips, durations, bounded output, spoofing shown as text",
        _shell,
        _with_log,
    ),
    Scene(
        "escalation",
        "Escalation dialog: the command first, each violation and why it matters",
        _shell,
        _dialog(demo.demo_request),
    ),
    Scene(
        "escalation-changes",
        "The captured change set, one key away (c)",
        _shell,
        _dialog(demo.demo_request, "c"),
    ),
    Scene(
        "escalation-confirm",
        "A project rule on a sensitive target needs a second step",
        _shell,
        _dialog(demo.demo_request, "p"),
    ),
    Scene(
        "escalation-flood",
        "50 hosts collapse into one summary; the sensitive item stands alone",
        _shell,
        _dialog(demo.many_hosts_request),
    ),
    Scene(
        "escalation-flood-details",
        "Every violation behind the summary (v), one denied with x",
        _shell,
        _dialog(demo.many_hosts_request, "v", "down", "x"),
    ),
    Scene(
        "escalation-write",
        "One write outside the workspace, its captured change one key away",
        _shell,
        _dialog(demo.write_request),
    ),
    Scene(
        "escalation-net",
        "One new host: no captured changes, so no changes key",
        _shell,
        _dialog(demo.net_request),
    ),
    Scene(
        "escalation-protected",
        "A protected path with a long name: the target ends in an ellipsis, the reason says why",
        _shell,
        _dialog(demo.protected_request),
    ),
    Scene(
        "trust",
        "Trust dialog for an untrusted project: what would load, widening values highlighted",
        _shell,
        _trust(changed=False),
    ),
    Scene(
        "trust-changed",
        "Trust dialog after a change: the diff since the trusted version",
        _shell,
        _trust(changed=True),
    ),
    Scene(
        "trust-review",
        "Trust review: every project, decision, date, fingerprint state, rules",
        lambda: _shell(seed=True),
        _key("f2"),
    ),
    Scene(
        "trust-inspect",
        "A trusted project inspected from the review: what it loads, no “until you trust it”",
        lambda: _shell(seed=True),
        _key("f2", "down", "i"),
    ),
    Scene("rules", "Rules screen: this project's stored rules", lambda: _shell(seed=True), _key("f3")),
    Scene(
        "stats",
        "Stats: prompts per session, approval rate, decision time, reduction against classic",
        lambda: _shell(seed=True),
        _key("f4"),
    ),
    Scene(
        "background",
        "F5: what the session's commands left running, with a key to stop each",
        _shell,
        _key("f5"),
    ),
    Scene("help", "F1: every key of the screen underneath, with what it does", _shell, _key("f1")),
)
