"""The Seatbelt runner's pieces that run everywhere: the unified-log reader (tagged denials into the same
violation kinds as on Linux), the approved paths of a re-run, and the profile section that makes them
writable. The runner itself runs for real in tests/test_seatbelt_macos.py (macOS only).

tests/data/seatbelt/log-show.ndjson holds `log show --style ndjson` events in the shape macOS 14 writes
them (the kernel's `Sandbox: PROCESS(PID) deny(1) OPERATION TARGET` line, with the profile's message
appended); lines of another command's tag, an untagged line and non-JSON lines are mixed in.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from boundary.violations import ViolationKind
from corral.sensitivity import RERUN_NOTE, why_it_matters
from sandbox import seatbelt
from sandbox.backend import BackendParams
from sandbox.policy import Policy, build_policy
from sandbox.seatbelt import ProtectedLocation, Refusal, SeatbeltParams
from sandbox.seatbelt_backend import SeatbeltBackend, rerun_paths
from sandbox.seatbelt_log import denials_from_ndjson, log_show_argv, read_denials, violations_from

SAMPLE = Path(__file__).parent / "data" / "seatbelt" / "log-show.ndjson"
TAG = "5f0c1a2b3c4d5e6f"
WS = Path("/Users/dev/Code/my.project")
HOME = Path("/Users/dev")


def _policy() -> Policy:
    return build_policy(workspace=WS, cwd=WS, home=HOME, environ={"PATH": "/usr/bin"})


def test_only_this_commands_tagged_denials_are_read() -> None:
    refusals = denials_from_ndjson(SAMPLE.read_text().splitlines(), TAG)
    assert [(r.process, r.pid, r.operation) for r in refusals] == [
        ("touch", 81427, "file-write-create"),
        ("sh", 81426, "file-write-data"),
        ("mv", 81428, "file-write-unlink"),
        ("cat", 81429, "file-read-data"),
        ("ls", 81430, "file-read-metadata"),
        ("cat", 81431, "file-read-data"),
        ("curl", 81432, "network-outbound"),
        ("python3", 81433, "mach-lookup"),
    ]
    assert refusals[0].target == "/Users/dev/outside.txt"  # the tag is not part of the target
    assert all("other-command" not in r.target and r.process != "mdworker" for r in refusals)
    assert denials_from_ndjson(SAMPLE.read_text().splitlines(), "0000111122223333")[0].target == (
        "/Users/dev/other-command.txt"
    )


def test_denials_become_the_same_kinds_as_on_linux() -> None:
    refusals = denials_from_ndjson(SAMPLE.read_text().splitlines(), TAG)
    denials = violations_from(refusals, _policy())
    found = [(v.kind, v.target, v.operation) for v in denials.violations]
    assert found == [
        (ViolationKind.FS_WRITE, "/Users/dev/outside.txt", "create"),
        (ViolationKind.FS_PROTECTED, f"{WS}/.git/hooks/pre-commit", "modify"),
        (ViolationKind.FS_PROTECTED, f"{WS}/.git", "delete"),
        (ViolationKind.FS_READ, "/Users/dev/.ssh/id_ed25519", "read"),  # once, though read twice
        (ViolationKind.NET, "93.184.216.34:443", "connect"),
    ]
    # A stat of a hidden path is not a read (as on Linux); a refused Mach service is a notice, not a prompt.
    assert denials.notices == ("Seatbelt refused mach-lookup com.apple.pasteboard.1 (python3)",)


def test_every_refused_write_says_before_the_answer_that_allowing_re_runs_the_command() -> None:
    refusals = denials_from_ndjson(SAMPLE.read_text().splitlines(), TAG)
    writes = [
        v for v in violations_from(refusals, _policy()).violations if v.kind is not ViolationKind.FS_READ
    ]
    assert all("re-runs the whole command with this path writable" in v.detail for v in writes[:3])
    # The prompt's why-it-matters line (what every front end shows before the answer) says it too.
    assert all(v.reruns_on_allow and RERUN_NOTE in why_it_matters(v) for v in writes[:3])
    assert RERUN_NOTE not in why_it_matters(dataclasses.replace(writes[0], reruns_on_allow=False))


def test_log_show_is_the_system_one_with_a_predicate_on_the_tag() -> None:
    since = datetime(2024, 5, 21, 8, 15, 0, tzinfo=UTC)
    argv = log_show_argv(TAG, since)
    assert argv[:4] == ["/usr/bin/log", "show", "--style", "ndjson"]
    assert argv[argv.index("--start") + 1] == "2024-05-21 08:15:00+0000"
    assert argv[argv.index("--predicate") + 1] == f'eventMessage CONTAINS "corral:{TAG}"'
    with pytest.raises(ValueError):
        log_show_argv('x" OR 1', since)


def test_the_reader_waits_for_the_log_to_settle_and_says_when_it_did_not() -> None:
    lines = SAMPLE.read_text().splitlines()
    answers = iter(["", "\n".join(lines[:2]), "\n".join(lines), "\n".join(lines)])
    refusals, lag = read_denials(TAG, datetime.now(UTC), run=lambda argv: next(answers), settle_s=0)
    assert len(refusals) == 8 and lag is None
    growing = iter("\n".join(lines[:n]) for n in range(1, 100))
    partial, lag = read_denials(
        TAG, datetime.now(UTC), run=lambda argv: next(growing), settle_s=0.01, deadline_s=0.05
    )
    assert lag is not None and "some refusals may be missing" in lag
    assert partial and all(isinstance(r, Refusal) for r in partial)


def test_an_approval_makes_exactly_the_allowed_write_paths_writable_for_the_re_run() -> None:
    refusals = denials_from_ndjson(SAMPLE.read_text().splitlines(), TAG)
    violations = violations_from(refusals, _policy()).violations
    assert rerun_paths(violations) == (
        Path("/Users/dev/outside.txt"),
        WS / ".git/hooks/pre-commit",
        WS / ".git",
    )
    reads_and_hosts = [v for v in violations if v.kind in (ViolationKind.FS_READ, ViolationKind.NET)]
    assert rerun_paths(reads_and_hosts) == ()


def test_approved_paths_come_last_in_the_profile_so_they_win_over_the_denials() -> None:
    base = SeatbeltParams(
        tag="t9",
        workspace=WS,
        temp_dir=Path("/private/tmp/corral-t9"),
        protected=(ProtectedLocation((".git", "hooks"), True),),
    )
    plain = seatbelt.generate_profile(base)
    assert "approved" not in plain
    approved = dataclasses.replace(base, approved=(WS / ".git/hooks/pre-commit", HOME / "out.txt"))
    profile = seatbelt.generate_profile(approved)
    assert profile.startswith(plain.rstrip("\n"))
    tail = profile[len(plain) :]
    assert f'(subpath "{WS}/.git/hooks/pre-commit")' in tail and f'(subpath "{HOME}/out.txt")' in tail
    assert tail.strip().splitlines()[1].startswith("(allow file-write*")


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal off macOS")
def test_off_macos_the_backend_says_it_cannot_run(tmp_path: Path) -> None:
    params = BackendParams(runtime_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    assert SeatbeltBackend.unavailable(params) == "Seatbelt runs only on macOS"
    assert not SeatbeltBackend.traits.captures_writes
