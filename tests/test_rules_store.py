"""The rules store: exact targets, component-wise directory prefixes, sensitivity, concurrency, CLI."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from boundary.hosts import format_authority
from boundary.violations import Violation, ViolationKind
from cli.main import main as corral_main
from corral.locations import Locations
from corral.rules import (
    RuleError,
    RuleStore,
    SensitiveRuleNeedsConfirmation,
    canonical_path,
    normalize_host,
)

W = ViolationKind.FS_WRITE


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def project(home: Path) -> Path:
    path = home / "proj"
    path.mkdir()
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RuleStore]:
    rules = RuleStore.open(tmp_path / "data" / "rules.sqlite3")
    yield rules
    rules.close()


def write(path: Path | str) -> Violation:
    return Violation(W, str(path), "create")


def test_exact_path_rule(store: RuleStore, project: Path, home: Path) -> None:
    rule = store.add(project, W, str(home / "x"))
    assert rule.matches(write(home / "x"))
    assert not rule.matches(write(home / "x2"))
    assert not rule.matches(write(home / "x" / "y"))
    assert not rule.matches(Violation(ViolationKind.FS_READ, str(home / "x"), "read"))


def test_directory_rule_is_component_wise(store: RuleStore, project: Path, tmp_path: Path) -> None:
    base = tmp_path / "a" / "b"
    rule = store.add(project, W, str(base), directory=True)
    assert rule.target.endswith("/b/") and rule.is_directory
    assert rule.matches(write(base))
    assert rule.matches(write(base / "c"))
    assert rule.matches(write(base / "c" / "d"))
    assert not rule.matches(write(tmp_path / "a" / "bc"))
    assert not rule.matches(write(tmp_path / "a"))
    assert not rule.matches(write(f"{base}/../bc"))


def test_paths_are_canonical(store: RuleStore, project: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    rule = store.add(project, W, str(link / "f"))
    assert rule.target == str(real / "f")
    assert rule.matches(write(real / "f"))
    assert rule.matches(write(link / "f"))
    assert rule.matches(write(f"{tmp_path}/real/sub/../f"))
    # A symlink as the last component is not followed: the rule is for that directory entry.
    assert canonical_path(str(link)) == str(link)


def test_rules_are_scoped_to_the_project(store: RuleStore, project: Path, home: Path, tmp_path: Path) -> None:
    store.add(project, W, str(home / "x"))
    other = tmp_path / "other"
    other.mkdir()
    assert store.matching(project, [write(home / "x")])
    assert store.matching(other, [write(home / "x")]) == {}
    link = tmp_path / "proj-link"
    link.symlink_to(project)
    assert store.matching(link, [write(home / "x")])  # same project through a symlink


def test_host_rules_are_exact(store: RuleStore, project: Path) -> None:
    any_port = store.add(project, ViolationKind.NET, "PyPI.org.")
    one_port = store.add(project, ViolationKind.NET, "files.pythonhosted.org:443")
    net = ViolationKind.NET
    assert any_port.target == "pypi.org"
    assert any_port.matches(Violation(net, "pypi.org:443", "connect"))
    assert any_port.matches(Violation(net, "PYPI.ORG.:80", "connect"))
    assert not any_port.matches(Violation(net, "evil.pypi.org:443", "connect"))
    assert not any_port.matches(Violation(net, "pypi.org.evil.test:443", "connect"))
    assert one_port.matches(Violation(net, "files.pythonhosted.org:443", "connect"))
    assert not one_port.matches(Violation(net, "files.pythonhosted.org:8443", "connect"))


@pytest.mark.parametrize(
    "bad", ["*.example.com", "*", "a b", "host:99999", "host:x", "", "ex ample.com", "a/b"]
)
def test_wildcards_and_junk_hosts_refused(store: RuleStore, project: Path, bad: str) -> None:
    with pytest.raises(RuleError):
        store.add(project, ViolationKind.NET, bad)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("0x7f000001", "127.0.0.1"),
        ("2130706433:8080", "127.0.0.1:8080"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::ffff:127.0.0.1]:80", "127.0.0.1:80"),
        ("[0:0::1]:8080", "[::1]:8080"),
        ("[::1]", "[::1]"),
        ("xn--bcher-kva.example:443", "xn--bcher-kva.example:443"),
    ],
)
def test_host_rules_use_the_proxys_normalisation(written: str, stored: str) -> None:
    """Regression: `--host 0x7f000001` was kept verbatim and never matched the proxy's `127.0.0.1`."""
    assert normalize_host(written) == stored


def test_an_ip_rule_in_any_form_matches_the_proxys_report(store: RuleStore, project: Path) -> None:
    rule = store.add(project, ViolationKind.NET, "0x7f000001")
    assert rule.target == "127.0.0.1"
    assert rule.matches(Violation(ViolationKind.NET, format_authority("127.0.0.1", 8000), "connect"))
    assert not rule.matches(Violation(ViolationKind.NET, "127.0.0.2:8000", "connect"))


@pytest.mark.parametrize(
    "unicode_name", ["ｇｉｔｈｕｂ.com", "github。com", "Bücher.example:443", "gіthub.com"]
)
def test_unicode_host_rules_are_refused_not_mapped(
    store: RuleStore, project: Path, unicode_name: str
) -> None:
    """Regression: the store mapped fullwidth names to ASCII, a host the proxy refuses on the wire."""
    with pytest.raises(RuleError, match="non-ASCII"):
        store.add(project, ViolationKind.NET, unicode_name)
    assert store.list(project) == []


def test_a_refused_unicode_rule_names_the_ascii_form_to_write() -> None:
    with pytest.raises(RuleError, match=r"write 'github\.com'"):
        normalize_host("ｇｉｔｈｕｂ.com")


def test_whole_filesystem_refused(store: RuleStore, project: Path) -> None:
    with pytest.raises(RuleError):
        store.add(project, W, "/", directory=True, confirmed_sensitive=True)


@pytest.mark.parametrize(
    ("kind", "relative", "directory"),
    [
        (W, ".bashrc", False),
        (W, ".ssh/authorized_keys", False),
        (W, ".local/bin/ls", False),
        (W, ".ssh", True),
        (W, "", True),  # the home directory holds ~/.bashrc
        (ViolationKind.FS_READ, ".aws/credentials", False),
        (ViolationKind.FS_PROTECTED, "proj/.git/hooks/pre-commit", False),
        (W, "proj", True),  # the project holds .git
    ],
)
def test_sensitive_rules_need_confirmation(
    store: RuleStore, project: Path, home: Path, kind: ViolationKind, relative: str, directory: bool
) -> None:
    target = str(home / relative) if relative else str(home)
    with pytest.raises(SensitiveRuleNeedsConfirmation):
        store.add(project, kind, target, directory=directory)
    rule = store.add(project, kind, target, directory=directory, confirmed_sensitive=True)
    assert rule.sensitive


def test_plain_rule_never_matches_sensitive_violation(store: RuleStore, project: Path, home: Path) -> None:
    rule = store.add(project, W, str(home / "work"), directory=True)
    assert not rule.sensitive
    assert rule.matches(write(home / "work" / "a.txt"))
    assert not rule.matches(write(home / "work" / ".git" / "hooks" / "pre-push"))
    assert not rule.matches(write(home / "work" / ".envrc"))


def test_add_is_idempotent_and_revoke(store: RuleStore, project: Path, home: Path) -> None:
    first = store.add(project, W, str(home / "x"))
    again = store.add(project, W, str(home / "x"))
    assert first.id == again.id
    assert len(store.list()) == 1
    assert store.revoke(first.id)
    assert not store.revoke(first.id)
    assert store.list() == []


def test_rules_file_is_private(store: RuleStore) -> None:
    assert os.stat(store.path).st_mode & 0o777 == 0o600


def _add_many(path: str, project: str, worker: int, count: int) -> None:
    with RuleStore.open(Path(path)) as rules:
        for index in range(count):
            rules.add(project, W, f"/srv/w{worker}/f{index}")


def test_concurrent_writers_lose_nothing(tmp_path: Path, project: Path) -> None:
    path = tmp_path / "data" / "rules.sqlite3"
    RuleStore.open(path).close()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_many, args=(str(path), str(project), w, 40)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    with RuleStore.open(path) as rules:
        assert len(rules.list(project)) == 160


# --- CLI -------------------------------------------------------------------------------------------------


def test_cli_add_list_revoke(
    project: Path, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert corral_main(["rules", "add", "--project", ".", "--path", "~/x"]) == 0
    assert corral_main(["rules", "add", "--project", ".", "--host", "pypi.org"]) == 0
    assert corral_main(["rules", "add", "--project", ".", "--path", "~/.bashrc"]) == 1
    assert "--confirm-sensitive" in capsys.readouterr().err
    assert corral_main(["rules", "add", "--project", ".", "--path", "~/.bashrc", "--confirm-sensitive"]) == 0
    capsys.readouterr()
    assert corral_main(["rules", "list", "--project", "."]) == 0
    listing = capsys.readouterr().out
    assert "WARNING" in listing and str(home / "x") in listing and "pypi.org" in listing
    assert corral_main(["rules", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["target"] for r in rows] == [str(home / "x"), "pypi.org", str(home / ".bashrc")]
    assert Locations.default().rules_path.exists()
    assert not (project / ".corral").exists()  # never in the repository
    assert corral_main(["rules", "revoke", str(rows[0]["id"])]) == 0
    assert corral_main(["rules", "revoke", "999"]) == 1


def test_cli_usage_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert corral_main(["rules", "add", "--project", str(project)]) == 2
    assert corral_main(["rules", "add", "--project", str(project), "--host", "a.test", "--dir"]) == 2
    assert corral_main(["rules", "add", "--project", str(project), "--path", "/x", "--kind", "net"]) == 2
    assert corral_main(["rules", "add", "--project", str(project), "--host", "*.a.test"]) == 1
    assert "not an exact host" in capsys.readouterr().err


def test_threads_share_one_store(store: RuleStore, project: Path) -> None:
    import threading

    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for index in range(50):
                store.add(project, W, f"/srv/t{worker}/f{index}")
                store.matching(project, [write(f"/srv/t{worker}/f{index}")])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(store.list(project)) == 200
