"""The classic baseline's vocabulary: a word after quote removal, a read-only table entry, the generic check.

A check raises `Unsafe` when an argument could make the command write, run a program or reach the
network; the baseline then counts the command as one a person would have been asked about.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class Unsafe(Exception):
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


def could_be_option(word: Word) -> bool:
    """An unquoted glob could expand to a file name starting with `-` (e.g. a file named `-i.txt`)."""
    return word.glob and word.text[:1] in ("*", "?", "[", "-")


def generic_check(spec: ReadOnlyCommand, args: Sequence[Word]) -> None:
    operands = 0
    options_done = False
    for word in args:
        text = word.text
        if word.glob and spec.unsafe_words and not options_done:
            for unsafe in spec.unsafe_words:
                if fnmatch.fnmatchcase(unsafe, text):
                    raise Unsafe(f"glob {text!r} could expand to {unsafe}")
        elif (
            word.glob
            and not options_done
            and (spec.unsafe_long or spec.unsafe_short)
            and could_be_option(word)
        ):
            raise Unsafe(f"glob {text!r} could expand to an option")
        if options_done or word.glob:
            operands += 1
            continue
        if text == "--":
            options_done = True
            continue
        if text in spec.unsafe_words:
            raise Unsafe(f"{text} writes or runs a program")
        if text.startswith("--"):
            if _long_name_is_unsafe(text, spec.unsafe_long):
                raise Unsafe(f"{text.split('=', 1)[0]} writes or runs a program")
        elif text.startswith("-") and len(text) > 1 and not spec.unsafe_words:
            if any(letter in spec.unsafe_short for letter in text[1:]):
                raise Unsafe(f"{text} includes an option that writes")
        else:
            operands += 1
    if spec.max_operands is not None and operands > spec.max_operands:
        raise Unsafe(f"more than {spec.max_operands} operand(s): the last one is written")


def check_with(spec: ReadOnlyCommand, args: Sequence[Word]) -> None:
    if spec.check is not None:
        spec.check(args)
    else:
        generic_check(spec, args)
