"""The trust store: private files, canonical keys, atomic writes, concurrency and kill-safety."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trust.store import Decision, StoredFile, TrustError, TrustRecord, TrustStore, canonical_root

REPO = Path(__file__).resolve().parent.parent


def _record(root: Path, fingerprint: str = "f" * 64, decision: Decision = Decision.TRUSTED) -> TrustRecord:
    files = (StoredFile(".corral/config.toml", "a" * 64, b"[paths]\n"),)
    return TrustRecord(str(root.resolve()), fingerprint, decision, time.time(), "0.1.0", files, None)


def test_round_trip_and_private_modes(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "data" / "corral" / "trust")
    project = tmp_path / "p"
    project.mkdir()
    record = _record(project)
    store.put(record)
    assert store.get(project) == record
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "data" / "corral").st_mode) == 0o700
    path = store.record_path(record.root)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.records() == [record]
    assert store.remove(project) is True
    assert store.get(project) is None
    assert store.remove(project) is False


def test_home_and_root_can_never_be_trusted(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trust")
    with pytest.raises(TrustError, match="home directory"):
        canonical_root(os.environ["HOME"])
    with pytest.raises(TrustError, match="root directory"):
        canonical_root("/")
    with pytest.raises(TrustError):
        store.put(TrustRecord("/", "f", Decision.TRUSTED, 0.0, "0", ()))
    link = tmp_path / "homelink"
    link.symlink_to(os.environ["HOME"])
    with pytest.raises(TrustError, match="home directory"):
        canonical_root(link)


def test_key_is_the_real_path_of_the_directory_itself(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trust")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    store.put(_record(trusted))
    # a symlink to the trusted directory is the same directory
    alias = tmp_path / "alias"
    alias.symlink_to(trusted)
    assert store.get(alias) is not None
    # a directory whose .git file or commondir points at the trusted one is a different directory
    other = tmp_path / "other"
    other.mkdir()
    (other / ".git").write_text(f"gitdir: {trusted}\n")
    (other / "commondir").write_text(str(trusted))
    assert store.get(other) is None
    assert store.get(trusted / "sub") is None


def test_damaged_or_mismatched_records_count_as_absent(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trust")
    project, other = tmp_path / "p", tmp_path / "o"
    project.mkdir()
    other.mkdir()
    store.put(_record(project))
    path = store.record_path(str(project.resolve()))
    path.write_text("{not json")
    assert store.get(project) is None
    # a record copied under another project's key does not apply there
    store.put(_record(project))
    other_path = store.record_path(str(other.resolve()))
    other_path.write_bytes(path.read_bytes())
    assert store.get(other) is None
    data = json.loads(path.read_text())
    data["decision"] = "maybe"
    path.write_text(json.dumps(data))
    assert store.get(project) is None


def test_store_directory_must_not_be_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "trust").symlink_to(real)
    project = tmp_path / "p"
    project.mkdir()
    with pytest.raises(TrustError, match="not a plain directory"):
        TrustStore(tmp_path / "trust").put(_record(project))


_WORKER = """
import os, sys, time
from pathlib import Path
from trust.store import Decision, StoredFile, TrustRecord, TrustStore
store = TrustStore(sys.argv[1])
projects = sys.argv[3:]
worker = int(sys.argv[2])
content = os.urandom(64 * 1024)
for round in range(40):
    for index, project in enumerate(projects):
        if (round + index + worker) % 3 == 2:
            store.remove(project)
        else:
            files = (StoredFile(".corral/config.toml", str(worker), content),)
            store.put(TrustRecord(project, f"{worker}-{round}", Decision.TRUSTED, time.time(), "0", files))
"""


def test_concurrent_grant_and_revoke_leave_a_valid_store(tmp_path: Path) -> None:
    store_dir = tmp_path / "trust"
    projects = []
    for index in range(3):
        project = tmp_path / f"p{index}"
        project.mkdir()
        projects.append(str(project.resolve()))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(store_dir), str(n), *projects], env=env)
        for n in range(4)
    ]
    for worker in workers:
        assert worker.wait(timeout=60) == 0
    store = TrustStore(store_dir)
    names = sorted(p.name for p in store_dir.iterdir())
    assert all(n == ".lock" or (n.endswith(".json") and not n.startswith(".tmp")) for n in names), names
    for entry in store_dir.glob("*.json"):
        record = store._read(entry)
        assert record is not None and record.root in projects
        assert record.files[0].content is not None and len(record.files[0].content) == 64 * 1024


_KILLED_WRITER = """
import os, sys, time
from trust.store import Decision, StoredFile, TrustRecord, TrustStore
store = TrustStore(sys.argv[1])
content = os.urandom(200 * 1024)
n = 0
print("ready", flush=True)
while True:
    n += 1
    files = (StoredFile(".corral/config.toml", "x", content),)
    store.put(TrustRecord(sys.argv[2], f"fp-{n}", Decision.TRUSTED, time.time(), "0", files))
"""


def test_kill_during_write_leaves_a_valid_store(tmp_path: Path) -> None:
    store_dir = tmp_path / "trust"
    project = tmp_path / "p"
    project.mkdir()
    root = str(project.resolve())
    store = TrustStore(store_dir)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for attempt in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(store_dir), root], env=env, stdout=subprocess.PIPE
        )
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 10
        while store.get(project) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.02 + attempt * 0.03)  # then kill somewhere in the middle of later writes
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        record = store.get(project)
        assert record is not None, "a killed writer must leave the previous or the new record"
        assert record.fingerprint.startswith("fp-")
        assert record.files[0].content is not None and len(record.files[0].content) == 200 * 1024
    store.clean_temporaries()
    assert not list(store_dir.glob(".tmp-*"))
    assert store.get(project) is not None
