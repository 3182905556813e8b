"""Where bubblewrap cannot start because the kernel refuses it user namespaces (Ubuntu 24.04's AppArmor
does this to unprivileged ones), `auto` runs commands under Landlock and says so: why bwrap could not run,
what Landlock does not cover. The refusal is real: `tests/no_userns.py` has the kernel refuse every new
user namespace to corral and all it starts, and the host is checked afterwards."""

from __future__ import annotations

import pytest

from tests.conftest import LANDLOCK_MISSING, Actor
from tests.no_userns import refuse_user_namespaces as no_userns

pytestmark = pytest.mark.skipif(LANDLOCK_MISSING is not None, reason=f"Landlock backend: {LANDLOCK_MISSING}")


def test_run_falls_back_to_landlock_and_says_why(actor: Actor) -> None:
    outside = actor.outside / "escaped"
    result = actor.run(
        "run", "--", "sh", "-c", f"echo hi > made.txt; touch {outside}; echo ran", preexec=no_userns
    )
    assert "ran" in result.stdout, result.stderr
    assert "bwrap cannot run (bubblewrap cannot create a user namespace here" in result.stderr
    assert "so commands run under the landlock backend (automatic fallback)" in result.stderr
    assert "cannot protect paths in the workspace" in result.stderr
    assert (actor.workspace / "made.txt").read_text() == "hi\n"
    assert not outside.exists()
    assert "Permission denied" in result.stderr


def test_doctor_names_the_fallback_and_what_it_cannot_do(actor: Actor) -> None:
    result = actor.run("doctor", preexec=no_userns)
    assert "FAIL user namespaces" in result.stdout
    assert "ok   backend: Landlock" in result.stdout
    assert "landlock: automatic fallback, because bwrap cannot run (bubblewrap cannot create" in result.stdout
    assert "cannot (compared with bwrap): cannot protect paths in the workspace" in result.stdout
    assert result.returncode == 1  # bwrap's problem is a problem even with a fallback running
    normal = actor.run("doctor")
    assert "backend: bubblewrap" in normal.stdout and "bwrap: the default" in normal.stdout


def test_policy_names_the_fallback(actor: Actor) -> None:
    result = actor.run("policy", preexec=no_userns)
    assert result.returncode == 0, result.stderr
    assert "backend: Landlock" in result.stdout
    assert "automatic fallback, because bwrap cannot run" in result.stdout
    assert "(read-write, written directly: this backend captures nothing)" in result.stdout
    assert "applied after each command" in actor.run("policy").stdout  # bwrap's
