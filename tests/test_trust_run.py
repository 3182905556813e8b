"""Issue 4 end to end: `corral run` reads nothing from the repo before trust; after `corral trust grant`
the hooks run inside the sandbox; one changed byte withdraws trust."""

from __future__ import annotations

from tests.conftest import Actor


def _plant_hooks(actor: Actor) -> None:
    corral_dir = actor.workspace / ".corral"
    (corral_dir / "hooks").mkdir(parents=True)
    (corral_dir / "hooks" / "before.sh").write_text(
        f"touch {actor.workspace}/hook-ran\ntouch {actor.home}/hook-outside\n"
    )
    (corral_dir / "config.toml").write_text(
        '[hooks]\nbefore_command = ".corral/hooks/before.sh"\n\n[env]\nPROJECT_FLAG = "on"\n'
    )
    actor.chown_tree(actor.base)


def test_nothing_runs_before_trust_and_hooks_run_sandboxed_after(actor: Actor) -> None:
    _plant_hooks(actor)
    first = actor.sandboxed("echo $PROJECT_FLAG > flag.txt")
    assert first.returncode == 0, first.stderr
    assert "not trusted" in first.stderr
    assert not (actor.workspace / "hook-ran").exists()
    assert (actor.workspace / "flag.txt").read_text() == "\n"
    shown = actor.run("trust", "show")
    assert "before.sh" in shown.stdout
    assert not (actor.workspace / "hook-ran").exists()
    assert actor.run("trust", "status").returncode == 1
    assert actor.run("run", "--require-trust", "--", "true").returncode == 3

    granted = actor.run("trust", "grant")
    assert granted.returncode == 0, granted.stderr
    assert actor.run("trust", "status").returncode == 0
    second = actor.sandboxed("echo $PROJECT_FLAG > flag.txt")
    assert (actor.workspace / "hook-ran").exists()  # the hook ran, inside the sandbox
    assert not (actor.home / "hook-outside").exists()  # its write outside the workspace was caught
    assert "denied fs-write ~/hook-outside" in second.stderr
    assert (actor.workspace / "flag.txt").read_text() == "on\n"

    config = actor.workspace / ".corral" / "config.toml"
    config.write_text(config.read_text().replace('"on"', '"oN"'))
    assert actor.run("trust", "status").returncode == 1
    (actor.workspace / "hook-ran").unlink()
    third = actor.sandboxed("true")
    assert "changed" in third.stderr
    assert not (actor.workspace / "hook-ran").exists()
    diff = actor.run("trust", "show")
    assert '-PROJECT_FLAG = "on"' in diff.stdout and '+PROJECT_FLAG = "oN"' in diff.stdout


def test_sandboxed_command_cannot_plant_trusted_config(actor: Actor) -> None:
    result = actor.sandboxed("mkdir -p .corral && echo '[env]' > .corral/config.toml")
    assert not (actor.workspace / ".corral").exists()
    assert "denied fs-protected" in result.stderr
