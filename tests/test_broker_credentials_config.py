"""The credential map: `[credentials.NAME]` in the user config only, its sources read outside the sandbox,
bad entries named by file and key, and the trust report saying when a project's hosts would receive
a brokered credential."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.credentialmap import brokered_notices, resolve_credentials
from corral.userconfig import UserConfigError, parse_user_config
from tests.conftest import CORRAL


def _entries(text: str) -> object:
    return parse_user_config(text.encode(), "cfg.toml").credentials


def test_a_preset_needs_only_its_source_and_brings_hosts_header_and_variables() -> None:
    config = parse_user_config(b'[credentials.github]\nfrom = "env:MY_GH"\n', "cfg.toml")
    resolved = resolve_credentials(config.credentials, {"MY_GH": "ghp_secret"})
    assert resolved.warnings == ()
    forms = {(host, c.header, c.scheme, c.username) for c in resolved.credentials for host in c.hosts}
    assert forms == {
        ("api.github.com", "Authorization", "token", ""),
        ("uploads.github.com", "Authorization", "token", ""),
        ("github.com", "Authorization", "basic", "x-access-token"),
    }
    placeholders = {c.placeholder for c in resolved.credentials}
    assert len(placeholders) == 1  # one placeholder per credential, whatever its routes
    assert "ghp_secret" not in next(iter(placeholders))
    env = resolved.credentials[0].env
    assert {"GH_TOKEN", "GITHUB_TOKEN", "MY_GH"} <= set(env)  # the source variable holds it too


def test_each_source_kind_reads_the_secret(tmp_path: Path) -> None:
    home = tmp_path
    (home / ".config" / "gh").mkdir(parents=True)
    (home / ".config" / "gh" / "hosts.yml").write_text(
        "github.com:\n    user: me\n    oauth_token: gho_fromhosts\n    git_protocol: https\n"
    )
    (home / ".npmrc").write_text(
        "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=npm_tok\n"
    )
    (home / ".pypirc").write_text("[pypi]\nusername = __token__\npassword = pypi-tok\n")
    (home / "key.txt").write_text("sk-plain\n")
    text = (
        '[credentials.github]\nfrom = "file:~/.config/gh/hosts.yml"\n'
        '[credentials.npm]\nfrom = "file:~/.npmrc"\n'
        '[credentials.pypi]\nfrom = "file:~/.pypirc"\n'
        '[credentials.openai]\nfrom = "file:~/key.txt"\n'
    )
    config = parse_user_config(text.encode(), "cfg.toml")
    resolved = resolve_credentials(config.credentials, {"HOME": str(home)})
    assert resolved.warnings == ()
    secrets = {c.name: c.secret for c in resolved.credentials}
    assert secrets == {"github": "gho_fromhosts", "npm": "npm_tok", "pypi": "pypi-tok", "openai": "sk-plain"}
    assert resolved.fixed_env == {"TWINE_USERNAME": "__token__"}


def test_a_source_that_cannot_be_read_is_a_warning_that_never_shows_a_value(tmp_path: Path) -> None:
    (tmp_path / "two-lines").write_text("a\nb\n")
    text = (
        '[credentials.anthropic]\nfrom = "env:NOT_SET"\n'
        f'[credentials.openai]\nfrom = "file:{tmp_path}/two-lines"\n'
        '[credentials.gitlab]\nfrom = "keyring:corral-test-nothing-here:nobody"\n'
    )
    resolved = resolve_credentials(parse_user_config(text.encode(), "cfg.toml").credentials, {})
    assert resolved.credentials == ()
    assert len(resolved.warnings) == 3
    assert all(w.startswith("credential '") and "not brokered" in w for w in resolved.warnings)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[credentials.github]\nsource = "env:X"\n', "credentials.github.source"),
        ("[credentials.github]\nhosts = []\n", "credentials.github.from"),
        ('[credentials.x]\nfrom = "env:X"\n', "credentials.x"),
        ('[credentials.x]\nfrom = "vault:X"\nhosts=["a.example"]\nheader="A"\n', "credentials.x.from"),
        ('[credentials.x]\nfrom = "file:rel/path"\nhosts=["a.example"]\nheader="A"\n', "credentials.x.from"),
        ('[credentials.x]\nfrom = "env:X"\nhosts=["a.example"]\nheader="A"\nscheme="digest"\n', "scheme"),
        ('[credentials.x]\nfrom = "env:X"\nhosts=["a.example"]\nheader="A"\nscheme="basic"\n', "username"),
        ('[credentials.x]\nfrom = "env:X"\nhosts=["a b"]\nheader="A"\n', "credentials.x.hosts[0]"),
        ('[credentials.x]\nfrom = "env:X"\nhosts=["a.example"]\nheader="A: b"\n', "header"),
        ("credentials = 3\n", "credentials"),
    ],
)
def test_bad_entries_name_the_file_and_key(text: str, named: str) -> None:
    with pytest.raises(UserConfigError) as raised:
        _entries(text)
    assert str(raised.value).startswith("cfg.toml: key '")
    assert named in str(raised.value)


def test_project_hosts_that_would_receive_a_brokered_credential_are_named() -> None:
    entries = parse_user_config(b'[credentials.github]\nfrom = "env:T"\n', "cfg.toml").credentials
    notices = brokered_notices(["*.github.com", "pypi.org", "github.com"], entries)
    assert len(notices) == 2
    assert notices[0].startswith("*.github.com: commands would reach api.github.com, uploads.github.com")
    assert "'github'" in notices[1]
    assert brokered_notices(["pypi.org"], entries) == []


def test_trust_show_says_when_a_projects_hosts_would_receive_a_credential(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = tmp_path / "repo"
    (root / ".corral").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".corral" / "config.toml").write_text('[network]\nallow = ["api.github.com"]\n')
    config = isolated_home / ".config" / "corral" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[credentials.github]\nfrom = "env:GITHUB_TOKEN"\n')
    shown = subprocess.run(
        [CORRAL, "trust", "show", str(root)], capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        "! brokered: api.github.com: commands would reach api.github.com with your brokered credential"
        in (shown.stdout)
    )


def test_a_foreign_credential_is_a_refusal_line_with_no_way_to_allow_it() -> None:
    from boundary.violations import Violation, ViolationKind
    from corral.decision import DENY
    from corral.denials import denial_lines
    from corral.grouping import summarize
    from corral.rules import RuleError, make_target

    violation = Violation(
        ViolationKind.NET_CREDENTIAL,
        "api.github.com:443",
        "request",
        "a credential that is not this session's own in the authorization header",
    )
    (line,) = denial_lines("/p", {violation: DENY})
    assert line.startswith("corral: refused net-credential api.github.com:443 (a credential that is not")
    assert "rules add" not in line
    assert summarize([violation]) == "1 request with a foreign credential"
    with pytest.raises(RuleError):
        make_target(ViolationKind.NET_CREDENTIAL, "api.github.com", directory=False, project="/p")
