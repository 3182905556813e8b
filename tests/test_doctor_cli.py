"""`corral doctor` checks the user and project configs and the ledger, rules and trust stores: each
problem is one line naming the file (and key) with its fix, and the exit status is 1; nothing is
changed. `corral stats` on a damaged ledger is one line naming the file, exit 125."""

from __future__ import annotations

import sqlite3

from tests.conftest import Actor


def _state(actor: Actor) -> dict[str, str]:
    return {
        "config": str(actor.state_home / ".config/corral/config.toml"),
        "data": str(actor.state_home / ".local/share/corral"),
    }


def test_doctor_passes_on_a_clean_setup(actor: Actor) -> None:
    assert actor.sandboxed("true").returncode == 0  # creates the ledger and rules stores
    result = actor.run("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("user config", "project config", "ledger", "rules", "trust store"):
        assert f"ok   {name}:" in result.stdout
    assert "FAIL" not in result.stdout


def test_each_damaged_file_is_one_problem_with_its_fix(actor: Actor) -> None:
    assert actor.sandboxed("true").returncode == 0
    paths = _state(actor)
    config = actor.state_home / ".config/corral/config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[network]\nallow = ["*.com"]\n')
    ledger = actor.state_home / ".local/share/corral/ledger.sqlite3"
    ledger.write_bytes(b"not a database at all" * 100)
    trust = actor.state_home / ".local/share/corral/trust"
    trust.mkdir(mode=0o700, exist_ok=True)
    record = trust / ("0" * 64 + ".json")
    record.write_text('{"format": "something else"}')
    rules = actor.state_home / ".local/share/corral/rules.sqlite3"
    db = sqlite3.connect(rules)
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    (actor.workspace / ".corral").mkdir()
    (actor.workspace / ".corral" / "config.toml").write_text("[paths]\nwritable = ['/etc']\n")
    actor.chown_tree(actor.base)
    actor.chown_tree(actor.state_home)
    before = {path: path.read_bytes() for path in (config, ledger, record, rules)}

    result = actor.run("doctor")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    failed = {line.split(":")[0][5:]: index for index, line in enumerate(lines) if line.startswith("FAIL ")}
    assert set(failed) == {"user config", "project config", "ledger", "rules", "trust store"}, result.stdout
    for name, index in failed.items():
        assert lines[index + 1].startswith("     fix: "), (name, lines[index + 1])
    assert f"{paths['config']}: network.allow" in lines[failed["user config"]]
    assert ".corral/config.toml: key 'paths.writable[0]'" in lines[failed["project config"]]
    assert str(ledger) in lines[failed["ledger"]] and "mv " in lines[failed["ledger"] + 1]
    assert "newer than this corral" in lines[failed["rules"]]
    assert str(record) in lines[failed["trust store"]]
    assert lines[-1] == "5 problems found"
    assert {path: path.read_bytes() for path in before} == before, "doctor changed a file"

    stats = actor.run("stats")
    assert stats.returncode == 125  # damaged corral state (corral.errors.StateError)
    assert stats.stdout == ""
    assert stats.stderr.count("\n") == 1
    assert stats.stderr.startswith(f"corral: {ledger}: not a usable ledger: ")
