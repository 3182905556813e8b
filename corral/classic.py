"""The classic approval baseline: would a reads-run-freely, everything-else-asks model have prompted?

Tools without an OS sandbox (and corral's competitors before theirs) let read-only shell commands run
and ask a person about everything else: writes, commands with side effects, the network. corral records
that counterfactual for every command (`commands.classic_would_prompt` in the ledger) so `corral stats`
can show how many prompts the sandbox saved.

The model is deliberately conservative — when in doubt it prompts — so the reduction corral reports is
never inflated by a generous baseline... and never by a baseline that auto-approves an attack either:
the catalog's parser-bypass strings (M04, A06, A07, W09) all prompt here.

How a command is judged (`classify`):

1. A quote-aware scan of the raw text. It prompts for: any `$` expansion outside single quotes
   (`$VAR`, `${IFS}`, `$(...)`, `$'...'`), backticks, unquoted `#` (a comment can hide the rest from a
   parser that disagrees with the shell), unquoted backslashes, unquoted brace expansion (`{a,b}`,
   `{1..3}`), control characters and unbalanced quotes. Unquoted newlines separate commands.
2. `shlex` in punctuation mode splits the rest into words and operators (quoted punctuation and
   unquoted glob characters are tracked through the split, so `';'` is a word and `*.py` is a glob).
3. The command is cut at `;`, `&&`, `||`, `|`, `|&`, `&` into at most 50 simple commands (A06). Each
   must be read-only: its first word is in `READ_ONLY_COMMANDS` (a bare name: `./ls` or `/bin/ls` may be
   anything) and its arguments pass that entry's check. `NAME=value cmd`, `export`, wrappers (`env`
   with arguments, `sudo`, `xargs`, `setsid`, `watch`, `nohup`, `stdbuf`, `ionice`, `exec`, `eval`,
   `source`) prompt; `timeout`, `nice`, `time` and `command` are unwrapped exactly.
4. Redirections: input (`<`, `<<<`) and descriptor copies (`2>&1`, `>&2`) are fine; output to
   `/dev/null` is fine; output to any other file, `<>` and heredocs (`<<`: a body corral does not
   parse) prompt. Subshells, groups, process substitution and shell keywords prompt.
5. Unquoted globs are expanded by the shell into file names, and a file can be named `-i.txt` or
   `-delete`: a glob that could expand into one of the command's unsafe options prompts.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

MAX_PARTS = 50
"""More simple commands than this in one command line prompt (A06: complexity never lowers the bar)."""

# Private-use characters stand in for characters whose quoting matters while shlex splits words.
_GLOB_SENTINELS = {"*": "\ue000", "?": "\ue001", "[": "\ue002"}
_QUOTED_PUNCT_SENTINELS = {c: chr(0xE010 + i) for i, c in enumerate("();<>|&")}
_RESTORE = str.maketrans({v: k for k, v in {**_GLOB_SENTINELS, **_QUOTED_PUNCT_SENTINELS}.items()})

_SEPARATORS = frozenset({";", "&&", "||", "|", "|&", "&"})
_OUTPUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>"})
_DUP_REDIRECTS = frozenset({">&", "<&"})
_INPUT_REDIRECTS = frozenset({"<", "<<<"})


@dataclass(frozen=True, slots=True)
class ClassicVerdict:
    """The baseline's answer for one command line, with the reason for a prompt."""

    prompt: bool
    reason: str


class _Unsafe(Exception):
    """Raised inside the classifier: this command would have been asked about."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word after quote removal; `glob` is True when it holds unquoted `*`, `?` or `[`."""

    text: str
    glob: bool = False


@dataclass(frozen=True, slots=True)
class ReadOnlyCommand:
    """One entry of the read-only table.

    `unsafe_long`: long options that write, execute or widen (GNU-style unique abbreviations and
    `--opt=value` forms match too). `unsafe_short`: short option letters, also inside clusters (`-no`).
    `unsafe_words`: exact argument words (find primaries) that make it unsafe. `max_operands`: more
    positional words than this prompt (`uniq IN OUT` writes OUT). `check`: a custom check of the whole
    argument list (sed, git), replacing the generic one. `note` says why the entry is read-only.
    """

    note: str
    unsafe_long: tuple[str, ...] = ()
    unsafe_short: str = ""
    unsafe_words: tuple[str, ...] = ()
    max_operands: int | None = None
    check: Callable[[Sequence[Word]], None] | None = None

    def has_unsafe_options(self) -> bool:
        """True when some argument could make this command unsafe."""
        return bool(
            self.unsafe_long or self.unsafe_short or self.unsafe_words or self.check or self.max_operands
        )


def _long_name_is_unsafe(word: str, unsafe_long: Sequence[str]) -> bool:
    name = word.split("=", 1)[0]
    if len(name) < 3:
        return False
    # GNU getopt_long and git's parse-options accept any unique prefix: `--out=x` means `--output=x`.
    return any(option.startswith(name) for option in unsafe_long)


def _could_be_option(word: Word) -> bool:
    """An unquoted glob could expand to a file name starting with `-` (e.g. a file named `-i.txt`)."""
    return word.glob and word.text[:1] in ("*", "?", "[", "-")


def _generic_check(spec: ReadOnlyCommand, args: Sequence[Word]) -> None:
    operands = 0
    options_done = False
    for word in args:
        text = word.text
        if word.glob and spec.unsafe_words and not options_done:
            for unsafe in spec.unsafe_words:
                if fnmatch.fnmatchcase(unsafe, text):
                    raise _Unsafe(f"glob {text!r} could expand to {unsafe}")
        elif (
            word.glob
            and not options_done
            and (spec.unsafe_long or spec.unsafe_short)
            and _could_be_option(word)
        ):
            raise _Unsafe(f"glob {text!r} could expand to an option")
        if options_done or word.glob:
            operands += 1
            continue
        if text == "--":
            options_done = True
            continue
        if text in spec.unsafe_words:
            raise _Unsafe(f"{text} writes or runs a program")
        if text.startswith("--"):
            if _long_name_is_unsafe(text, spec.unsafe_long):
                raise _Unsafe(f"{text.split('=', 1)[0]} writes or runs a program")
        elif text.startswith("-") and len(text) > 1 and not spec.unsafe_words:
            if any(letter in spec.unsafe_short for letter in text[1:]):
                raise _Unsafe(f"{text} includes an option that writes")
        else:
            operands += 1
    if spec.max_operands is not None and operands > spec.max_operands:
        raise _Unsafe(f"more than {spec.max_operands} operand(s): the last one is written")


# --- sed -----------------------------------------------------------------------------------------

_SED_FLAGS = frozenset("nErsuz")
_SED_LONG_SAFE = frozenset(
    {
        "--quiet",
        "--silent",
        "--regexp-extended",
        "--separate",
        "--unbuffered",
        "--null-data",
        "--posix",
        "--debug",
        "--sandbox",
    }
)
_SED_SIMPLE_COMMANDS = frozenset("pdDnNgGhHxlPqQzF=")


def _sed_check(args: Sequence[Word]) -> None:
    scripts: list[str] = []
    operands: list[Word] = []
    index = 0
    options_done = False
    while index < len(args):
        word = args[index]
        text = word.text
        index += 1
        if word.glob:
            if _could_be_option(word) and not options_done:
                raise _Unsafe(f"glob {text!r} could expand to -i (in-place edit)")
            operands.append(word)
            continue
        if options_done or not text.startswith("-") or text == "-":
            operands.append(word)
            continue
        if text == "--":
            options_done = True
        elif text.startswith("--"):
            name, _, value = text.partition("=")
            if name.startswith("--ex") and "--expression".startswith(name):
                if not value:
                    if index >= len(args):
                        raise _Unsafe("sed --expression without a script")
                    value = args[index].text
                    index += 1
                scripts.append(value)
            elif name == "--line-length":
                if not value:
                    index += 1
            elif name not in _SED_LONG_SAFE:
                raise _Unsafe(f"sed option {name} (in-place edit, script file or unknown)")
        else:
            position = 1
            while position < len(text):
                letter = text[position]
                position += 1
                if letter in _SED_FLAGS:
                    continue
                if letter in "el":
                    value = text[position:]
                    if not value:
                        if index >= len(args):
                            raise _Unsafe(f"sed -{letter} without a value")
                        value = args[index].text
                        index += 1
                    if letter == "e":
                        scripts.append(value)
                    break
                raise _Unsafe(f"sed option -{letter} (in-place edit, script file or unknown)")
    if not scripts:
        if not operands:
            raise _Unsafe("sed without a script")
        first = operands.pop(0)
        if first.glob:
            raise _Unsafe("sed script from a glob")
        scripts.append(first.text)
    for script in scripts:
        _sed_script_check(script)


def _skip_delimited(script: str, position: int, delimiter: str) -> int:
    """Index just after the next unescaped `delimiter` from `position`."""
    while position < len(script):
        char = script[position]
        if char == "\\":
            position += 2
            continue
        if char == delimiter:
            return position + 1
        if char == "\n":
            break
        position += 1
    raise _Unsafe("sed script: unterminated expression")


def _skip_address(script: str, position: int) -> int:
    if position >= len(script):
        return position
    char = script[position]
    if char.isdigit():
        while position < len(script) and (script[position].isdigit() or script[position] == "~"):
            position += 1
    elif char == "$":
        position += 1
    elif char == "/":
        position = _skip_delimited(script, position + 1, "/")
        while position < len(script) and script[position] in "IM":
            position += 1
    elif char == "\\" and position + 1 < len(script):
        position = _skip_delimited(script, position + 2, script[position + 1])
        while position < len(script) and script[position] in "IM":
            position += 1
    return position


def _sed_script_check(script: str) -> None:
    """Accept a sed script only if it provably prints, deletes, substitutes or reads — never `w`, `W`,
    `e`, or the `w`/`e` flags of `s`. Anything this small parser does not understand is unsafe."""
    position = 0
    length = len(script)
    while position < length:
        char = script[position]
        if char in " \t\n;}":
            position += 1
            continue
        position = _skip_address(script, position)
        if position < length and script[position] == ",":
            position += 1
            if position < length and script[position] in "+~":
                position += 1
            position = _skip_address(script, position)
        while position < length and script[position] in " \t!":
            position += 1
        if position >= length:
            raise _Unsafe("sed script: address without a command")
        command = script[position]
        position += 1
        if command == "{" or command in _SED_SIMPLE_COMMANDS:
            while position < length and (script[position].isdigit() or script[position] in " \t"):
                position += 1
        elif command in "sy":
            if position >= length or script[position] in "\\\n":
                raise _Unsafe("sed script: bad delimiter")
            delimiter = script[position]
            position = _skip_delimited(script, position + 1, delimiter)
            position = _skip_delimited(script, position, delimiter)
            while position < length and script[position] not in ";\n}":
                flag = script[position]
                if command == "y" and flag not in " \t":
                    raise _Unsafe("sed script: junk after y")
                if flag in "we":
                    raise _Unsafe(f"sed s///{flag} writes a file or runs a command")
                if flag not in "gpiImM0123456789 \t":
                    raise _Unsafe(f"sed script: unknown s flag {flag!r}")
                position += 1
        elif command in "aic:btTrR#":
            # Text, labels, branches and file reads run to the end of the line.
            newline = script.find("\n", position)
            if command in ":btT":
                semicolon = script.find(";", position)
                if semicolon != -1 and (newline == -1 or semicolon < newline):
                    newline = semicolon
            position = length if newline == -1 else newline
        else:
            raise _Unsafe(f"sed command {command!r} writes, runs a command or is not understood")


# --- git -----------------------------------------------------------------------------------------

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
            if _could_be_option(word):
                raise _Unsafe(f"glob {text!r} could expand to an option")
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
                raise _Unsafe(f"git branch {name} changes branches")
        elif text.startswith("-") and len(text) > 1:
            if any(letter not in _GIT_BRANCH_FLAGS for letter in text[1:]):
                raise _Unsafe(f"git branch {text} changes branches")
            listing = listing or "l" in text
        else:
            operands += 1
    if operands and not listing:
        raise _Unsafe("git branch NAME creates a branch")


def _git_remote_check(args: Sequence[Word]) -> None:
    if any(word.text not in ("-v", "--verbose") for word in args):
        raise _Unsafe("git remote with a sub-command (may change remotes or use the network)")


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


def _git_check(args: Sequence[Word]) -> None:
    index = 0
    while index < len(args) and args[index].text.startswith("-"):
        word = args[index]
        if word.glob:
            raise _Unsafe("glob in git's global options")
        if word.text == "-C" and index + 1 < len(args):
            index += 2
            continue
        if word.text in ("--version", "--help") and len(args) == 1:
            return
        if word.text not in _GIT_GLOBAL_FLAGS:
            raise _Unsafe(f"git global option {word.text} (-c, --exec-path, --git-dir... can run programs)")
        index += 1
    if index >= len(args) or args[index].glob:
        raise _Unsafe("git without a read-only sub-command")
    name = args[index].text
    spec = _GIT_SUBCOMMANDS.get(name)
    if spec is None:
        raise _Unsafe(f"git {name} is not in the read-only set")
    _check_with(spec, args[index + 1 :])


def _check_with(spec: ReadOnlyCommand, args: Sequence[Word]) -> None:
    if spec.check is not None:
        spec.check(args)
    else:
        _generic_check(spec, args)


def _no_arguments(args: Sequence[Word]) -> None:
    if args:
        raise _Unsafe("arguments change something (sets a value or runs a program)")


def _printf_check(args: Sequence[Word]) -> None:
    if args and (args[0].text.startswith("-v") or _could_be_option(args[0])):
        raise _Unsafe("printf -v assigns a shell variable")


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
    "sed": ReadOnlyCommand("no -i/-f; scripts only print, delete, substitute (no w/W/e)", check=_sed_check),
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
    "git": ReadOnlyCommand("read-only sub-commands only, no -c / --output / --ext-diff", check=_git_check),
}
"""The read-only safe set. A command not named here prompts (awk, python, less, tee, xargs...)."""


# --- wrappers ------------------------------------------------------------------------------------


def _unwrap(words: Sequence[Word]) -> Sequence[Word]:
    """Strip `timeout`, `nice`, `time` and `command` exactly; return the wrapped command's words."""
    while words:
        name = words[0].text
        rest = words[1:]
        if rest and rest[0].glob and name in ("timeout", "nice", "time", "command"):
            raise _Unsafe(f"glob in the arguments of {name}")
        if name == "timeout":
            index = 0
            while index < len(rest) and rest[index].text.startswith("-"):
                if rest[index].glob:
                    raise _Unsafe("glob in the options of timeout")
                option = rest[index].text
                if option in ("-s", "-k", "--signal", "--kill-after"):
                    index += 2
                elif option.startswith(("--signal=", "--kill-after=")) or option in (
                    "--preserve-status",
                    "--foreground",
                    "-v",
                    "--verbose",
                ):
                    index += 1
                else:
                    raise _Unsafe(f"timeout option {option}")
            if index >= len(rest):
                raise _Unsafe("timeout without a command")
            words = rest[index + 1 :]
        elif name == "nice":
            if not rest:
                return words  # prints the niceness
            index = 0
            if rest[0].text == "-n" or rest[0].text == "--adjustment":
                index = 2
            elif rest[0].text.startswith(("-n", "--adjustment=")) or rest[0].text[1:].isdigit():
                index = 1
            words = rest[index:]
        elif name == "time":
            words = rest[1:] if rest and rest[0].text == "-p" else rest
        elif name == "command":
            if rest and rest[0].text in ("-v", "-V"):
                return [Word("type")]
            words = rest[1:] if rest and rest[0].text == "-p" else rest
        else:
            return words
        if not words:
            raise _Unsafe(f"{name} without a command")
    return words


# --- lexing --------------------------------------------------------------------------------------


def _prescan(command: str) -> str:
    """Reject constructs a word splitter cannot judge; return text ready for shlex.

    In the result unquoted newlines are `;`, quoted punctuation and unquoted glob characters are
    sentinels, and a file-descriptor number before a redirection (`2>`) is dropped.
    """
    out: list[str] = []
    quote = ""
    position = 0
    length = len(command)
    word_start = True
    while position < length:
        char = command[position]
        if (ord(char) < 32 and char not in "\n\t") or char == "\x7f" or "\ue000" <= char <= "\uf8ff":
            raise _Unsafe("control or private-use character")
        if quote == "'":
            if char == "'":
                quote = ""
            out.append(_QUOTED_PUNCT_SENTINELS.get(char, char))
            position += 1
            continue
        if char == "`":
            raise _Unsafe("backtick command substitution")
        if char == "$":
            following = command[position + 1 : position + 2]
            if following not in ("", " ", "\t", "\n") and not (quote == '"' and following == '"'):
                raise _Unsafe("$ expansion or substitution")
        if quote == '"':
            if char == '"':
                quote = ""
            elif char == "\\":
                # Inside double quotes a backslash only escapes $ ` " \ and newline.
                following = command[position + 1 : position + 2]
                if following in ('"', "\\"):
                    out.append(char + following)
                    position += 2
                    continue
                if following in ("$", "`", "\n"):
                    raise _Unsafe("escaped expansion in double quotes")
            out.append(_QUOTED_PUNCT_SENTINELS.get(char, char))
            position += 1
            continue
        if char in "'\"":
            quote = char
            word_start = False
        elif char == "\\":
            raise _Unsafe("unquoted backslash")
        elif char == "#":
            raise _Unsafe("comment")
        elif char == "{":
            closing = command.find("}", position)
            body = command[position + 1 : closing] if closing != -1 else ""
            if closing == -1 or "," in body or ".." in body or any(c in body for c in "'\" \t\n"):
                raise _Unsafe("brace expansion or group")
        elif char == "\n":
            out.append(" ; ")
            position += 1
            word_start = True
            continue
        elif char.isdigit() and word_start:
            end = position
            while end < length and command[end].isdigit():
                end += 1
            if end < length and command[end] in "<>":
                position = end  # `2>file` is judged like `>file`
                continue
        elif char in _GLOB_SENTINELS:
            out.append(_GLOB_SENTINELS[char])
            position += 1
            word_start = False
            continue
        word_start = char in " \t;&|<>()"
        out.append(char)
        position += 1
    if quote:
        raise _Unsafe("unbalanced quote")
    return "".join(out)


def _tokens(command: str) -> list[tuple[str, bool]]:
    """(token, is_operator) pairs. Operators are unquoted runs of shell punctuation."""
    lexer = shlex.shlex(_prescan(command), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        raw = list(lexer)
    except ValueError as error:
        raise _Unsafe(f"unparseable: {error}") from error
    punctuation = set(lexer.punctuation_chars)
    return [(token, bool(token) and set(token) <= punctuation) for token in raw]


def _split_parts(tokens: list[tuple[str, bool]]) -> list[list[tuple[str, bool]]]:
    parts: list[list[tuple[str, bool]]] = [[]]
    for index, (token, is_operator) in enumerate(tokens):
        if is_operator and token in _SEPARATORS:
            if not parts[-1]:
                raise _Unsafe(f"empty command before {token!r}")
            trailing_ok = token in (";", "&") and index == len(tokens) - 1
            if not trailing_ok:
                parts.append([])
            if len(parts) > MAX_PARTS:
                raise _Unsafe(f"more than {MAX_PARTS} commands in one line")
        else:
            parts[-1].append((token, is_operator))
    if not parts[-1]:
        raise _Unsafe("empty command")
    return parts


def _is_glob(token: str) -> bool:
    """Unquoted `*` or `?`, or an unquoted `[` with a `]` after it (a lone `[` is literal)."""
    if _GLOB_SENTINELS["*"] in token or _GLOB_SENTINELS["?"] in token:
        return True
    bracket = token.find(_GLOB_SENTINELS["["])
    return bracket != -1 and "]" in token[bracket:]


def _check_part(part: list[tuple[str, bool]]) -> None:
    words: list[Word] = []
    index = 0
    while index < len(part):
        token, is_operator = part[index]
        index += 1
        if not is_operator:
            glob = _is_glob(token)
            words.append(Word(token.translate(_RESTORE), glob))
            continue
        if token == "<<":  # noqa: S105
            raise _Unsafe("heredoc")
        if token not in _OUTPUT_REDIRECTS | _DUP_REDIRECTS | _INPUT_REDIRECTS:
            raise _Unsafe(f"shell syntax {token!r} (subshell, group or unknown operator)")
        if index >= len(part) or part[index][1]:
            raise _Unsafe(f"redirection {token!r} without a target")
        target = part[index][0].translate(_RESTORE)
        index += 1
        if target.startswith(("/dev/tcp/", "/dev/udp/")):
            raise _Unsafe(f"redirection to {target} opens a network connection")
        if token in _INPUT_REDIRECTS:
            continue
        if token in _DUP_REDIRECTS and (target.isdigit() or target == "-"):
            continue
        if target != "/dev/null":
            raise _Unsafe(f"output redirected to {target}")
    if not words:
        raise _Unsafe("redirection without a command")
    if "=" in words[0].text and words[0].text.split("=", 1)[0].isidentifier():
        raise _Unsafe("environment assignment before a command")
    words = list(_unwrap(words))
    name = words[0]
    if name.glob:
        raise _Unsafe("command name from a glob")
    spec = READ_ONLY_COMMANDS.get(name.text)
    if spec is None:
        raise _Unsafe(f"{name.text} is not in the read-only set")
    _check_with(spec, words[1:])


def classify(command: str) -> ClassicVerdict:
    """Judge one command line as the classic approval model would (see the module docstring)."""
    try:
        if not command.strip():
            raise _Unsafe("empty command")
        for part in _split_parts(_tokens(command)):
            _check_part(part)
    except _Unsafe as unsafe:
        return ClassicVerdict(prompt=True, reason=str(unsafe))
    except Exception as error:  # fail closed: a classifier bug means "would have asked"
        return ClassicVerdict(prompt=True, reason=f"classifier error: {error}")
    return ClassicVerdict(prompt=False, reason="read-only")


def would_prompt(command: str) -> bool:
    """True when the classic approval model (reads run freely, everything else asks) would prompt."""
    return classify(command).prompt
