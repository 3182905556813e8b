"""Landlock rules enforced by the real kernel: a child restricts itself and tries what the rules forbid.

Each probe runs in a fresh Python process (Landlock cannot be lifted once applied), and the host is
checked afterwards: a refused write leaves no file behind.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox import landlock

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    landlock.abi_version() == 0, reason="this kernel offers no Landlock (absent or disabled at boot)"
)

PROBE = textwrap.dedent(
    """
    import json, socket, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from sandbox import landlock
    spec = json.loads(sys.argv[2])
    rules = landlock.LandlockRules(
        readable=landlock.readable_except([Path(p) for p in spec["roots"]], [Path(p) for p in spec["hidden"]]),
        writable=tuple(Path(p) for p in spec["writable"]),
        connect_ports=tuple(spec["ports"]) if spec["ports"] is not None else None,
    )
    landlock.restrict_self(rules)
    if spec.get("pause"):
        print("restricted", flush=True)
        sys.stdin.readline()
    results = {}
    for name, (op, target) in spec["probes"].items():
        try:
            if op == "read":
                Path(target).read_text()
            elif op == "write":
                Path(target).write_text("written")
            elif op == "list":
                list(Path(target).iterdir())
            elif op == "connect":
                socket.create_connection(("127.0.0.1", int(target)), timeout=2).close()
            results[name] = "ok"
        except OSError as error:
            results[name] = error.strerror or str(error)
    print(json.dumps(results))
    """
)


def probe(spec: dict[str, object], *, meanwhile: Callable[[], object] | None = None) -> dict[str, str]:
    """Run the probes in a child restricted by `spec`; `meanwhile` runs on the host after the child has
    restricted itself and before it probes."""
    child = subprocess.Popen(
        [sys.executable, "-I", "-c", PROBE, str(REPO), json.dumps({**spec, "pause": meanwhile is not None})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    if meanwhile is not None:
        assert child.stdout.readline() == "restricted\n"
        meanwhile()
    stdout, stderr = child.communicate("go\n", timeout=30)
    assert child.returncode == 0, stderr
    result: dict[str, str] = json.loads(stdout)
    return result


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "file").write_text("visible")
    (tmp_path / "rw").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key").write_text("SECRET")
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    (tmp_path / "nested" / "deeper" / "token").write_text("SECRET")
    (tmp_path / "nested" / "sibling").write_text("visible")
    return tmp_path


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    allowed = socket.create_server(("127.0.0.1", 0))
    other = socket.create_server(("127.0.0.1", 0))
    try:
        yield allowed.getsockname()[1], other.getsockname()[1]
    finally:
        allowed.close()
        other.close()


def test_reads_follow_the_allow_list_and_carved_holes_stay_hidden(tree: Path) -> None:
    (tree / "link-to-secret").symlink_to(tree / "secret")
    results = probe(
        {
            "roots": ["/"],
            "hidden": [str(tree / "secret"), str(tree / "nested" / "deeper")],
            "writable": [],
            "ports": None,
            "probes": {
                "visible": ["read", str(tree / "ro" / "file")],
                "secret": ["read", str(tree / "secret" / "key")],
                "deep secret": ["read", str(tree / "nested" / "deeper" / "token")],
                "sibling": ["read", str(tree / "nested" / "sibling")],
                "list secret": ["list", str(tree / "secret")],
                "through a link": ["read", str(tree / "link-to-secret" / "key")],
            },
        }
    )
    assert results == {
        "visible": "ok",
        "secret": "Permission denied",
        "deep secret": "Permission denied",
        "sibling": "ok",
        "list secret": "Permission denied",
        "through a link": "Permission denied",
    }


def test_writes_only_where_granted_and_refused_writes_leave_nothing(tree: Path) -> None:
    results = probe(
        {
            "roots": ["/"],
            "hidden": [],
            "writable": [str(tree / "rw")],
            "ports": None,
            "probes": {
                "granted": ["write", str(tree / "rw" / "new")],
                "read-only dir": ["write", str(tree / "ro" / "new")],
                "overwrite": ["write", str(tree / "ro" / "file")],
            },
        }
    )
    assert results == {
        "granted": "ok",
        "read-only dir": "Permission denied",
        "overwrite": "Permission denied",
    }
    assert (tree / "rw" / "new").read_text() == "written"
    assert not (tree / "ro" / "new").exists()
    assert (tree / "ro" / "file").read_text() == "visible"


def test_a_file_created_later_in_a_carved_directory_is_not_covered(tree: Path) -> None:
    grants = landlock.carve(tree, [tree / "secret"])
    assert tree not in grants and tree / "secret" not in grants
    assert tree / "ro" in grants and tree / "nested" in grants
    results = probe(
        {
            "roots": [str(tree)],
            "hidden": [str(tree / "secret")],
            "writable": [],
            "ports": None,
            "probes": {
                "later": ["read", str(tree / "created-later")],
                "earlier": ["read", str(tree / "ro" / "file")],
            },
        },
        meanwhile=lambda: (tree / "created-later").write_text("SECRET"),
    )
    assert results == {"later": "Permission denied", "earlier": "ok"}


@pytest.mark.skipif(landlock.abi_version() < 4, reason="TCP rules need Landlock ABI 4 (Linux 6.7)")
def test_tcp_connect_only_to_the_granted_port(listeners: tuple[int, int]) -> None:
    allowed, other = listeners
    results = probe(
        {
            "roots": ["/"],
            "hidden": [],
            "writable": [],
            "ports": [allowed],
            "probes": {"allowed": ["connect", str(allowed)], "other": ["connect", str(other)]},
        }
    )
    assert results == {"allowed": "ok", "other": "Permission denied"}


def test_rules_the_kernel_cannot_enforce_are_refused_not_weakened() -> None:
    rules = landlock.LandlockRules(connect_ports=(3128,), minimum_abi=99)
    assert rules.missing(3) == [
        "Landlock ABI 99 (the kernel offers 3)",
        "TCP connect rules (Landlock ABI 4, Linux 6.7)",
    ]
    assert landlock.LandlockRules().missing(1) == []
    assert landlock.LandlockRules().missing(0) == ["Landlock ABI 1 (the kernel offers none)"]


def test_carve_refuses_a_directory_too_large_to_enumerate(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    for index in range(landlock.MAX_CARVED_ENTRIES + 1):
        (big / str(index)).touch()
    with pytest.raises(landlock.LandlockError, match="more than"):
        landlock.carve(tmp_path, [big / "0"])


def test_carve_of_a_hidden_root_grants_nothing(tmp_path: Path) -> None:
    assert landlock.carve(tmp_path, [tmp_path]) == []
    assert landlock.carve(tmp_path, [Path("/elsewhere")]) == [tmp_path]
