"""What a non-interactive run prints for each denial: the target and the command that would allow it.

Targets and paths are shell-quoted so the suggested `corral rules add` line is safe to paste; a
sensitive target's suggestion carries `--confirm-sensitive`, so the person sees it needs confirming.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from boundary.violations import Violation, ViolationKind
from corral.decision import Decision
from corral.grouping import deleted_paths, is_deletion
from corral.rules import host_rule_target
from corral.sensitivity import is_sensitive
from corral.words import home_relative
from sandbox.egress.addresses import refused_addresses

_PLAIN_NET_DETAILS = frozenset({"", "denied", "new host", "connect"})
"""Details of a `net` violation that add nothing to "denied": every other one is the refusal reason."""


def _shell_word(text: str) -> str:
    if text.startswith("~/") and shlex.quote(text[2:]) == text[2:]:
        return text
    return shlex.quote(text)


def allow_command(project: str | os.PathLike[str], violation: Violation, cwd: str | None = None) -> str:
    """The `corral rules add` command that would allow this exact violation in this project."""
    here = os.path.realpath(cwd if cwd is not None else os.getcwd())
    project_text = os.fspath(project)
    shown_project = (
        "." if os.path.realpath(project_text) == here else _shell_word(home_relative(project_text))
    )
    words = ["corral rules add --project", shown_project]
    if violation.kind is ViolationKind.NET:
        addresses = refused_addresses(violation.detail)
        if addresses:
            # The name was allowed; the addresses it resolved to were not: a rule per address works
            # (an address range is written `--host 10.0.0.0/24`).
            prefix = " ".join(words)
            return " && ".join(f"{prefix} --host {_shell_word(address)}" for address in addresses)
        words += ["--host", _shell_word(host_rule_target(violation.target))]
    else:
        if violation.kind is not ViolationKind.FS_WRITE:
            words += ["--kind", violation.kind.value]
        words += ["--path", _shell_word(home_relative(violation.target))]
        if is_sensitive(violation):
            words.append("--confirm-sensitive")
    return " ".join(words)


def denial_lines(
    project: str | os.PathLike[str], decisions: Mapping[Violation, Decision], cwd: str | None = None
) -> list[str]:
    """One stderr line per denied violation, naming the target and the command that would allow it."""
    lines: list[str] = []
    for violation, decision in decisions.items():
        if decision.allows:
            continue
        if violation.kind is ViolationKind.NET_CREDENTIAL:
            # Never allowed: no rule or prompt can send another key to a host corral brokers for.
            lines.append(f"corral: refused {violation.kind.value} {violation.target} ({violation.detail})")
            continue
        target = (
            home_relative(violation.target) if violation.kind is not ViolationKind.NET else violation.target
        )
        if violation.kind is ViolationKind.NET and violation.detail not in _PLAIN_NET_DETAILS:
            target = f"{target} ({violation.detail})"
        flag = "sensitive; " if is_sensitive(violation) else ""
        if violation.config_changes:
            # A rule for a git config file is bound to its key/value changes, which only an answer to
            # a prompt carries: a path rule would not allow this change.
            keys = ", ".join(sorted({line[1:].partition("=")[0] for line in violation.config_changes}))
            lines.append(
                f"corral: denied {violation.kind.value} {target} ({flag}git config keys: {keys}; "
                "to allow: rerun on a TTY and answer the prompt)"
            )
            continue
        # A read already failed inside the sandbox: only a rule can make later reads see the file.
        # An address refusal is not asked (the name was already allowed): only the rule helps.
        refused_address = violation.kind is ViolationKind.NET and bool(refused_addresses(violation.detail))
        later = "" if violation.kind is ViolationKind.FS_READ or refused_address else ", or rerun on a TTY"
        how = "to allow in later commands" if violation.kind is ViolationKind.FS_READ else "to allow"
        deleted = deleted_paths(violation) if is_deletion(violation) else 0
        plural = "" if deleted == 1 else "s"
        what = f"{violation.kind.value} (deletes {deleted} path{plural})" if deleted else violation.kind.value
        lines.append(
            f"corral: denied {what} {target} ({flag}{how}: {allow_command(project, violation, cwd)}{later})"
        )
    return lines
