"""The Seatbelt profile generated from a policy: golden files (reviewed by a person), and the regexes'
meaning checked by running them. These run everywhere; tests/test_seatbelt_macos.py runs the profiles
under the real sandbox-exec on macOS.

Regenerate the golden files after a deliberate change with CORRAL_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sandbox import seatbelt
from sandbox.egress.environment import proxy_environment
from sandbox.policy import NetworkAccess, build_policy
from sandbox.seatbelt import ProtectedLocation, SeatbeltParams

GOLDEN = Path(__file__).parent / "golden" / "seatbelt"
WS = Path("/Users/dev/Code/my.project")

HOOKS = ProtectedLocation((".git", "hooks"), True)
ENVRC = ProtectedLocation((".envrc",), False)
WRAPPER = ProtectedLocation(("gradle", "wrapper", "*.jar"), False)

CASES = {
    "minimal": SeatbeltParams(tag="t1", workspace=WS, temp_dir=Path("/private/tmp/corral-t1")),
    "offline-protected": SeatbeltParams(
        tag="t2",
        workspace=WS,
        temp_dir=Path("/private/tmp/corral-t2"),
        hidden=(Path("/Users/dev/.ssh"), Path("/Users/dev/.aws"), Path("/Users/dev/Library/Keychains")),
        protected=(HOOKS, ENVRC, WRAPPER),
        protected_roots=(WS / ".venv" / "lib" / "corral",),
    ),
    "proxy": SeatbeltParams(
        tag="t3",
        workspace=WS,
        temp_dir=Path("/private/tmp/corral-t3"),
        hidden=(Path("/Users/dev/.netrc"),),
        protected=(HOOKS,),
        proxy_port=53128,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_profile_matches_its_reviewed_golden_file(name: str) -> None:
    profile = seatbelt.generate_profile(CASES[name])
    golden = GOLDEN / f"{name}.sb"
    if os.environ.get("CORRAL_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(profile)
    assert profile == golden.read_text()


def test_the_profile_denies_by_default_with_the_commands_tag_on_every_denial() -> None:
    profile = seatbelt.generate_profile(CASES["offline-protected"])
    assert profile.splitlines()[2] == '(deny default (with message "corral:t2"))'
    denials = [line for line in profile.splitlines() if line.startswith("(deny ")]
    assert denials and all('(with message "corral:t2")' in line for line in denials)
    assert "network-outbound" not in profile  # no proxy: no network at all
    assert "appleevent" not in profile and "lsopen" not in profile  # refused by the default
    # Launch Services through its Mach services would start an application outside the sandbox.
    assert "launchservices" not in profile and "lsd." not in profile


def test_network_is_the_proxy_port_on_loopback_only() -> None:
    """TCP to the proxy's port on loopback, nothing else: no other port or host, no Unix socket (outbound
    or bound), no inbound, no DNS service (the proxy resolves names)."""
    profile = seatbelt.generate_profile(CASES["proxy"])
    allows = [line for line in profile.splitlines() if line.startswith("(allow")]
    outbound = [line for line in allows if "network" in line]
    assert outbound == ['(allow network-outbound (remote tcp "localhost:53128"))']
    assert "unix-socket" not in profile and "network-bind" not in profile and "network-inbound" not in profile
    assert "mDNSResponder" not in profile and "dnssd" not in profile
    offline = seatbelt.generate_profile(CASES["minimal"])
    assert not [line for line in offline.splitlines() if "network" in line and not line.startswith(";")]


def test_the_runner_gives_the_profile_the_port_its_listener_got(tmp_path: Path) -> None:
    """The runner's listener (`sandbox.host_proxy`, the same as Landlock's) is what the profile allows:
    its port, on loopback, with the command's proxy variables pointing at it."""
    from sandbox.host_proxy import open_listener

    home = tmp_path / "home"
    workspace = home / "project"
    workspace.mkdir(parents=True)

    class _Hook:
        def serve_on(self, listener: object) -> None:
            raise AssertionError("not served here")

    access = NetworkAccess(proxy_env=proxy_environment(3128))
    policy = build_policy(
        workspace=workspace, cwd=workspace, home=home, environ={"HOME": str(home)}, network=access
    )
    env = dict(policy.env)
    listener = open_listener(policy, _Hook(), env, "Seatbelt")  # type: ignore[arg-type]
    assert listener is not None
    try:
        host, port = listener.getsockname()
        assert host == "127.0.0.1" and port != 3128
        assert env["http_proxy"] == env["HTTPS_PROXY"] == f"http://127.0.0.1:{port}"
        params = seatbelt.params_from_policy(policy, tag="t9", temp_dir=tmp_path / "t", proxy_port=port)
        assert f'(allow network-outbound (remote tcp "localhost:{port}"))' in seatbelt.generate_profile(
            params
        )
    finally:
        listener.close()
    offline = build_policy(workspace=workspace, cwd=workspace, home=home, environ={"HOME": str(home)})
    assert open_listener(offline, None, {}, "Seatbelt") is None


def _matches(regex: str, path: str) -> bool:
    # The generated regexes use the POSIX ERE subset that Python's re reads the same way.
    return re.search(regex, path) is not None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"{WS}/.git/hooks/pre-commit", True),
        (f"{WS}/.GIT/Hooks/pre-commit", True),
        (f"{WS}/vendor/sub/.git/hooks", True),
        (f"{WS}/.github/hooks/x", False),
        (f"{WS}/.git/hooksx", False),
        ("/Users/dev/Code/my.project-other/.git/hooks/x", False),
        ("/Users/dev/Code/myXproject/.git/hooks/x", False),
    ],
)
def test_protected_regex_matches_at_any_depth_case_insensitively(path: str, expected: bool) -> None:
    assert _matches(seatbelt.protected_regex(WS, HOOKS), path) is expected


def test_file_patterns_and_their_ancestors() -> None:
    jar = seatbelt.protected_regex(WS, WRAPPER)
    assert _matches(jar, f"{WS}/gradle/wrapper/gradle-wrapper.jar")
    assert not _matches(jar, f"{WS}/gradle/wrapper/sub/x.jar")
    assert not _matches(jar, f"{WS}/gradle/wrapper/gradle-wrapper.properties")
    ancestors = seatbelt.ancestor_regexes(WS, WRAPPER)
    assert [_matches(a, f"{WS}/gradle") for a in ancestors] == [True, False]
    assert [_matches(a, f"{WS}/x/gradle/wrapper") for a in ancestors] == [False, True]
    # Renaming the parent of a protected location is refused: its ancestors are in the unlink denial.
    profile = seatbelt.generate_profile(CASES["offline-protected"])
    unlink = profile[profile.index("(deny file-write-unlink") :]
    assert "[gG][iI][tT]$" in unlink
    assert f'(literal "{WS}/.venv/lib")' in unlink


def test_strings_that_could_break_out_of_the_profile_are_refused() -> None:
    with pytest.raises(ValueError, match="Seatbelt"):
        seatbelt.quote('a"\n(allow default)')
    with pytest.raises(ValueError, match="Seatbelt"):
        seatbelt.ere_escape('x"y')
    assert seatbelt.quote('a\\b"c') == '"a\\\\b\\"c"'


def test_refusals_are_read_back_by_tag_only() -> None:
    lines = [
        "2026-12-01 10:00:00.1 kernel Sandbox: touch(4242) deny(1) file-write-create /Users/dev/x corral:t2",
        "2026-12-01 10:00:00.2 kernel Sandbox: cat(4243) deny(1) file-read-data /Users/dev/.ssh/id_ed25519 corral:t2",
        "2026-12-01 10:00:00.3 kernel Sandbox: curl(99) deny(1) network-outbound 1.2.3.4:443 corral:other",
        "unrelated line",
    ]
    refusals = seatbelt.parse_refusals(lines, "t2")
    assert [(r.process, r.pid, r.operation, r.target) for r in refusals] == [
        ("touch", 4242, "file-write-create", "/Users/dev/x"),
        ("cat", 4243, "file-read-data", "/Users/dev/.ssh/id_ed25519"),
    ]


def test_params_come_from_the_same_policy_as_bwrap(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    workspace = home / "ws"
    workspace.mkdir()
    policy = build_policy(workspace=workspace, cwd=workspace, home=home, environ={"PATH": "/usr/bin"})
    params = seatbelt.params_from_policy(policy, tag="x", temp_dir=tmp_path / "t", proxy_port=3128)
    assert params.workspace == policy.workspace
    assert (home / ".ssh").resolve() in params.hidden
    assert {(p.parts, p.subtree) for p in params.protected} == {
        (p.parts, p.subtree) for p in policy.protected_patterns()
    }
    assert params.proxy_port is None  # the policy has no network: the port is not used


def test_sandbox_exec_comes_from_usr_bin_only() -> None:
    argv = seatbelt.sandbox_exec_argv(Path("/tmp/p.sb"), ["sh", "-c", "true"])
    assert argv[:4] == ["/usr/bin/sandbox-exec", "-f", "/tmp/p.sb", "--"]
