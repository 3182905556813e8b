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

from corral.fatigue.classic.lexer import MAX_PARTS
from corral.fatigue.classic.table import READ_ONLY_COMMANDS
from corral.fatigue.classic.verdict import ClassicVerdict, classify, would_prompt

__all__ = ["MAX_PARTS", "READ_ONLY_COMMANDS", "ClassicVerdict", "classify", "would_prompt"]
