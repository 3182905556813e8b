"""The classic baseline's lexer: a quote-aware pre-scan, shlex words and operators, simple commands.

Anything a word splitter cannot judge the way the shell would (expansions, comments, backslashes,
brace expansion, control characters) raises `Unsafe` here, before any word is looked at.
"""

from __future__ import annotations

import shlex

from corral.fatigue.classic.checks import Unsafe

MAX_PARTS = 50
"""More simple commands than this in one command line prompt (A06: complexity never lowers the bar)."""

# Private-use characters stand in for characters whose quoting matters while shlex splits words.
GLOB_SENTINELS = {"*": "\ue000", "?": "\ue001", "[": "\ue002"}
QUOTED_PUNCT_SENTINELS = {c: chr(0xE010 + i) for i, c in enumerate("();<>|&")}
RESTORE = str.maketrans({v: k for k, v in {**GLOB_SENTINELS, **QUOTED_PUNCT_SENTINELS}.items()})

SEPARATORS = frozenset({";", "&&", "||", "|", "|&", "&"})
OUTPUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>"})
DUP_REDIRECTS = frozenset({">&", "<&"})
INPUT_REDIRECTS = frozenset({"<", "<<<"})


def prescan(command: str) -> str:
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
            raise Unsafe("control or private-use character")
        if quote == "'":
            if char == "'":
                quote = ""
            out.append(QUOTED_PUNCT_SENTINELS.get(char, char))
            position += 1
            continue
        if char == "`":
            raise Unsafe("backtick command substitution")
        if char == "$":
            following = command[position + 1 : position + 2]
            if following not in ("", " ", "\t", "\n") and not (quote == '"' and following == '"'):
                raise Unsafe("$ expansion or substitution")
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
                    raise Unsafe("escaped expansion in double quotes")
            out.append(QUOTED_PUNCT_SENTINELS.get(char, char))
            position += 1
            continue
        if char in "'\"":
            quote = char
            word_start = False
        elif char == "\\":
            raise Unsafe("unquoted backslash")
        elif char == "#":
            raise Unsafe("comment")
        elif char == "{":
            closing = command.find("}", position)
            body = command[position + 1 : closing] if closing != -1 else ""
            if closing == -1 or "," in body or ".." in body or any(c in body for c in "'\" \t\n"):
                raise Unsafe("brace expansion or group")
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
        elif char in GLOB_SENTINELS:
            out.append(GLOB_SENTINELS[char])
            position += 1
            word_start = False
            continue
        word_start = char in " \t;&|<>()"
        out.append(char)
        position += 1
    if quote:
        raise Unsafe("unbalanced quote")
    return "".join(out)


def tokens(command: str) -> list[tuple[str, bool]]:
    """(token, is_operator) pairs. Operators are unquoted runs of shell punctuation."""
    lexer = shlex.shlex(prescan(command), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        raw = list(lexer)
    except ValueError as error:
        raise Unsafe(f"unparseable: {error}") from error
    punctuation = set(lexer.punctuation_chars)
    return [(token, bool(token) and set(token) <= punctuation) for token in raw]


def split_parts(tokens: list[tuple[str, bool]]) -> list[list[tuple[str, bool]]]:
    parts: list[list[tuple[str, bool]]] = [[]]
    for index, (token, is_operator) in enumerate(tokens):
        if is_operator and token in SEPARATORS:
            if not parts[-1]:
                raise Unsafe(f"empty command before {token!r}")
            trailing_ok = token in (";", "&") and index == len(tokens) - 1
            if not trailing_ok:
                parts.append([])
            if len(parts) > MAX_PARTS:
                raise Unsafe(f"more than {MAX_PARTS} commands in one line")
        else:
            parts[-1].append((token, is_operator))
    if not parts[-1]:
        raise Unsafe("empty command")
    return parts


def is_glob(token: str) -> bool:
    """Unquoted `*` or `?`, or an unquoted `[` with a `]` after it (a lone `[` is literal)."""
    if GLOB_SENTINELS["*"] in token or GLOB_SENTINELS["?"] in token:
        return True
    bracket = token.find(GLOB_SENTINELS["["])
    return bracket != -1 and "]" in token[bracket:]
