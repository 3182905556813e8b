"""`corral policy` shows the effective policy: defaults merged with the user's config, a trusted
project's config, the project's rules and presets, and the proxy variables; `--json` has stable keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from corral.policyview import EFFECTIVE_KEYS
from tests.conftest import CORRAL


def _corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CORRAL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def _project(tmp_path: Path, home: Path) -> Path:
    project = tmp_path / "proj"
    (project / ".corral").mkdir(parents=True)
    (project / "build").mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".corral" / "config.toml").write_text(
        '[env]\nRUST_LOG = "debug"\n[paths]\nwritable = ["build"]\n'
        '[network]\nallow = ["example.org"]\n[hooks]\nbefore_command = "true"\n'
    )
    config = home / ".config" / "corral"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        '[network]\nallow = ["pypi.org"]\npresets = ["npm"]\ndeny = ["evil.example"]\n'
    )
    return project


def _view(project: Path) -> dict[str, Any]:
    result = _corral("policy", "--json", "--project", str(project), cwd=project)
    assert result.returncode == 0, result.stderr
    view: dict[str, Any] = json.loads(result.stdout)
    return view


def test_json_keys_are_stable_machine_names(tmp_path: Path, isolated_home: Path) -> None:
    view = _view(_project(tmp_path, isolated_home))
    assert tuple(view) == EFFECTIVE_KEYS
    assert view["schema"] == 2
    assert set(view["trust"]) == {"state", "config_loaded"}
    assert set(view["filesystem"]) == {
        "default", "workspace", "captured", "caches", "hidden", "readable_by_rule", "blanked",
        "protected_patterns", "protected_paths", "project_writable", "private", "cache_layer",
        "homes", "readable", "readable_when_present", "private_caches", "project_writable_refused",
    }  # fmt: skip
    assert set(view["environment"]) == {"names", "project", "proxy"}
    assert set(view["network"]) == {
        "mode",
        "proxy",
        "allow",
        "deny",
        "unknown_hosts",
        "brokered",
        "ssh_agent",
    }
    assert view["network"]["ssh_agent"] is None  # off unless the person's config turns it on
    for key in ("filesystem", "environment", "network", "trust"):
        for name in view[key]:
            assert name.replace("_", "").isalpha() and name.islower(), name


def test_trusted_project_is_merged_with_user_config_rules_and_presets(
    tmp_path: Path, isolated_home: Path
) -> None:
    project = _project(tmp_path, isolated_home)
    before = _view(project)
    assert before["trust"] == {"state": "untrusted", "config_loaded": False}
    assert "RUST_LOG" not in before["environment"]["names"]
    assert "example.org" not in [entry["host"] for entry in before["network"]["allow"]]
    assert before["hooks"] == {}

    assert _corral("trust", "grant", str(project), cwd=project).returncode == 0
    added = _corral("rules", "add", "--project", str(project), "--host", "api.example.net", cwd=project)
    assert added.returncode == 0, added.stderr
    view = _view(project)
    real = str(project.resolve())
    assert view["trust"] == {"state": "trusted", "config_loaded": True}
    assert view["workspace"] == real
    assert view["filesystem"]["project_writable"] == [f"{real}/build"]
    assert view["environment"]["project"] == {"RUST_LOG": "debug"}
    assert "RUST_LOG" in view["environment"]["names"]
    assert view["environment"]["proxy"]["HTTPS_PROXY"] == "http://127.0.0.1:3128"
    assert view["network"]["mode"] == "proxy"
    assert view["network"]["proxy"] == "http://127.0.0.1:3128"
    sources = {entry["host"]: entry["source"].split(":")[0] for entry in view["network"]["allow"]}
    assert sources == {
        "pypi.org": "user",
        "registry.npmjs.org": "preset",
        "example.org": "project",
        "api.example.net": "rule",
    }
    assert [entry["host"] for entry in view["network"]["deny"]] == ["evil.example"]
    assert view["hooks"] == {"before_command": "true"}
    assert [rule["target"] for rule in view["rules"]] == ["api.example.net"]
    text = _corral("policy", "--project", str(project), cwd=project)
    assert "example.org  (project:.corral/config.toml)" in text.stdout
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in text.stdout


def test_malformed_user_config_is_one_line_exit_2(tmp_path: Path, isolated_home: Path) -> None:
    project = _project(tmp_path, isolated_home)
    (isolated_home / ".config" / "corral" / "config.toml").write_text("[network]\nallow = 3\n")
    result = _corral("policy", "--project", str(project), cwd=project)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "network.allow" in result.stderr


def test_brokered_hosts_are_listed_with_credential_names_never_values(
    tmp_path: Path, isolated_home: Path
) -> None:
    project = _project(tmp_path, isolated_home)
    config = isolated_home / ".config" / "corral" / "config.toml"
    secret = "ghp_POLICYsecret0000000000000000000000"
    (isolated_home / "token").write_text(secret + "\n")
    config.write_text(
        config.read_text()
        + f'\n[credentials.github]\nfrom = "file:{isolated_home / "token"}"\n'
        + '\n[credentials.internal]\nfrom = "env:INTERNAL"\nhosts = ["api.internal.example"]\n'
        + 'header = "X-Api-Key"\nscheme = "none"\nenv = ["INTERNAL_KEY"]\n'
    )
    view = _view(project)
    brokered = {
        (entry["host"], entry["credential"], entry["header"]) for entry in view["network"]["brokered"]
    }
    assert brokered == {
        ("api.github.com:443", "github", "Authorization"),
        ("uploads.github.com:443", "github", "Authorization"),
        ("github.com:443", "github", "Authorization"),
        ("api.internal.example:443", "internal", "X-Api-Key"),
    }
    text = _corral("policy", "--project", str(project), cwd=project)
    assert "api.github.com:443  github in Authorization (token; from file)" in text.stdout
    for output in (json.dumps(view), text.stdout, text.stderr):
        assert secret not in output
    # The placeholder (not the secret) is what the sandbox's GH_TOKEN holds.
    assert view["environment"]["proxy"]["GH_TOKEN"].startswith("corral-placeholder-")
