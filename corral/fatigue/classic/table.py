"""The read-only safe set of the classic baseline: which commands run without a prompt, and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from corral.fatigue.classic.checks import ReadOnlyCommand, Unsafe, Word, could_be_option
from corral.fatigue.classic.git import git_check
from corral.fatigue.classic.sed import sed_check


def _no_arguments(args: Sequence[Word]) -> None:
    if args:
        raise Unsafe("arguments change something (sets a value or runs a program)")


def _printf_check(args: Sequence[Word]) -> None:
    if args and (args[0].text.startswith("-v") or could_be_option(args[0])):
        raise Unsafe("printf -v assigns a shell variable")


# --- the table -----------------------------------------------------------------------------------

_ALWAYS = "read-only whatever its options"

READ_ONLY_COMMANDS: Mapping[str, ReadOnlyCommand] = {
    # Listing and reading files.
    "ls": ReadOnlyCommand(_ALWAYS),
    "cat": ReadOnlyCommand(_ALWAYS),
    "head": ReadOnlyCommand(_ALWAYS),
    "tail": ReadOnlyCommand("read-only; `-f` follows a file but never writes, so it stays in the set"),
    "wc": ReadOnlyCommand(_ALWAYS),
    "nl": ReadOnlyCommand(_ALWAYS),
    "tac": ReadOnlyCommand(_ALWAYS),
    "od": ReadOnlyCommand(_ALWAYS),
    "file": ReadOnlyCommand(
        "`-C` compiles a magic file (writes)", unsafe_long=("--compile",), unsafe_short="C"
    ),
    "stat": ReadOnlyCommand(_ALWAYS),
    "du": ReadOnlyCommand(_ALWAYS),
    "df": ReadOnlyCommand(_ALWAYS),
    "tree": ReadOnlyCommand("`-o FILE` writes the listing", unsafe_short="o"),
    "readlink": ReadOnlyCommand(_ALWAYS),
    "realpath": ReadOnlyCommand(_ALWAYS),
    "basename": ReadOnlyCommand(_ALWAYS),
    "dirname": ReadOnlyCommand(_ALWAYS),
    "md5sum": ReadOnlyCommand(_ALWAYS),
    "sha1sum": ReadOnlyCommand(_ALWAYS),
    "sha256sum": ReadOnlyCommand(_ALWAYS),
    "cksum": ReadOnlyCommand(_ALWAYS),
    "cmp": ReadOnlyCommand(_ALWAYS),
    "diff": ReadOnlyCommand("GNU diff has no option that writes a file"),
    "comm": ReadOnlyCommand(_ALWAYS),
    # Searching.
    "grep": ReadOnlyCommand(_ALWAYS),
    "egrep": ReadOnlyCommand(_ALWAYS),
    "fgrep": ReadOnlyCommand(_ALWAYS),
    "rg": ReadOnlyCommand(
        "`--pre` / `--pre-glob` / `--hostname-bin` run programs (M04)",
        unsafe_long=("--pre", "--pre-glob", "--hostname-bin"),
    ),
    "find": ReadOnlyCommand(
        "primaries that run programs or write files are unsafe (M04)",
        unsafe_words=(
            "-exec",
            "-execdir",
            "-ok",
            "-okdir",
            "-delete",
            "-fprint",
            "-fprint0",
            "-fprintf",
            "-fls",
        ),
    ),
    # Filters (stdin to stdout).
    "sort": ReadOnlyCommand(
        "`-o` writes; `--compress-program` runs one; `-T` writes temp files",
        unsafe_long=("--output", "--compress-program", "--temporary-directory"),
        unsafe_short="oT",
    ),
    "uniq": ReadOnlyCommand("`uniq IN OUT` writes OUT", max_operands=1),
    "cut": ReadOnlyCommand(_ALWAYS),
    "tr": ReadOnlyCommand(_ALWAYS),
    "rev": ReadOnlyCommand(_ALWAYS),
    "paste": ReadOnlyCommand(_ALWAYS),
    "fold": ReadOnlyCommand(_ALWAYS),
    "column": ReadOnlyCommand(_ALWAYS),
    "jq": ReadOnlyCommand("jq cannot write files or run programs"),
    "sed": ReadOnlyCommand("no -i/-f; scripts only print, delete, substitute (no w/W/e)", check=sed_check),
    # Shell state and information.
    "pwd": ReadOnlyCommand(_ALWAYS),
    "cd": ReadOnlyCommand("changes only the shell's own directory"),
    "echo": ReadOnlyCommand("prints its arguments (redirections are judged separately)"),
    "printf": ReadOnlyCommand("prints; `-v` assigns a variable", check=_printf_check),
    "true": ReadOnlyCommand(_ALWAYS),
    "false": ReadOnlyCommand(_ALWAYS),
    "test": ReadOnlyCommand(_ALWAYS),
    "[": ReadOnlyCommand(_ALWAYS),
    "which": ReadOnlyCommand(_ALWAYS),
    "type": ReadOnlyCommand(_ALWAYS),
    "whoami": ReadOnlyCommand(_ALWAYS),
    "id": ReadOnlyCommand(_ALWAYS),
    "uname": ReadOnlyCommand(_ALWAYS),
    "date": ReadOnlyCommand("`-s` sets the clock", unsafe_long=("--set",), unsafe_short="s"),
    "hostname": ReadOnlyCommand("with arguments it can set the host name", check=_no_arguments),
    "printenv": ReadOnlyCommand(_ALWAYS),
    "env": ReadOnlyCommand("bare `env` prints; with arguments it is a wrapper", check=_no_arguments),
    # git: the sub-command decides.
    "git": ReadOnlyCommand("read-only sub-commands only, no -c / --output / --ext-diff", check=git_check),
}
"""The read-only safe set. A command not named here prompts (awk, python, less, tee, xargs...)."""
