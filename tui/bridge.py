"""The `ask` callback of the Textual app: the core calls it on its `corral-ask` thread; it shows the
escalation dialog on the app's thread and blocks until the person answers.

Fail closed at every step: the app not running, the dialog failing to open, the request being
cancelled, the timeout passing or an answer of the wrong type all return `DENY`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from textual.app import App
from textual.screen import Screen

from corral.decision import DENY, Decision, PromptAnswer, PromptRequest
from tui.escalation import EscalationScreen

ScreenFactory = Callable[[PromptRequest], EscalationScreen]


class DialogAsk:
    """An `AskCallback` that answers through `EscalationScreen` in `app`."""

    def __init__(self, app: App[Any], make_screen: ScreenFactory = EscalationScreen) -> None:
        self._app = app
        self._make_screen = make_screen

    def __call__(self, request: PromptRequest) -> PromptAnswer:
        if not self._app.is_running:
            return DENY
        answered = threading.Event()
        box: list[object] = []

        def on_answer(answer: object) -> None:
            box.append(answer)
            answered.set()

        screen = self._make_screen(request)
        try:
            self._app.call_from_thread(self._app.push_screen, screen, on_answer)
        except Exception:
            return DENY  # Fail closed: the dialog could not be shown.
        deadline = time.monotonic() + request.timeout_s
        while not answered.wait(0.1):
            if request.cancelled.is_set() or time.monotonic() >= deadline or not self._app.is_running:
                self._close(screen)
                return DENY  # Fail closed: nobody answered in time.
        answer = box[0] if box else None
        if isinstance(answer, Decision | Mapping):
            return answer
        return DENY

    def _close(self, screen: Screen[Any]) -> None:
        def close() -> None:
            stack = self._app.screen_stack
            if screen not in stack:
                return
            while self._app.screen is not screen:
                self._app.pop_screen()
            screen.dismiss(DENY)

        with contextlib.suppress(Exception):  # the app already stopped: nothing left to close
            self._app.call_from_thread(close)
