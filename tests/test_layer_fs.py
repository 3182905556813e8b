"""The fd-relative layer primitives on real directories (no sandbox needed): a hostile layer shape —
symlinks swapped in after the scan, 5,000-deep chains, mode-000 directories, a clean-up that fails —
never reaches outside the layer, never recurses, and never hands out a dirty slot."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from boundary.violations import Change, ChangeOp
from corral.locations import Locations
from sandbox.apply import apply_changes
from sandbox.bwrap import SandboxLayout
from sandbox.capture import CaptureLayer, read_changes
from sandbox.layerfs import MAX_DEPTH, LayerRefused, open_beneath, open_root, remove_entry
from sandbox.readwatch import DecoySet
from sandbox.runner import _reset_or_discard
from sandbox.slots import acquire_slot


def _chain(top: Path, depth: int) -> None:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("a", dir_fd=fd)
            next_fd = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_remove_entry_of_a_5000_deep_chain_is_iterative_and_bounded(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    _chain(tmp_path / "x", 5000)
    before = _open_fds()
    root = open_root(tmp_path)
    try:
        remove_entry(root, "x")
    finally:
        os.close(root)
    assert not (tmp_path / "x").exists()
    assert os.listdir(tmp_path) == []  # the subtrees renamed up on the way are gone too
    assert _open_fds() == before


def test_remove_entry_never_follows_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("host\n")
    layer = tmp_path / "layer"
    (layer / "d").mkdir(parents=True)
    (layer / "d" / "link").symlink_to(victim)
    (layer / "top-link").symlink_to(victim)
    root = open_root(tmp_path)
    try:
        remove_entry(root, "layer")
    finally:
        os.close(root)
    assert (victim / "keep").read_text() == "host\n"


def test_mode_000_directories_are_removed(tmp_path: Path) -> None:
    (tmp_path / "l" / "a" / "b").mkdir(parents=True)
    (tmp_path / "l" / "a" / "b" / "f").write_text("x")
    os.chmod(tmp_path / "l" / "a" / "b", 0)
    os.chmod(tmp_path / "l" / "a", 0)
    root = open_root(tmp_path)
    try:
        remove_entry(root, "l")
    finally:
        os.close(root)
    assert not (tmp_path / "l").exists()


def test_open_beneath_refuses_links_and_dotdot(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    root = open_root(tmp_path)
    try:
        with pytest.raises(OSError) as caught:
            open_beneath(root, ("link", "f"), os.O_RDONLY)
        assert caught.value.errno == errno.ELOOP
        with pytest.raises(LayerRefused):
            open_beneath(root, ("real", "..", "real"), os.O_RDONLY)
        os.close(open_beneath(root, ("real", "f"), os.O_RDONLY))
    finally:
        os.close(root)


def test_scan_refuses_a_tree_deeper_than_the_bound_as_one_error(tmp_path: Path) -> None:
    (tmp_path / "upper").mkdir()
    (tmp_path / "lower").mkdir()
    _chain(tmp_path / "upper", MAX_DEPTH + 50)
    layer = CaptureLayer(target=tmp_path / "ws", lower=tmp_path / "lower", upper=tmp_path / "upper")
    with pytest.raises(LayerRefused) as caught:
        read_changes(layer)
    assert "deeper than" in str(caught.value.strerror)


def test_a_directory_swapped_for_a_link_after_the_scan_moves_nothing_of_the_host(tmp_path: Path) -> None:
    """The race, made deterministic: scan, then swap the captured directory for a symlink to a host
    directory holding files of the same names, then apply. Nothing of the host directory moves."""
    upper, lower, ws, victim = (tmp_path / n for n in ("upper", "lower", "ws", "victim"))
    for path in (upper / "d", lower, ws, victim):
        path.mkdir(parents=True)
    (upper / "d" / "f").write_text("captured\n")
    (victim / "f").write_text("host secret\n")
    layer = CaptureLayer(target=ws, lower=lower, upper=upper)
    changes = read_changes(layer)
    assert [c.op.value for c in changes] == ["mkdir", "create"]
    os.rename(upper / "d", tmp_path / "aside")
    (upper / "d").symlink_to(victim)
    outcome = apply_changes(ws, changes, exclusive=True)
    assert (victim / "f").read_text() == "host secret\n"
    assert not (ws / "d" / "f").exists()
    assert [c.op.value for c, _reason in outcome.refused] == ["create"]


def test_a_file_swapped_after_the_scan_is_refused_by_inode(tmp_path: Path) -> None:
    upper, lower, ws = (tmp_path / n for n in ("upper", "lower", "ws"))
    for path in (upper, lower, ws):
        path.mkdir()
    (upper / "f").write_text("scanned\n")
    changes = read_changes(CaptureLayer(target=ws, lower=lower, upper=upper))
    os.rename(upper / "f", tmp_path / "kept")  # kept: its inode number cannot be reused meanwhile
    (upper / "f").write_text("swapped in later\n")
    outcome = apply_changes(ws, changes, exclusive=True)
    assert not (ws / "f").exists()
    assert "changed after it was scanned" in outcome.refused[0][1]


def test_chmod_of_a_hard_linked_host_file_is_refused(tmp_path: Path) -> None:
    upper, lower, outside = (tmp_path / n for n in ("upper", "ws", "outside"))
    for path in (upper, lower, outside):
        path.mkdir()
    (outside / "target").write_text("x\n")
    os.chmod(outside / "target", 0o600)
    os.link(outside / "target", lower / "f")
    (upper / "f").write_text("x\n")
    os.chmod(upper / "f", 0o755)
    changes = read_changes(CaptureLayer(target=lower, lower=lower, upper=upper))
    assert [c.op.value for c in changes] == ["chmod"]
    outcome = apply_changes(lower, changes, exclusive=True)
    assert os.stat(outside / "target").st_mode & 0o777 == 0o600
    assert "hard links" in outcome.refused[0][1]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs to make removal fail needs root")
def test_a_slot_that_cannot_be_emptied_is_discarded_never_reused(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    slot = acquire_slot(runtime)
    upper = slot.path / "layers" / "k" / "upper"
    (upper / "busy").mkdir(parents=True)
    (upper / "junk").write_text("left by the command\n")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(upper / "busy")], check=True)
    try:
        layout = SandboxLayout(
            run_dir=slot.path,
            mounts=[],
            layers=[CaptureLayer(target=tmp_path / "ws", lower=tmp_path / "ws", upper=upper)],
            decoys=DecoySet(slot.path / "decoys"),
            ignore_dirs=frozenset(),
            kept=frozenset(),
        )
        _reset_or_discard(layout, slot)
        discarded = [n for n in os.listdir(runtime) if n.startswith("discarded-slot-0-")]
        assert len(discarded) == 1
        fresh = acquire_slot(runtime)
        assert fresh.path == runtime / "slot-0"
        assert sorted(os.listdir(fresh.path)) == ["lock"]  # a new, empty slot
        fresh.release()
    finally:
        subprocess.run(["umount", "-l", str(next(runtime.glob("discarded-*")) / "layers/k/upper/busy")])


def test_runtime_dir_without_xdg_is_keyed_by_uid_and_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "a"))
    first = Locations.default().runtime_dir
    monkeypatch.setenv("HOME", str(tmp_path / "b"))
    second = Locations.default().runtime_dir
    assert first != second
    assert first.parent == Path("/tmp") and first.name.startswith(f"corral-{os.getuid()}-")


def test_many_directories_are_applied_with_a_bounded_number_of_descriptors(tmp_path: Path) -> None:
    """More directories than apply keeps open (its least recently used are closed): every file lands
    with its content and a safe mode, nothing of the layer is left behind, and no descriptor leaks."""
    upper, ws = tmp_path / "upper", tmp_path / "ws"
    ws.mkdir()
    for index in range(150):
        directory = upper / f"d{index % 150}" / "sub"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index}").write_text(f"{index}\n")
        (upper / f"d{index % 150}" / "top").write_text("top\n")
    os.chmod(upper / "d7" / "sub" / "f7", 0o1755)  # the sticky bit is never applied
    changes = read_changes(CaptureLayer(target=ws, lower=ws, upper=upper))
    before = _open_fds()
    outcome = apply_changes(ws, changes, exclusive=True)
    assert _open_fds() == before
    assert outcome.refused == ()
    for index in range(150):
        assert (ws / f"d{index}" / "sub" / f"f{index}").read_text() == f"{index}\n"
        assert (ws / f"d{index}" / "top").read_text() == "top\n"
    assert os.stat(ws / "d7" / "sub" / "f7").st_mode & 0o7777 == 0o755
    assert not any(path.is_file() for path in upper.rglob("*"))  # moved, not copied


def test_a_file_created_on_the_host_after_the_scan_is_a_conflict_when_moving(tmp_path: Path) -> None:
    """The move of a new file never replaces what appeared at its name since the scan (an atomic
    no-replace rename): the host's file stays and the change is refused as a conflict."""
    upper, ws = tmp_path / "upper", tmp_path / "ws"
    (upper / "d").mkdir(parents=True)
    ws.mkdir()
    (upper / "d" / "a").write_text("captured a\n")
    (upper / "d" / "b").write_text("captured b\n")
    changes = read_changes(CaptureLayer(target=ws, lower=ws, upper=upper))
    (ws / "d").mkdir()
    (ws / "d" / "b").write_text("the person's\n")
    outcome = apply_changes(ws, changes, exclusive=True)
    assert (ws / "d" / "a").read_text() == "captured a\n"
    assert (ws / "d" / "b").read_text() == "the person's\n"
    assert [(c.path.name, reason.split(":")[0]) for c, reason in outcome.refused] == [("b", "conflict")]


def test_a_directory_deleted_by_one_change_is_not_written_into_by_a_later_one(tmp_path: Path) -> None:
    """Applying keeps directory fds between changes; a deletion drops them, so a change after the
    directory was removed and made again lands in the new directory (through a kept fd of the removed
    one it would fail)."""
    upper, ws = tmp_path / "upper", tmp_path / "ws"
    (upper / "d").mkdir(parents=True)
    ws.mkdir()
    (upper / "d" / "one").write_text("one\n")
    (upper / "d" / "two").write_text("two\n")
    scanned = {c.path.name: c for c in read_changes(CaptureLayer(target=ws, lower=ws, upper=upper))}
    changes = [scanned["d"], scanned["one"], Change(ws / "d", ChangeOp.DELETE), scanned["d"], scanned["two"]]
    outcome = apply_changes(ws, changes, exclusive=True)
    assert outcome.refused == ()
    assert sorted(os.listdir(ws / "d")) == ["two"]
    assert (ws / "d" / "two").read_text() == "two\n"
