"""`corral shell --plain` as the owner of its project's live session: agents' `corral run` joins it.

The line shell's main thread spends its idle time in a prompt-toolkit prompt reading the terminal, so
an agent command's prompt cannot simply open a second prompt on the same terminal. `PromptGate` is
the Session's `ask` callback: called on the main thread, or while a typed command runs (the prompt is
not reading), it asks directly; called from a broker thread while the prompt is reading, it parks
the request, ends the prompt (keeping what was typed), and the main loop asks it inline, exactly like
a typed command's prompt, then returns to the prompt. Every failure, a timeout or a cancelled request
is a denial. Agent commands are announced above the prompt with the process that asked.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from corral.broker.address import AddressError, Peer
from corral.broker.server import AlreadyServed, BrokerServer, SessionHost
from corral.decision import DENY, AskCallback, PromptAnswer, PromptRequest
from corral.session import CommandOutcome
from tui.inert import plain

ASK_PENDING = object()
"""What the interrupted prompt returns when an agent's question is waiting."""


class PromptGate:
    """An `AskCallback` that routes broker threads' questions through the line shell's main loop."""

    def __init__(self, ask: AskCallback) -> None:
        self.ask = ask
        self._pending: queue.Queue[tuple[PromptRequest, Future[PromptAnswer]]] = queue.Queue()
        self._lock = threading.Lock()
        self._app: Any = None

    def __call__(self, request: PromptRequest) -> PromptAnswer:
        with self._lock:
            app = self._app
            if app is None or threading.current_thread() is threading.main_thread():
                app = None
            else:
                answer: Future[PromptAnswer] = Future()
                self._pending.put((request, answer))
        if app is None:
            return self.ask(request)
        with contextlib.suppress(Exception):
            app.loop.call_soon_threadsafe(lambda: app.is_running and app.exit(result=ASK_PENDING))
        try:
            return answer.result(timeout=request.timeout_s)
        except (FutureTimeout, Exception):
            request.cancelled.set()
            return DENY  # Fail closed: nobody answered in time.

    @contextlib.contextmanager
    def prompting(self, app: Any) -> Any:
        """While the main loop's prompt reads the terminal."""
        with self._lock:
            self._app = app
        try:
            yield
        finally:
            with self._lock:
                self._app = None
        self.serve_pending()

    def serve_pending(self) -> None:
        """Ask every parked question, on the main thread."""
        while True:
            try:
                request, answer = self._pending.get_nowait()
            except queue.Empty:
                return
            try:
                result = DENY if request.cancelled.is_set() else self.ask(request)
            except Exception:
                result = DENY
            answer.set_result(result)

    def acquire(self, lock: threading.Lock) -> None:
        """Take the session's command lock, answering agents' questions while waiting for it."""
        while not lock.acquire(timeout=0.1):
            self.serve_pending()


class _Announcer:
    def command_started(self, peer: Peer, text: str) -> object:
        first = text.splitlines()[0] if text else ""
        print(f"agent {plain(peer.label(), one_line=True)} $ {plain(first, one_line=True, limit=200)}")
        return None

    def command_finished(self, token: object, outcome: CommandOutcome | None, error: str | None) -> None:
        if outcome is None:
            print(f"  agent command not run: {plain(error or '', one_line=True)}")
        else:
            print(f"  agent command: exit {outcome.status}, {len(outcome.outcomes)} crossing(s)")


def serve_line_shell(workspace: Any, locations: Any, host: SessionHost) -> BrokerServer | None:
    """Serve the line shell's session for agents; None (with a one-line notice) when it cannot."""
    server = BrokerServer(
        workspace,
        locations.runtime_dir,
        host,
        frontend="line",
        observer=_Announcer(),
        ledger_path=locations.ledger_path,
    )
    try:
        server.start()
    except AlreadyServed as error:
        print(f"corral: {error}: agents' commands go there, not here", file=sys.stderr)
        return None
    except (AddressError, OSError) as error:
        print(f"corral: agents cannot join this session: {error}", file=sys.stderr)
        return None
    return server
