"""The classic baseline's check for `git`: read-only sub-commands, no option that writes or runs a program."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from corral.fatigue.classic.checks import ReadOnlyCommand, Unsafe, Word, check_with, could_be_option

_GIT_DIFF_UNSAFE = ("--output", "--ext-diff")
_GIT_BRANCH_FLAGS = frozenset("arvil")
_GIT_BRANCH_LONG = frozenset(
    {
        "--all",
        "--remotes",
        "--verbose",
        "--list",
        "--ignore-case",
        "--show-current",
        "--color",
        "--no-color",
        "--column",
        "--no-column",
        "--abbrev",
        "--no-abbrev",
        "--omit-empty",
    }
)
_GIT_BRANCH_FILTERS = frozenset({"--contains", "--no-contains", "--merged", "--no-merged", "--points-at"})
_GIT_BRANCH_VALUED = frozenset({"--sort", "--format"})


def _git_branch_check(args: Sequence[Word]) -> None:
    """`git branch` only when it lists: a name without `--list` (or a filter) creates a branch."""
    listing = False
    operands = 0
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        text = word.text
        if word.glob:
            if could_be_option(word):
                raise Unsafe(f"glob {text!r} could expand to an option")
            operands += 1
        elif text.startswith("--"):
            name = text.split("=", 1)[0]
            if name in _GIT_BRANCH_FILTERS:
                listing = True
            elif name in _GIT_BRANCH_VALUED:
                if "=" not in text:
                    index += 1
            elif name in _GIT_BRANCH_LONG:
                listing = listing or name == "--list"
            else:
                raise Unsafe(f"git branch {name} changes branches")
        elif text.startswith("-") and len(text) > 1:
            if any(letter not in _GIT_BRANCH_FLAGS for letter in text[1:]):
                raise Unsafe(f"git branch {text} changes branches")
            listing = listing or "l" in text
        else:
            operands += 1
    if operands and not listing:
        raise Unsafe("git branch NAME creates a branch")


def _git_remote_check(args: Sequence[Word]) -> None:
    if any(word.text not in ("-v", "--verbose") for word in args):
        raise Unsafe("git remote with a sub-command (may change remotes or use the network)")


_GIT_SUBCOMMANDS: Mapping[str, ReadOnlyCommand] = {
    "status": ReadOnlyCommand("shows the working tree state"),
    "log": ReadOnlyCommand("shows history", unsafe_long=_GIT_DIFF_UNSAFE),
    "diff": ReadOnlyCommand("shows changes", unsafe_long=_GIT_DIFF_UNSAFE),
    "show": ReadOnlyCommand("shows objects (W02: `--output` writes)", unsafe_long=_GIT_DIFF_UNSAFE),
    "branch": ReadOnlyCommand("list only", check=_git_branch_check),
    "rev-parse": ReadOnlyCommand("resolves names"),
    "ls-files": ReadOnlyCommand("lists the index"),
    "ls-tree": ReadOnlyCommand("lists a tree"),
    "blame": ReadOnlyCommand("annotates lines"),
    "grep": ReadOnlyCommand(
        "searches; -O runs a program", unsafe_long=("--open-files-in-pager",), unsafe_short="O"
    ),
    "describe": ReadOnlyCommand("names a commit"),
    "cat-file": ReadOnlyCommand("prints objects", unsafe_long=("--textconv", "--filters")),
    "shortlog": ReadOnlyCommand("summarises history"),
    "remote": ReadOnlyCommand("`git remote [-v]` lists remotes", check=_git_remote_check),
}
_GIT_GLOBAL_FLAGS = frozenset({"--no-pager", "-P", "--no-optional-locks"})


def git_check(args: Sequence[Word]) -> None:
    index = 0
    while index < len(args) and args[index].text.startswith("-"):
        word = args[index]
        if word.glob:
            raise Unsafe("glob in git's global options")
        if word.text == "-C" and index + 1 < len(args):
            index += 2
            continue
        if word.text in ("--version", "--help") and len(args) == 1:
            return
        if word.text not in _GIT_GLOBAL_FLAGS:
            raise Unsafe(f"git global option {word.text} (-c, --exec-path, --git-dir... can run programs)")
        index += 1
    if index >= len(args) or args[index].glob:
        raise Unsafe("git without a read-only sub-command")
    name = args[index].text
    spec = _GIT_SUBCOMMANDS.get(name)
    if spec is None:
        raise Unsafe(f"git {name} is not in the read-only set")
    check_with(spec, args[index + 1 :])
