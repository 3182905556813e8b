"""Registry settings are visible to pip and npm, their credentials never are (`sandbox.registryview`).

Units for the filters and the environment rule, then the real bubblewrap as root and as the
unprivileged user: a token-free `~/.npmrc` and a `PIP_CONFIG_FILE` in the home are readable inside with
exit 0 and no report; a token in them never reaches the command, and that read is reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.registryview import filter_config, filter_npmrc, filter_pip_conf, registry_env
from tests.conftest import SECRET, Actor

NPMRC = (
    "; company mirror\n"
    "registry=https://npm.mirror.example/\n"
    "@acme:registry=https://npm.acme.example/\n"
    "cafile=/etc/ssl/certs/acme.pem\n"
    "strict-ssl=true\n"
    "legacy-peer-deps=true\n"
)
NPMRC_WITH_TOKENS = NPMRC + (
    f"//npm.acme.example/:_authToken={SECRET}\n"
    f"//npm.mirror.example/:_password={SECRET}\n"
    f"_auth={SECRET}\n"
    "always-auth=true\n"
    "email=me@example.com\n"
    f"https-proxy=http://me:{SECRET}@proxy.example:8080\n"
    f"@other:registry=https://me:{SECRET}@npm.other.example/\n"
)
PIP_CONF = "[global]\nindex-url = https://pypi.mirror.example/simple\ntimeout = 30\n[install]\ntrusted-host = pypi.mirror.example\n"
PIP_CONF_WITH_TOKENS = (
    "[global]\n"
    f"index-url = https://me:{SECRET}@pypi.mirror.example/simple\n"
    "extra-index-url =\n"
    "    https://pypi.org/simple\n"
    f"    https://__token__:{SECRET}@pypi.acme.example/simple\n"
    "client-cert = /home/me/.certs/me.pem\n"
    f"proxy = http://me:{SECRET}@proxy.example:3128\n"
)


def test_npmrc_keeps_registries_and_drops_every_credential() -> None:
    clean = filter_npmrc(NPMRC)
    assert clean.withheld == ()
    assert clean.text.splitlines()[1:] == NPMRC.splitlines()[1:]
    filtered = filter_npmrc(NPMRC_WITH_TOKENS)
    assert SECRET not in filtered.text
    assert "registry=https://npm.mirror.example/" in filtered.text
    assert "@acme:registry=https://npm.acme.example/" in filtered.text
    assert "@other:registry=https://npm.other.example/" in filtered.text  # user information removed
    assert "cafile=/etc/ssl/certs/acme.pem" in filtered.text
    for dropped in ("_authToken", "_password", "_auth", "always-auth", "email", "https-proxy"):
        assert not any(
            line.startswith(dropped) or f":{dropped}=" in line for line in filtered.text.splitlines()
        )
    assert len(filtered.withheld) == 7
    assert all(SECRET not in item for item in filtered.withheld)


def test_pip_conf_keeps_indexes_and_drops_every_credential() -> None:
    assert filter_pip_conf(PIP_CONF).withheld == ()
    assert "index-url = https://pypi.mirror.example/simple" in filter_pip_conf(PIP_CONF).text
    filtered = filter_pip_conf(PIP_CONF_WITH_TOKENS)
    assert SECRET not in filtered.text
    assert "index-url = https://pypi.mirror.example/simple" in filtered.text
    assert "https://pypi.acme.example/simple" in filtered.text and "https://pypi.org/simple" in filtered.text
    assert "client-cert" not in filtered.text and "proxy" not in filtered.text
    assert filtered.withheld
    assert filter_pip_conf("index-url = https://x/\n").text == ""  # no section: nothing shown
    assert filter_config(Path("/h/.npmrc"), b"\xff\xfe").withheld  # not UTF-8: withheld whole


@pytest.mark.parametrize(
    ("name", "value", "passes"),
    [
        ("PIP_INDEX_URL", "https://pypi.mirror.example/simple", True),
        ("PIP_EXTRA_INDEX_URL", f"https://u:{SECRET}@pypi.acme.example/simple", False),
        ("NPM_CONFIG_REGISTRY", "https://npm.mirror.example/", True),
        ("npm_config_registry", f"https://{SECRET}@npm.mirror.example/", False),
        ("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca.pem", True),
        ("NPM_CONFIG__AUTH", SECRET, False),  # not a registry setting at all
    ],
)
def test_registry_variables_pass_without_credentials(name: str, value: str, passes: bool) -> None:
    assert (name in registry_env({name: value})) is passes


@contextlib.contextmanager
def _npmrc(actor: Actor, content: str) -> Iterator[Path]:
    path = actor.home / ".npmrc"
    path.write_text(content)
    actor.chown_path(path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_token_free_registry_config_is_visible_and_never_reported(actor: Actor) -> None:
    pip_conf = actor.own_dir / "pip.conf"
    pip_conf.write_text(PIP_CONF)
    actor.chown_path(pip_conf)
    actor.env["PIP_CONFIG_FILE"] = str(pip_conf)
    actor.env["PIP_INDEX_URL"] = "https://pypi.mirror.example/simple"
    with _npmrc(actor, NPMRC):
        result = actor.sandboxed(
            'cat ~/.npmrc && cat "$PIP_CONFIG_FILE" && echo "index=$PIP_INDEX_URL" && npm config get registry'
        )
    assert result.returncode == 0, result.stderr
    assert "registry=https://npm.mirror.example/" in result.stdout
    assert "index-url = https://pypi.mirror.example/simple" in result.stdout
    assert "index=https://pypi.mirror.example/simple" in result.stdout
    assert "https://npm.mirror.example/" in result.stdout.splitlines()[-1]
    assert "corral: denied" not in result.stderr


def test_tokens_in_registry_config_never_reach_the_command_and_the_read_is_reported(actor: Actor) -> None:
    with _npmrc(actor, NPMRC_WITH_TOKENS) as path:
        result = actor.sandboxed("cat ~/.npmrc")
        assert SECRET not in result.stdout
        assert "registry=https://npm.mirror.example/" in result.stdout
        assert "denied fs-read ~/.npmrc" in result.stderr
        assert result.returncode == 77
        assert path.read_text() == NPMRC_WITH_TOKENS
