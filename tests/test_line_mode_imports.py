"""The prompt-toolkit line mode never loads Textual or Rich: checked in a fresh interpreter, after
importing the whole line mode and answering a real prompt-toolkit prompt on a pseudo-terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

UI_OF_THE_TEXTUAL_APP = ("textual", "rich")

_ASK_ON_A_PTY = textwrap.dedent(
    """
    import json, os, pty, sys, threading, time

    import tui.line
    import tui.line.shell
    from corral.decision import PromptRequest
    from corral.grouping import group_violations, summarize
    from corral.sensitivity import is_sensitive, why_it_matters
    from boundary.violations import Violation, ViolationKind
    from pathlib import Path

    violations = [Violation(ViolationKind.FS_WRITE, "/home/dev/notes.txt", "create")]
    request = PromptRequest(
        command="touch ~/notes.txt",
        project=Path("/tmp/project"),
        violations=tuple(violations),
        groups=group_violations(violations),
        sensitive=frozenset(v for v in violations if is_sensitive(v)),
        reasons={v.target: why_it_matters(v) for v in violations},
        summary=summarize(violations),
        timeout_s=30,
    )
    master, slave = pty.openpty()
    done = threading.Event()

    def person() -> None:
        # Read what the prompt draws (so it never blocks) and keep pressing Ctrl-C until it answers:
        # keys typed before the prompt is armed may be discarded, so one key is not enough.
        while not done.is_set():
            try:
                os.write(master, b"\\x03")
            except OSError:
                return
            time.sleep(0.2)

    def drain() -> None:
        while not done.is_set():
            try:
                os.read(master, 65536)
            except OSError:
                return

    threading.Thread(target=person, daemon=True).start()
    threading.Thread(target=drain, daemon=True).start()
    answer = tui.line.LineAsk(os.ttyname(slave))(request)
    done.set()
    print(json.dumps({
        "answer": str(getattr(answer, "scope", answer)),
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich", "prompt_toolkit")),
    }))
    """
)


def test_the_line_mode_asks_without_textual_or_rich() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _ASK_ON_A_PTY], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["answer"] == "deny"  # Ctrl-C at the prompt is a denial
    top_level = {name.split(".")[0] for name in report["loaded"]}
    assert "prompt_toolkit" in top_level, "the real prompt-toolkit prompt ran"
    assert not top_level & set(UI_OF_THE_TEXTUAL_APP), report["loaded"]


def test_importing_the_line_mode_loads_no_ui_library_until_a_prompt_is_shown() -> None:
    code = (
        "import sys, tui.line, tui.line.shell; "
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'rich', 'prompt_toolkit'})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
