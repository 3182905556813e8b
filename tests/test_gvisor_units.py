"""The gVisor tier's pieces that need no runsc: finding runsc, its release check, its argv, and the
outer seccomp filter it runs under (the bwrap filter stays exactly what it was)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import gvisor, seccomp
from sandbox.gvisor import RunscUnavailable, find_runsc, parse_release, runsc_argv


@pytest.mark.parametrize(
    ("text", "release"),
    [
        ("runsc version 0.0~20240729.0\nspec: 1.0.2-dev\n", 20240729),
        ("runsc version release-20250512.0\nspec: 1.1.0-rc.1\n", 20250512),
        ("runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n", 20221219),
        ("runsc version 20240101\n", 20240101),
        ("runsc version VERSION_MISSING\n", None),
        ("", None),
    ],
)
def test_release_dates_are_read_from_each_packaging(text: str, release: int | None) -> None:
    assert parse_release(text) == release


def _fake_runsc(tmp_path: Path, version_line: str) -> Path:
    path = tmp_path / "runsc"
    path.write_text(f"#!/bin/sh\necho '{version_line}'\necho 'spec: 1.0.2-dev'\n")
    os.chmod(path, 0o755)
    return path


def test_a_2022_runsc_is_refused_with_the_fix(tmp_path: Path) -> None:
    old = _fake_runsc(tmp_path, "runsc version 0.0~20221219.0")
    with pytest.raises(RunscUnavailable) as refused:
        find_runsc((old,))
    message = str(refused.value)
    assert "20221219" in message and "older than 2024" in message
    assert "bookworm-backports" in message and "\n" not in message


def test_a_2024_runsc_is_accepted(tmp_path: Path) -> None:
    good = _fake_runsc(tmp_path, "runsc version 0.0~20240729.0")
    found = find_runsc((good,))
    assert found.path == good and found.release == 20240729
    assert found.version == "runsc version 0.0~20240729.0"


def test_no_runsc_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(RunscUnavailable, match="not installed; install runsc 2024"):
        find_runsc((tmp_path / "missing",))


def test_runsc_is_looked_up_in_system_directories_only() -> None:
    assert all(
        path.parent in (Path("/usr/bin"), Path("/usr/local/bin"), Path("/usr/sbin"))
        for path in gvisor.RUNSC_PATHS
    )


def test_the_command_keeps_its_environment_and_runsc_keeps_its_state_out_of_sight() -> None:
    runsc = Path("/usr/bin/runsc")
    argv = runsc_argv(runsc, ["sh", "-c", "echo hi"], {"TMPDIR": "/tmp", "HOME": "/h"})
    split = argv.index("--")
    outer, inner = argv[:split], argv[split + 1 :]
    assert outer[:3] == ["/usr/bin/env", "TMPDIR=/dev/shm", str(runsc)]
    assert "--rootless" in outer and "--network=host" in outer and "-force-overlay=false" in outer
    assert "--root=/dev/shm/.corral-runsc" in outer
    assert inner == ["/usr/bin/env", "TMPDIR=/tmp", "sh", "-c", "echo hi"]
    unset = runsc_argv(runsc, ["true"], {})
    assert unset[unset.index("--") + 1 :] == ["/usr/bin/env", "-u", "TMPDIR", "true"]


def test_the_bwrap_filter_is_unchanged_and_the_gvisor_filter_is_its_own() -> None:
    # The default filter's spec (and so its cache file name) is what it was before profiles existed.
    assert seccomp._spec() == seccomp._spec(seccomp.BWRAP_FILTER)
    assert "ptrace" in seccomp._spec() and ",1," not in seccomp._spec()
    relaxed = seccomp._spec(gvisor.GVISOR_FILTER)
    assert relaxed != seccomp._spec()
    assert "ptrace" not in relaxed.split("|")
    # Only AF_UNIX joins the socket families, and only ptrace leaves the denied list.
    assert set(seccomp._denied(seccomp.BWRAP_FILTER)) - set(seccomp._denied(gvisor.GVISOR_FILTER)) == {
        "ptrace"
    }
    assert seccomp._socket_families(gvisor.GVISOR_FILTER) - seccomp.SOCKET_FAMILIES == {seccomp.AF_UNIX}


def test_each_filter_is_cached_under_its_own_name(tmp_path: Path) -> None:
    try:
        default = seccomp.filter_path(tmp_path)
        relaxed = seccomp.filter_path(tmp_path, gvisor.GVISOR_FILTER)
    except seccomp.SeccompUnavailable as error:
        pytest.skip(f"libseccomp is not usable here: {error}")
    assert default != relaxed
    assert default.name.startswith("seccomp-") and relaxed.name.startswith("seccomp-gvisor-")
    assert default.read_bytes() != relaxed.read_bytes()


def test_the_version_is_read_once_per_binary(tmp_path: Path) -> None:
    binary = _fake_runsc(tmp_path, "runsc version 0.0~20240729.0")
    cache = tmp_path / "cache"
    assert find_runsc((binary,), cache_dir=cache).release == 20240729
    st = binary.stat()
    # The same identity (size, mtime, inode) but a binary that would now fail: the remembered version
    # is used, so no `runsc --version` ran.
    failing = "#!/bin/sh\nexit 1\n"
    binary.write_text(failing + "#" * (st.st_size - len(failing) - 1) + "\n")
    os.utime(binary, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert find_runsc((binary,), cache_dir=cache).release == 20240729
    # Another identity is asked again (and this one is refused).
    os.utime(binary, ns=(0, 0))
    with pytest.raises(RunscUnavailable, match="did not say its release"):
        find_runsc((binary,), cache_dir=cache)


def test_decoys_are_empty_for_bwrap_and_hold_one_newline_for_gvisor(tmp_path: Path) -> None:
    from sandbox.readwatch import reuse_or_build_decoys

    secret = tmp_path / "secret"
    secret.write_text("KEY\n")
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "id_rsa").write_text("KEY\n")
    slot = tmp_path / "slot"
    slot.mkdir()
    empty = reuse_or_build_decoys((secret, folder), slot)
    assert sorted(p.stat().st_size for p in empty.files) == [0, 0]
    # The same slot under gVisor: rebuilt (not reused) with one newline in each decoy file.
    filled = reuse_or_build_decoys((secret, folder), slot, gvisor.DECOY_CONTENT)
    assert [p.read_bytes() for p in filled.files] == [b"\n", b"\n"]
    assert all(p.stat().st_mode & 0o777 == 0o444 for p in filled.files)
    assert sorted(p.stat().st_size for p in reuse_or_build_decoys((secret, folder), slot).files) == [0, 0]
