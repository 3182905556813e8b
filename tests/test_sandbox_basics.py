"""The foundation, end to end with the real bubblewrap: workspace writes land, everything else is
captured and denied, and the host is checked afterwards."""

from __future__ import annotations

import json

from tests.conftest import SECRET, Actor


def test_workspace_write_lands_on_host(actor: Actor) -> None:
    result = actor.sandboxed("echo hi > out.txt")
    assert result.returncode == 0, result.stderr
    assert (actor.workspace / "out.txt").read_text() == "hi\n"


def test_exit_status_is_the_commands(actor: Actor) -> None:
    assert actor.sandboxed("exit 7").returncode == 7


def test_write_outside_workspace_is_captured_and_discarded(actor: Actor) -> None:
    target = actor.outside / "x"
    result = actor.sandboxed(f"touch {target} ~/x")
    assert not target.exists()
    assert not (actor.home / "x").exists()
    assert result.returncode == 77
    assert "denied fs-write ~/x" in result.stderr


def test_report_lists_the_violation(actor: Actor) -> None:
    report = actor.base / "report.json"
    actor.chown_tree(actor.base)
    result = actor.run(
        "run", "--on-violation", "deny", "--report", str(report), "--", "touch", str(actor.home / "x")
    )
    assert result.returncode == 77, result.stderr
    data = json.loads(report.read_text())
    assert data["exit_code"] == 0
    assert [(v["kind"], v["target"], v["operation"], v["decision"]) for v in data["violations"]] == [
        ("fs-write", str(actor.home / "x"), "create", "deny")
    ]


def test_credentials_unreadable_and_reported(actor: Actor) -> None:
    result = actor.sandboxed("cat ~/.ssh/id_rsa ~/.aws/credentials ~/.netrc; echo end")
    assert SECRET not in result.stdout + result.stderr
    assert "denied fs-read ~/.ssh/id_rsa" in result.stderr


def test_secrets_in_environment_never_pass(actor: Actor) -> None:
    result = actor.sandboxed("env; cat /proc/self/environ")
    assert SECRET not in result.stdout
    assert "GITHUB_TOKEN" not in result.stdout
    assert "HOME=" in result.stdout


def test_protected_path_write_is_denied(actor: Actor) -> None:
    result = actor.sandboxed("echo 'touch /tmp/pwned' > .git/hooks/pre-commit; echo x > .envrc")
    assert not (actor.workspace / ".git/hooks/pre-commit").exists()
    assert not (actor.workspace / ".envrc").exists()
    assert "denied fs-protected" in result.stderr


def test_no_command_is_a_usage_error(actor: Actor) -> None:
    result = actor.run("run")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1


def test_missing_project_is_refused(actor: Actor) -> None:
    result = actor.run("run", "--project", str(actor.base / "nope"), "--", "true")
    assert result.returncode == 2
    assert "no such directory" in result.stderr


def test_home_as_workspace_is_refused(actor: Actor) -> None:
    result = actor.run("run", "--project", str(actor.home), "--", "true")
    assert result.returncode == 2
    assert "home directory" in result.stderr


def test_tmp_is_private(actor: Actor) -> None:
    marker = f"/tmp/corral-private-{actor.name}"
    result = actor.sandboxed(f"echo x > {marker} && cat {marker}")
    assert result.returncode == 0, result.stderr
    from pathlib import Path

    assert not Path(marker).exists()


def test_system_writes_are_captured_even_as_root(actor: Actor) -> None:
    from pathlib import Path

    target = Path("/etc") / f"corral-test-{actor.base.name}"
    result = actor.sandboxed(f"echo x > {target}")
    assert not target.exists()
    if actor.uid == 0:
        assert result.returncode == 77
        assert f"denied fs-write {target}" in result.stderr
    else:
        assert result.returncode != 0


def test_damaged_ledger_is_one_clear_line_and_is_kept(actor: Actor) -> None:
    ledger = actor.state_home / ".local/share/corral/ledger.sqlite3"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.write_bytes(b"not a database")
    actor.chown_tree(actor.state_home / ".local")
    result = actor.sandboxed("echo ran > ran.txt")
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and "ledger.sqlite3" in result.stderr
    assert ledger.read_bytes() == b"not a database"
    assert not (actor.workspace / "ran.txt").exists()
