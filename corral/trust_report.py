"""A project's trust state in words, for terminals: the status line and the full report of what would
load (`corral trust show`, and the line mode before its trust question).

Every value from the repo (paths, config values, hook commands, environment, commit messages) is shown
through the one escaping function (`boundary.termsafe`), one line each, so a hostile file name or value
cannot move the cursor or hide a line; values that widen the sandbox are marked with `WIDENING_MARK`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from boundary.termsafe import visible, visible_path
from trust.config import CONFIG_SOURCE
from trust.discovery import FileCategory
from trust.gate import GateResult

WIDENING_MARK = "!"
"""Marks a config line or value that widens the sandbox boundary."""


def when(seconds: float) -> str:
    """A stored time for display (local time, to the minute)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def status_line(result: GateResult) -> str:
    """One line: state, root and the date of the decision."""
    root = visible_path(str(result.root))
    if result.untrustable:
        return f"untrusted {root} (can never be trusted)"
    if result.record is not None:
        return f"{result.state.value} {root} (decided {when(result.record.decided_at)})"
    return f"{result.state.value} {root}"


def _marked_config_lines(text: str, values: list[str]) -> list[str]:
    """Prefix lines naming a widening value or key with the mark (a visual aid; the list below rules)."""
    out = []
    needles = [f'"{v}"' for v in values] + [f"'{v}'" for v in values]
    for line in text.splitlines():
        bare = line.strip()
        widening = any(n in line for n in needles) or bare.startswith(("writable", "allow"))
        out.append(f"{WIDENING_MARK if widening else ' '} | {line}")
    return out


def brokered_lines(result: GateResult, user_config: Path) -> list[str]:
    """The project's allowed hosts that would receive one of the person's brokered credentials (names
    only); nothing when the user config cannot be read (its own error is shown where it is used)."""
    from corral.credentialmap import brokered_notices
    from corral.errors import UsageError
    from corral.userconfig import load_user_config

    try:
        credentials = load_user_config(user_config).credentials
    except UsageError:
        return []
    hosts = [w.value for w in result.review().widening if w.key == "network.allow"]
    return brokered_notices(hosts, credentials)


def report_text(result: GateResult, brokered: Sequence[str] = ()) -> str:
    """What `corral trust show` prints, and the line mode shows before its trust question. `brokered`:
    the project hosts that would receive a brokered credential (`corral.credentialmap.brokered_notices`)."""
    parts: list[str] = []
    parts.append(status_line(result) + "\n")
    parts.append(f"fingerprint {result.fingerprint}\n")
    for problem in result.discovery.problems:
        parts.append(f"problem: {visible_path(problem)}\n")
    review = result.review()
    values = [w.value for w in review.widening]
    groups = (
        (FileCategory.CORRAL, "Project config (loads only after trust):"),
        (FileCategory.AGENT, "Other agents' config (corral never loads it; a change withdraws trust):"),
        (FileCategory.SHELL, "Shell hooks of other tools (content not shown; a change withdraws trust):"),
        (FileCategory.LISTED, "Also present (corral never reads these):"),
    )
    for category, title in groups:
        files = [f for f in result.discovery.files if f.category is category]
        if not files:
            continue
        parts.append(f"\n{title}\n")
        for found in files:
            digest = f"  sha256 {found.sha256[:16]}" if found.sha256 else ""
            parts.append(f"  {visible_path(found.path)}  {found.size} bytes{digest}\n")
        for found in files:
            if found.content is None:
                continue
            parts.append(f"\n--- {visible_path(found.path)}\n")
            text = found.visible_text()
            if found.path == CONFIG_SOURCE:
                parts.append("\n".join(_marked_config_lines(text, values)) + "\n")
            else:
                parts.append("\n".join(f"  | {line}" for line in text.splitlines()) + "\n")
    if review.widening:
        parts.append("\nWidens the sandbox boundary:\n")
        for widening in review.widening:
            value = visible(widening.value, one_line=True)
            parts.append(f"{WIDENING_MARK} {widening.key} = {value}  ({widening.reason})\n")
    for warning in review.host_warnings:
        parts.append(f"{WIDENING_MARK} warning: {visible(warning, one_line=True)}\n")
    for notice in brokered:
        parts.append(f"{WIDENING_MARK} brokered: {visible(notice, one_line=True)}\n")
    if review.hooks:
        parts.append("\nHooks (run inside the sandbox):\n")
        for hook in review.hooks:
            parts.append(f"  {hook.event}: {visible(hook.command, one_line=True)}\n")
    if review.env:
        parts.append("\nEnvironment for commands:\n")
        for name, value in review.env:
            parts.append(f"  {name}={visible(value, one_line=True)}\n")
    if review.error:
        parts.append(f"\nConfig error (it cannot be trusted as is): {visible(review.error, one_line=True)}\n")
    if result.diff:
        parts.append("\nChanged since you trusted it:\n")
        parts.append(result.diff)
    if result.commits:
        parts.append("\nCommits touching these files since the decision:\n")
        for commit in result.commits:
            summary = visible(commit.summary, one_line=True)
            author = visible(commit.author, one_line=True)
            parts.append(f"  {commit.sha[:12]} {when(commit.time)} {author}: {summary}\n")
    return "".join(parts)
