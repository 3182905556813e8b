"""`corral doctor`'s checks of configuration and state: the user config, the project config, and the
ledger, rules and trust stores. Each problem is one line naming the file (and key) with its fix.

Nothing here changes a file: the databases are opened read-only (`mode=ro`), the project config is
parsed only as the trust dialog parses it (validated for display, never run), and damaged files are
left where they are for the person to inspect.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

from corral.doctor import Check
from corral.locations import Locations

_ASIDE = "move it aside (mv {path} {path}.broken); corral starts a new one"


def check_user_config(locations: Locations) -> Check:
    """The user config loads, and its host lists and presets are valid."""
    from corral.userconfig import UserConfigError, load_user_config
    from sandbox.egress.hostpolicy import HostPolicy, PolicyError

    path = locations.user_config_path
    try:
        user = load_user_config(path)
        HostPolicy.from_config(
            source=user.source, allow=user.network_allow, deny=user.network_deny, presets=user.network_presets
        )
    except (UserConfigError, PolicyError) as error:
        return Check("user config", False, str(error), f"edit {path} (README: Configuration reference)")
    if not path.exists():
        return Check("user config", True, f"{path} absent (defaults)")
    return Check("user config", True, f"{path} loads")


def check_project_config(workspace: Path, locations: Locations) -> Check:
    """The project's `.corral/config.toml` would load (trusted: it loads; untrusted: it could be trusted)."""
    from trust.config import ConfigError
    from trust.gate import TrustState, evaluate
    from trust.store import TrustError, TrustStore

    name = "project config"
    try:
        gate = evaluate(workspace, TrustStore(locations.trust_dir), with_history=False)
    except (OSError, TrustError, ValueError) as error:
        return Check(name, False, f"{workspace}: {error}", "check the project directory")
    if not gate.has_project_config:
        return Check(name, True, f"{workspace}: no .corral/ (nothing to trust)")
    if gate.state is TrustState.TRUSTED:
        try:
            gate.load_config()
        except ConfigError as error:
            return Check(name, False, f"{workspace}/{error}", "fix the key, then `corral trust grant`")
        return Check(name, True, f"{workspace}: trusted, loads")
    review = gate.review()
    if review.error is not None:
        return Check(
            name,
            False,
            f"{workspace}/{review.error}",
            "fix the key before `corral trust grant` (it cannot load)",
        )
    return Check(name, True, f"{workspace}: {gate.state.value} (not loaded until `corral trust grant`)")


def check_database(name: str, path: Path, newest_version: int, required_table: str) -> Check:
    """A SQLite store opens read-only, passes `quick_check`, has a schema this corral knows."""
    if not path.exists():
        return Check(name, True, f"{path} absent (created on first use)")
    fix = _ASIDE.format(path=path)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as error:
        return Check(name, False, f"{path}: cannot open: {error}", fix)
    try:
        result = db.execute("PRAGMA quick_check").fetchone()
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as error:
        return Check(name, False, f"{path}: not a usable database: {error}", fix)
    finally:
        db.close()
    if result is None or result[0] != "ok":
        return Check(name, False, f"{path}: damaged: {result[0] if result else 'no answer'}", fix)
    if version > newest_version:
        return Check(
            name, False, f"{path}: schema version {version} is newer than this corral ({newest_version})",
            "upgrade corral, or " + fix,
        )  # fmt: skip
    if version > 0 and required_table not in tables:
        return Check(name, False, f"{path}: table '{required_table}' is missing", fix)
    return Check(name, True, f"{path} (schema {version})")


def check_trust_store(locations: Locations) -> Check:
    """The trust directory is private and ours, and every record in it is readable.

    A damaged record is never trusted (`trust.store` skips it: the project counts as untrusted), so
    this is a problem to fix, not a hole."""
    from trust.store import MAX_RECORD_BYTES, TrustRecord, TrustStore

    directory = locations.trust_dir
    name = "trust store"
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return Check(name, True, f"{directory} absent (created on first decision)")
    if not stat.S_ISDIR(info.st_mode):
        return Check(name, False, f"{directory}: not a plain directory", _ASIDE.format(path=directory))
    if info.st_uid != os.getuid():
        return Check(
            name, False, f"{directory}: owned by uid {info.st_uid}", f"chown -R $(id -u) {directory}"
        )
    store = TrustStore(directory)
    damaged: list[str] = []
    count = 0
    for entry in sorted(directory.glob("*.json")):
        count += 1
        try:
            info = os.lstat(entry)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
                raise ValueError("not a plain file of a record's size")
            record = TrustRecord.from_json(json.loads(entry.read_bytes()))
            if store.record_path(record.root) != entry:
                raise ValueError("stored under another project's name")
        except (OSError, ValueError, KeyError, TypeError):
            damaged.append(entry.name)
    if damaged:
        first = directory / damaged[0]
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        return Check(
            name,
            False,
            f"{first}: damaged trust record{more}; its project counts as untrusted",
            f"rm {first}, then `corral trust grant` the project again",
        )
    return Check(name, True, f"{directory} ({count} decisions)")


def run_state_checks(locations: Locations, workspace: Path | None) -> list[Check]:
    """Every configuration and state check (the project's only when a workspace is given)."""
    from corral.ledger import SCHEMA_VERSION as LEDGER_VERSION
    from corral.rules import SCHEMA_VERSION as RULES_VERSION

    checks = [check_user_config(locations)]
    if workspace is not None:
        checks.append(check_project_config(workspace, locations))
    checks.append(check_database("ledger", locations.ledger_path, LEDGER_VERSION, "commands"))
    checks.append(check_database("rules", locations.rules_path, RULES_VERSION, "rules"))
    checks.append(check_trust_store(locations))
    return checks
