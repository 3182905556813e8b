"""The classic baseline's check for `sed`: options and scripts that only print, delete or substitute."""

from __future__ import annotations

from collections.abc import Sequence

from corral.fatigue.classic.checks import Unsafe, Word, could_be_option

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


def sed_check(args: Sequence[Word]) -> None:
    scripts: list[str] = []
    operands: list[Word] = []
    index = 0
    options_done = False
    while index < len(args):
        word = args[index]
        text = word.text
        index += 1
        if word.glob:
            if could_be_option(word) and not options_done:
                raise Unsafe(f"glob {text!r} could expand to -i (in-place edit)")
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
                        raise Unsafe("sed --expression without a script")
                    value = args[index].text
                    index += 1
                scripts.append(value)
            elif name == "--line-length":
                if not value:
                    index += 1
            elif name not in _SED_LONG_SAFE:
                raise Unsafe(f"sed option {name} (in-place edit, script file or unknown)")
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
                            raise Unsafe(f"sed -{letter} without a value")
                        value = args[index].text
                        index += 1
                    if letter == "e":
                        scripts.append(value)
                    break
                raise Unsafe(f"sed option -{letter} (in-place edit, script file or unknown)")
    if not scripts:
        if not operands:
            raise Unsafe("sed without a script")
        first = operands.pop(0)
        if first.glob:
            raise Unsafe("sed script from a glob")
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
    raise Unsafe("sed script: unterminated expression")


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
            raise Unsafe("sed script: address without a command")
        command = script[position]
        position += 1
        if command == "{" or command in _SED_SIMPLE_COMMANDS:
            while position < length and (script[position].isdigit() or script[position] in " \t"):
                position += 1
        elif command in "sy":
            if position >= length or script[position] in "\\\n":
                raise Unsafe("sed script: bad delimiter")
            delimiter = script[position]
            position = _skip_delimited(script, position + 1, delimiter)
            position = _skip_delimited(script, position, delimiter)
            while position < length and script[position] not in ";\n}":
                flag = script[position]
                if command == "y" and flag not in " \t":
                    raise Unsafe("sed script: junk after y")
                if flag in "we":
                    raise Unsafe(f"sed s///{flag} writes a file or runs a command")
                if flag not in "gpiImM0123456789 \t":
                    raise Unsafe(f"sed script: unknown s flag {flag!r}")
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
            raise Unsafe(f"sed command {command!r} writes, runs a command or is not understood")
