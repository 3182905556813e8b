"""A workspace under /tmp (`sandbox.bwrap._private_tmp_ancestors`), with the real bubblewrap, as root
and as an unprivileged user. The sandbox's /tmp is a private tmpfs; the directories between it and the
workspace used to exist only there, so a write next to the workspace (`../out.tar`) vanished without a
word. They are captured now: such a write is an `fs-write` violation (denied here, nothing on the host),
while /tmp itself stays private scratch. The `actor` fixture's workspace lives in /tmp already.
"""

from __future__ import annotations

from tests.conftest import Actor


def test_write_beside_a_workspace_in_tmp_is_reported_not_dropped(actor: Actor) -> None:
    assert str(actor.workspace).startswith("/tmp/")
    sibling = actor.base / "sibling.txt"
    result = actor.sandboxed("echo x > ../sibling.txt && cat ../sibling.txt && echo kept > control.txt")
    assert result.returncode == 77, result.stderr
    assert "x" in result.stdout
    assert f"denied fs-write {sibling}" in result.stderr
    assert not sibling.exists()
    assert (actor.workspace / "control.txt").read_text() == "kept\n"


def test_tmp_itself_stays_private_scratch(actor: Actor) -> None:
    result = actor.sandboxed("echo x > /tmp/corral-scratch-probe && cat /tmp/corral-scratch-probe")
    assert result.returncode == 0, result.stderr
    assert "corral: denied" not in result.stderr
