"""What a person decided in one session, and the session's recent denials (the burst count).

A host's answer covers that host on any port (unless the person allowed one port only). A denial is
remembered for the whole session; an allowance for a sensitive target only bound to the
content fingerprint it was given for, so a changed hook or rc file is asked about again (TT1).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from boundary.violations import Violation, ViolationKind
from corral.decision import Decision, Scope
from corral.rules import host_rule_target
from corral.sensitivity import is_sensitive


@dataclass(frozen=True, slots=True)
class _Remembered:
    decision: Decision
    fingerprint: str | None


class SessionMemory:
    """What a person decided in one session, and the session's recent denials. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._decided: dict[tuple[str, str], _Remembered] = {}
        self._denials: deque[float] = deque()

    def recall(self, violation: Violation, fingerprint: str | None = None) -> Decision | None:
        """The session's decision for this target, or None when it must be decided again."""
        with self._lock:
            remembered = self._decided.get(violation.key()) or self._decided.get(_host_key(violation))
        if remembered is None:
            return None
        if not remembered.decision.allows:
            return remembered.decision
        if is_sensitive(violation) and (
            remembered.fingerprint is None or remembered.fingerprint != fingerprint
        ):
            return None
        return remembered.decision

    def remember(self, violation: Violation, decision: Decision, fingerprint: str | None = None) -> None:
        """Keep a session-wide answer (session, project or deny scope; once is never kept).

        A sensitive target's allowance is kept only bound to a content fingerprint: a changed hook or
        rc file is asked about again.
        """
        if decision.scope is Scope.ONCE:
            return
        if decision.allows and is_sensitive(violation) and fingerprint is None:
            return
        with self._lock:
            key = violation.key() if decision.allows and decision.one_port else _host_key(violation)
            self._decided[key] = _Remembered(decision, fingerprint)

    def note_denial(self) -> None:
        """Count one prompt answered with a denial (or unanswered) towards the burst limit."""
        with self._lock:
            self._denials.append(self._clock())

    def recent_denials(self, window_s: float) -> int:
        """Denials within the last `window_s` seconds."""
        now = self._clock()
        with self._lock:
            while self._denials and now - self._denials[0] > window_s:
                self._denials.popleft()
            return len(self._denials)

    def reset_burst(self) -> None:
        """Forget recent denials (the person started a new turn); remembered decisions stay."""
        with self._lock:
            self._denials.clear()


def _host_key(violation: Violation) -> tuple[str, str]:
    """A host's answer covers it on any port: the key drops the port (`net` only)."""
    if violation.kind is not ViolationKind.NET:
        return violation.key()
    return (violation.kind.value, host_rule_target(violation.target))
