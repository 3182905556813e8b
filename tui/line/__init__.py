"""The prompt-toolkit line mode: `corral shell --plain`, and the prompt `corral run` shows on a terminal.

`ask` is the `AskCallback` (`LineAsk`), `shell` the line-mode shell loop (`run_plain`). Neither imports
Textual or Rich, directly or through a shared helper (checked by import-linter and by a test that
imports this package in a fresh interpreter and runs its ask path): everything they need from the
front-end package (`tui.changes`, `tui.completion`, `tui.inert.plain`) is UI-free, and their words
come from the core (`corral.words`, `corral.trust_report`, `corral.fatigue.stats`).
"""

from tui.line.ask import LineAsk, make_ask, render_changes, render_request

__all__ = ["LineAsk", "make_ask", "render_changes", "render_request"]
