"""One exception hierarchy for everything that stops a corral command, each with its exit status.

Raised anywhere below the command line and caught once, at its edge (`cli.main`), where it becomes one
line on stderr (``corral: <message>``) and the exit status. Nothing in between prints an error and
returns a number, so a failure can never turn into a silent success or a silent denial on the way up.

Errors that come from the layers below (`trust.config.ConfigError`, `sandbox.bwrap.SandboxSetupError`,
`sandbox.egress.hostpolicy.PolicyError`, `sqlite3` errors on corral's own state) are translated where the
core meets them, into the class that says what they mean for the person.
"""

from __future__ import annotations


class CorralError(Exception):
    """Something stopped the command; `exit_status` is what corral exits with."""

    exit_status: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Refused(CorralError):
    """corral refused what was asked of it (a rule it will not store, a rule id that does not exist)."""

    exit_status = 1


class UsageError(CorralError):
    """The command line or a config file is wrong; the message names the option, or the file and key."""

    exit_status = 2


class Untrusted(CorralError):
    """`--require-trust` in a project that is not trusted, or the person quit at the trust dialog."""

    exit_status = 3


class SetupError(CorralError):
    """corral could not set up what the command needs (the sandbox, the prompt): nothing ran."""

    exit_status = 125


class StateError(SetupError):
    """corral's own state (rules, ledger) is damaged: refuse, and leave the file for the person."""


class CommandNotFound(CorralError):
    """The command to run does not exist (the shell's status for it)."""

    exit_status = 127


class Interrupted(CorralError):
    """The person interrupted corral (Ctrl-C) outside a sandboxed command."""

    exit_status = 130


EXIT_DENIED = 77
"""corral's status when the command exited 0 but a crossing was denied (EX_NOPERM). Not an exception:
the command ran and its outcome is reported; only the status says that something was refused."""

EXIT_SETUP_FAILED = SetupError.exit_status


def state_error(error: BaseException) -> StateError:
    """The one wording for damaged corral state (a rules or ledger database that cannot be used)."""
    return StateError(f"cannot use corral's state: {error} (move the file aside to start afresh)")


__all__ = [
    "EXIT_DENIED",
    "EXIT_SETUP_FAILED",
    "CommandNotFound",
    "CorralError",
    "Interrupted",
    "Refused",
    "SetupError",
    "StateError",
    "Untrusted",
    "UsageError",
    "state_error",
]
