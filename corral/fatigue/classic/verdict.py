"""The classic baseline's verdict for one command line: unwrap, check each simple command, fail closed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.fatigue.classic.checks import Unsafe, Word, check_with
from corral.fatigue.classic.lexer import (
    DUP_REDIRECTS,
    INPUT_REDIRECTS,
    OUTPUT_REDIRECTS,
    RESTORE,
    is_glob,
    split_parts,
    tokens,
)
from corral.fatigue.classic.table import READ_ONLY_COMMANDS


@dataclass(frozen=True, slots=True)
class ClassicVerdict:
    """The baseline's answer for one command line, with the reason for a prompt."""

    prompt: bool
    reason: str


def _unwrap(words: Sequence[Word]) -> Sequence[Word]:
    """Strip `timeout`, `nice`, `time` and `command` exactly; return the wrapped command's words."""
    while words:
        name = words[0].text
        rest = words[1:]
        if rest and rest[0].glob and name in ("timeout", "nice", "time", "command"):
            raise Unsafe(f"glob in the arguments of {name}")
        if name == "timeout":
            index = 0
            while index < len(rest) and rest[index].text.startswith("-"):
                if rest[index].glob:
                    raise Unsafe("glob in the options of timeout")
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
                    raise Unsafe(f"timeout option {option}")
            if index >= len(rest):
                raise Unsafe("timeout without a command")
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
            raise Unsafe(f"{name} without a command")
    return words


def _check_part(part: list[tuple[str, bool]]) -> None:
    words: list[Word] = []
    index = 0
    while index < len(part):
        token, is_operator = part[index]
        index += 1
        if not is_operator:
            glob = is_glob(token)
            words.append(Word(token.translate(RESTORE), glob))
            continue
        if token == "<<":  # noqa: S105
            raise Unsafe("heredoc")
        if token not in OUTPUT_REDIRECTS | DUP_REDIRECTS | INPUT_REDIRECTS:
            raise Unsafe(f"shell syntax {token!r} (subshell, group or unknown operator)")
        if index >= len(part) or part[index][1]:
            raise Unsafe(f"redirection {token!r} without a target")
        target = part[index][0].translate(RESTORE)
        index += 1
        if target.startswith(("/dev/tcp/", "/dev/udp/")):
            raise Unsafe(f"redirection to {target} opens a network connection")
        if token in INPUT_REDIRECTS:
            continue
        if token in DUP_REDIRECTS and (target.isdigit() or target == "-"):
            continue
        if target != "/dev/null":
            raise Unsafe(f"output redirected to {target}")
    if not words:
        raise Unsafe("redirection without a command")
    if "=" in words[0].text and words[0].text.split("=", 1)[0].isidentifier():
        raise Unsafe("environment assignment before a command")
    words = list(_unwrap(words))
    name = words[0]
    if name.glob:
        raise Unsafe("command name from a glob")
    spec = READ_ONLY_COMMANDS.get(name.text)
    if spec is None:
        raise Unsafe(f"{name.text} is not in the read-only set")
    check_with(spec, words[1:])


def classify(command: str) -> ClassicVerdict:
    """Judge one command line as the classic approval model would (see the module docstring)."""
    try:
        if not command.strip():
            raise Unsafe("empty command")
        for part in split_parts(tokens(command)):
            _check_part(part)
    except Unsafe as unsafe:
        return ClassicVerdict(prompt=True, reason=str(unsafe))
    except Exception as error:  # fail closed: a classifier bug means "would have asked"
        return ClassicVerdict(prompt=True, reason=f"classifier error: {error}")
    return ClassicVerdict(prompt=False, reason="read-only")


def would_prompt(command: str) -> bool:
    """True when the classic approval model (reads run freely, everything else asks) would prompt."""
    return classify(command).prompt
