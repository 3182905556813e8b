"""A session is a place: what the commands of one Session share, made when its first command runs.

A live session (`corral shell`, `corral session`, the broker, `corral mcp`) gets the keeper's
namespaces (`sandbox.sessionns`: one network namespace, so a server left running by one command is
reachable from the next, and one pid namespace every sandboxed process of the session belongs to) and
a /tmp of its own (`sandbox.sessiontmp`, bounded by `sandbox.tmpquota`), both ended by `close()`.
One project's consecutive standalone `corral run`s share that project's standalone /tmp (kept on disk
between the runs, emptied after `sandbox.sessiontmp.STANDALONE_IDLE_S` idle); each still gets a network
namespace of its own, and its background processes end with it.

When the keeper cannot be made (user namespaces refused to corral itself) the session runs as before
(each command its own network namespace) and says so once; a /tmp that cannot be made is a setup
failure of the command (exit 125), never the host's /tmp.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sandbox.bwrap import SandboxSetupError
from sandbox.sessionns import SessionNamespace, SessionNamespaceError, SharedPlace
from sandbox.sessiontmp import SessionTmp, sweep
from sandbox.tmpquota import TmpQuota


class SessionPlace:
    """The shared place of one Session (see the module docstring)."""

    def __init__(self, cache_dir: Path, workspace: Path, *, live: bool, tmp_limit_bytes: int = 0) -> None:
        self._cache_dir = cache_dir
        self._tmp_limit = tmp_limit_bytes
        self._quota: TmpQuota | None = None
        self._workspace = workspace
        self.live = live
        self._namespace: SessionNamespace | None = None
        self._tmp: SessionTmp | None = None
        self._made = False
        self.notices: list[str] = []
        """Lines to show once (the keeper could not be made)."""
        self._lock = threading.Lock()
        self._closed = False

    def prepare_soon(self) -> None:
        """Make the place on a thread of its own now (a live session that just opened), so that the
        first command does not wait for it; failures surface at that command."""
        if not self.live or self._made:
            return

        def make() -> None:
            try:
                self.current()
            except SandboxSetupError:
                pass

        threading.Thread(target=make, name="corral-place", daemon=True).start()

    def take_notices(self) -> list[str]:
        """Lines to show now: the keeper could not be made, the /tmp bound cut a file."""
        quota = self._quota
        if quota is not None:
            self.notices.extend(quota.take_notices())
        taken, self.notices = self.notices, []
        return taken

    @property
    def namespace(self) -> SessionNamespace | None:
        return self._namespace

    def current(self) -> SharedPlace:
        """The place, made on first use. Raises SandboxSetupError when its /tmp cannot be made."""
        with self._lock:
            return self._current()

    def _current(self) -> SharedPlace:
        if self._closed:
            raise SandboxSetupError("this session has ended")
        if not self._made:
            self._made = True
            sweep(self._cache_dir)
            if self.live:
                try:
                    self._namespace = SessionNamespace()
                except (SessionNamespaceError, OSError) as error:
                    self.notices.append(
                        f"corral: this session's commands each get their own network ({error.strerror or error}); "
                        "a server left running is not reachable from the next command"
                    )
        if self._namespace is not None and not self._namespace.alive():
            raise SandboxSetupError(
                "the session's namespaces are gone (its keeper was killed); open a new session"
            )
        if self._tmp is None:
            try:
                self._tmp = (
                    SessionTmp.live(self._cache_dir)
                    if self.live
                    else SessionTmp.standalone(self._cache_dir, self._workspace)
                )
            except OSError as error:
                raise SandboxSetupError(f"could not make the session's /tmp: {error}") from error
            if self._tmp_limit > 0:
                self._quota = TmpQuota(self._tmp.path, self._tmp_limit)
        return SharedPlace(self._namespace, self._tmp.path)

    def close(self) -> None:
        """End the place: every process in the session's namespaces is killed, a live /tmp removed (a
        standalone one kept for the project's next run)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        self._closed = True
        if self._quota is not None:
            self._quota.stop()
            self._quota = None
        if self._namespace is not None:
            self._namespace.close()
            self._namespace = None
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None
