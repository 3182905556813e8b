"""The strict project config schema: unknown keys, wrong types, widening keys and never-allowed keys.

Covers attack catalog T03 (endpoint variables refused), T08 (command-valued key inventory), T09 (no key
moves corral's home) and T11 (a repo cannot widen or disable the sandbox, only flagged widening loads).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trust import config as config_module
from trust.config import (
    COMMAND_VALUED_KEYS,
    SCHEMA,
    ConfigError,
    parse_project_config,
    review_config,
)


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / ".corral" / "hooks").mkdir(parents=True, exist_ok=True)
    (root / ".corral" / "hooks" / "start.sh").write_text("echo hi\n")
    return root


def _parse(tmp_path: Path, text: str) -> config_module.ProjectConfig:
    return parse_project_config(text.encode(), _root(tmp_path))


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _parse(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(".corral/config.toml: ")
    return message


def test_full_valid_config(tmp_path: Path) -> None:
    config = _parse(
        tmp_path,
        """
[paths]
writable = ["build", "./out/cache/"]
hidden = ["secrets"]
[network]
allow = ["PyPI.org", "*.example.com"]
[env]
RUST_LOG = "debug"
[hooks]
session_start = ".corral/hooks/start.sh"
before_command = "make -s check"
""",
    )
    assert config.writable == ("build", "out/cache")
    assert config.hidden == ("secrets",)
    assert config.allowed_hosts == ("pypi.org", "*.example.com")
    assert config.env_dict() == {"RUST_LOG": "debug"}
    start = config.hook("session_start")
    assert start is not None and start.script == ".corral/hooks/start.sh"
    assert start.argv() == ["/bin/sh", ".corral/hooks/start.sh"]
    before = config.hook("before_command")
    assert before is not None and before.argv() == ["/bin/sh", "-c", "make -s check"]
    assert config.hook("after_command") is None
    assert {(w.key, w.value) for w in config.widening()} == {
        ("paths.writable", "build"),
        ("paths.writable", "out/cache"),
        ("network.allow", "pypi.org"),
        ("network.allow", "*.example.com"),
    }
    assert config.writable_paths()[0] == (tmp_path / "ws" / "build").resolve()


def test_empty_config_is_empty(tmp_path: Path) -> None:
    config = _parse(tmp_path, "")
    assert config.widening() == () and config.hooks == () and config.env == ()


def test_unknown_keys_name_file_and_key(tmp_path: Path) -> None:
    assert (
        _error(tmp_path, "[paths]\nreadonly = []\n")
        == ".corral/config.toml: key 'paths.readonly': unknown key"
    )
    assert "key 'colour': unknown key" in _error(tmp_path, "colour = 1\n")
    assert "key 'hooks.on_exit': unknown key" in _error(tmp_path, "[hooks]\non_exit = 'x'\n")


def test_wrong_types(tmp_path: Path) -> None:
    assert "key 'paths.writable': expected a list" in _error(tmp_path, "[paths]\nwritable = 'build'\n")
    assert "key 'network.allow[0]': expected a string" in _error(tmp_path, "[network]\nallow = [1]\n")
    assert "key 'env.A': expected a string" in _error(tmp_path, "[env]\nA = 1\n")
    assert "key 'hooks': expected a table" in _error(tmp_path, "hooks = 'x'\n")
    assert "invalid TOML" in _error(tmp_path, "[paths\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_project_config(b"a = '\xff'", _root(tmp_path))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[sandbox]\nenabled = false\n", "sandbox.enabled"),
        ("enableWeakerNestedSandbox = true\n", "enableWeakerNestedSandbox"),
        ("[network]\nallow_unix_sockets = true\n", "network.allow_unix_sockets"),
        ("[network]\nunix_sockets = ['/var/run/docker.sock']\n", "network.unix_sockets"),
        ("auto_approve = true\n", "auto_approve"),
        ("[permissions]\ndefaultMode = 'bypassPermissions'\n", "permissions"),
        ("excluded_commands = ['*']\n", "excluded_commands"),
        ("unsandboxed = true\n", "unsandboxed"),
        ("trust = true\n", "trust"),
        ("state_dir = '/tmp/x'\n", "state_dir"),
        ("[paths]\ndata_dir = 'x'\n", "paths.data_dir"),
        ("dangerouslyDisableSandbox = true\n", "dangerouslyDisableSandbox"),
    ],
)
def test_never_allowed_keys_even_when_trusted(tmp_path: Path, text: str, key: str) -> None:
    message = _error(tmp_path, text)
    assert f"key '{key}': a project can never" in message


@pytest.mark.parametrize(
    "path",
    [
        "~/.local/bin",
        "/etc",
        "../sibling",
        "a/../../x",
        "$HOME/x",
        "src/*",
        "a[b]",
        ".",
        "",
        " x",
        ".git/hooks",
        ".git",
        ".corral",
        ".claude/settings.json",
        ".vscode",
        "sub/.git/hooks",
        ".envrc",
        ".bashrc",
        ".venv/bin",
        "gradle",
    ],
)
def test_writable_paths_outside_or_protected_are_refused(tmp_path: Path, path: str) -> None:
    message = _error(tmp_path, f'[paths]\nwritable = ["{path}"]\n')
    assert "key 'paths.writable[0]'" in message


def test_writable_symlink_out_of_workspace_is_refused(tmp_path: Path) -> None:
    root = _root(tmp_path)
    (root / "out").symlink_to(tmp_path.parent)
    with pytest.raises(ConfigError, match="resolves outside the workspace"):
        parse_project_config(b'[paths]\nwritable = ["out/x"]\n', root)


def test_writable_path_rechecked_at_use(tmp_path: Path) -> None:
    root = _root(tmp_path)
    config = parse_project_config(b'[paths]\nwritable = ["build"]\n', root)
    (root / "build").symlink_to(tmp_path)  # created later, e.g. by a sandboxed command
    with pytest.raises(ConfigError, match="resolves outside"):
        config.writable_paths()


@pytest.mark.parametrize(
    "host",
    [
        "*",
        "*.com",
        "*.co.uk",
        "*.github.io",
        "127.0.0.1",
        "localhost",
        "2130706433",
        "[::1]",
        "a b",
        "evil.com:443",
        "exa*mple.com",
    ],
)
def test_over_broad_hosts_are_refused(tmp_path: Path, host: str) -> None:
    assert "key 'network.allow[0]'" in _error(tmp_path, f'[network]\nallow = ["{host}"]\n')


@pytest.mark.parametrize(
    "name",
    [
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
        "HTTPS_PROXY",
        "http_proxy",
        "NO_PROXY",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "NODE_OPTIONS",
        "GITHUB_TOKEN",
        "OPENAI_API_KEY",
        "AWS_PROFILE",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "HOME",
        "PATH",
        "CORRAL_HOME",
        "CORRAL_TRUST",
        "CLAUDE_CONFIG_DIR",
        "CODEX_HOME",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_GLOBAL",
        "BASH_ENV",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "DOCKER_HOST",
        "SSH_AUTH_SOCK",
        "PAGER",
        "1BAD",
        "A-B",
    ],
)
def test_env_names_routing_endpoints_credentials_loaders_state_are_refused(tmp_path: Path, name: str) -> None:
    message = _error(tmp_path, f'[env]\n"{name}" = "http://127.0.0.1:8081"\n')
    assert f"key 'env.{name}'" in message


def test_review_lists_widening_without_a_config_object(tmp_path: Path) -> None:
    root = _root(tmp_path)
    review = review_config(
        b'[network]\nallow = ["attacker.example"]\n[hooks]\nsession_start="touch x"\n', root
    )
    assert review.error is None
    assert [(w.key, w.value) for w in review.widening] == [("network.allow", "attacker.example")]
    assert [h.command for h in review.hooks] == ["touch x"]
    bad = review_config(b"[sandbox]\nenabled = false\n", root)
    assert bad.error is not None and "sandbox.enabled" in bad.error
    assert review_config(None, root).error is None


def test_hook_script_must_stay_under_corral(tmp_path: Path) -> None:
    assert "script not found" in _error(tmp_path, "[hooks]\nsession_start = '.corral/hooks/missing.sh'\n")
    assert "bad script path" in _error(tmp_path, "[hooks]\nsession_start = '.corral/../x.sh'\n")


# T08: every command-valued key is known and gated ------------------------------------------------------

REVIEWED_KEYS = {
    # key: runs code?
    "paths.writable": False,
    "paths.hidden": False,
    "network.allow": False,
    "env": False,
    "hooks.session_start": True,
    "hooks.before_command": True,
    "hooks.after_command": True,
}


def test_schema_inventory_every_command_valued_key_is_reviewed() -> None:
    """Fails when a key is added to the schema without being reviewed here (and gated if it runs code)."""
    assert {spec.key: spec.runs_code for spec in SCHEMA} == REVIEWED_KEYS
    assert {spec.key for spec in SCHEMA if spec.kind == "command"} == COMMAND_VALUED_KEYS
    assert {k for k, runs in REVIEWED_KEYS.items() if runs} == COMMAND_VALUED_KEYS


def test_parser_accepts_exactly_the_schema(tmp_path: Path) -> None:
    """Every schema key parses, and the parser accepts no top-level table the schema does not list."""
    tables = {spec.key.split(".")[0] for spec in SCHEMA}
    for table in tables:
        _parse(tmp_path, f"[{table}]\n")
    assert "unknown key" in _error(tmp_path, "[statusLine]\ncommand = 'touch /tmp/x'\n")
    assert "unknown key" in _error(tmp_path, "apiKeyHelper = 'touch /tmp/x'\n")
