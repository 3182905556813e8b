"""The representative agent workload (`workload.jsonl`) and the small sample repo it runs in.

    python tests/data/make_workload.py            # rewrite tests/data/workload.jsonl
    python tests/data/make_workload.py --repo DIR # create the sample repo in DIR (must not exist)

The mix follows issue 7 and the field notes on real agent sessions: about 40% reads, 15% test runs,
15% build/lint, 10% edits through the shell, 10% git, then package installs that write tool-chain
caches, fetches from registries and forges, writes to /tmp and outside the repo, and credential reads.
Every command runs with sh, coreutils, git, make, gcc, python3 and npm; nothing needs the network
(fetches fail, which is what a sandbox with no allowed host does to them).

The generator is deterministic (fixed seed), so the file only changes when this script does.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workload.jsonl"

SAMPLE_FILES: dict[str, str] = {
    "README.md": "# Sample\n\nA tiny package for replaying agent workloads.\n\nTODO: document the CLI.\n",
    "pyproject.toml": '[project]\nname = "sample"\nversion = "0.1.0"\nrequires-python = ">=3.9"\n',
    "requirements.txt": "requests>=2.31\n",
    ".gitignore": "build/\n__pycache__/\n*.pyc\n.venv/\nnode_modules/\n",
    "Makefile": (
        "PY ?= python3\nexport PYTHONPATH := src\n\n.PHONY: test lint build clean\n\n"
        "test:\n\t$(PY) -m unittest discover -s tests -t . -q\n\n"
        "lint:\n\t$(PY) -m compileall -q src tests\n\tnode --check scripts/check.js\n\n"
        "build:\n\tmkdir -p build\n\tcp -r src build/\n\tgcc -O2 -o build/hello csrc/hello.c\n\n"
        "clean:\n\trm -rf build\n"
    ),
    "package.json": (
        '{\n  "name": "sample-tools",\n  "version": "1.0.0",\n  "private": true,\n'
        '  "scripts": {"lint": "node scripts/check.js", "test": "node scripts/check.js"}\n}\n'
    ),
    "scripts/check.js": "const fs = require('fs');\nconsole.log(fs.readdirSync('src').length, 'entries');\n",
    "csrc/hello.c": '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
    "src/sample/__init__.py": '"""Sample package."""\n\nVERSION = "0.1.0"\n',
    "src/sample/core.py": (
        '"""Core helpers."""\n\nimport csv\nimport io\n\n\n'
        'def add(a: int, b: int) -> int:\n    """Add two numbers.\n\n    >>> add(2, 3)\n    5\n'
        '    """\n    return a + b\n\n\n'
        'def slugify(text: str) -> str:\n    """Lower-case words joined by dashes."""\n'
        '    return "-".join(text.lower().split())\n\n\n'
        'def parse_csv(text: str) -> list[dict[str, str]]:\n    """Rows of a CSV document."""\n'
        "    return list(csv.DictReader(io.StringIO(text)))\n"
    ),
    "src/sample/cli.py": (
        '"""Command line."""\n\nimport sys\n\nfrom sample.core import slugify\n\n\n'
        "def main() -> int:\n    print(slugify(' '.join(sys.argv[1:])))\n    return 0\n"
    ),
    "tests/__init__.py": (
        "import sys\nfrom pathlib import Path\n\n"
        'sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))\n'
    ),
    "tests/test_core.py": (
        "import unittest\n\nimport tests  # noqa: F401  (puts src on the path)\n"
        "from sample.core import add, parse_csv, slugify\n\n\n"
        "class CoreTests(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n"
        "    def test_slugify(self):\n        self.assertEqual(slugify('Hello World'), 'hello-world')\n\n"
        "    def test_parse_csv(self):\n        self.assertEqual(parse_csv('a,b\\n1,2\\n'), [{'a': '1', 'b': '2'}])\n\n\n"
        "if __name__ == '__main__':\n    unittest.main()\n"
    ),
    "docs/usage.md": "# Usage\n\n    python -m sample.cli hello world\n\nTODO: more examples.\n",
    "data/people.csv": "name,team\nada,core\ngrace,tools\nlinus,kernel\n",
}


def make_sample_repo(path: Path) -> Path:
    """Create the sample repo (a tiny Python package with tests, a Makefile, a C file, npm scripts and
    a three-commit git history) at `path`, which must not exist yet."""
    path.mkdir(parents=True)
    for name, text in SAMPLE_FILES.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.name", "Sample Dev")
    git("config", "user.email", "dev@example.invalid")
    git("config", "commit.gpgsign", "false")
    git("add", "README.md", "pyproject.toml", ".gitignore", "src")
    git("commit", "-qm", "Initial package")
    git("add", "tests", "Makefile", "data", "requirements.txt")
    git("commit", "-qm", "Tests, Makefile and sample data")
    git("add", "-A")
    git("commit", "-qm", "Docs, npm scripts and a C helper")
    return path


SOURCES = ["src/sample/core.py", "src/sample/cli.py", "src/sample/__init__.py", "tests/test_core.py"]
TEXTS = ["README.md", "docs/usage.md", "Makefile", "pyproject.toml", "package.json", "data/people.csv"]
ALL_FILES = SOURCES + TEXTS + ["csrc/hello.c", "scripts/check.js"]
WORDS = ["def ", "TODO", "import", "slugify", "parse_csv", "return", "VERSION", "class ", "test_"]


def _reads(rng: random.Random, n: int) -> list[str]:
    templates: list[Callable[[], str]] = [
        lambda: "ls",
        lambda: "ls -la",
        lambda: f"ls -la {rng.choice(['src', 'src/sample', 'tests', 'docs', 'data'])}",
        lambda: f"cat {rng.choice(ALL_FILES)}",
        lambda: f"head -n {rng.choice([10, 20, 40])} {rng.choice(ALL_FILES)}",
        lambda: f"tail -n {rng.choice([5, 20])} {rng.choice(ALL_FILES)}",
        lambda: f"wc -l {rng.choice(SOURCES)}",
        lambda: "wc -l src/sample/*.py tests/*.py",
        lambda: f"grep -rn '{rng.choice(WORDS)}' src tests",
        lambda: f"grep -n '{rng.choice(WORDS)}' {rng.choice(SOURCES)}",
        lambda: "grep -rl TODO . --include=*.md",
        lambda: "find . -name '*.py' -not -path './.git/*'",
        lambda: "find src -type f | sort",
        lambda: f"sed -n '{rng.choice([1, 5, 10])},{rng.choice([20, 30])}p' {rng.choice(SOURCES)}",
        lambda: "pwd",
        lambda: "du -sh src tests",
        lambda: f"stat {rng.choice(ALL_FILES)}",
        lambda: f"file {rng.choice(ALL_FILES)}",
        lambda: "cat data/people.csv | cut -d, -f2 | sort | uniq -c",
        lambda: "ls src/sample && cat src/sample/__init__.py",
        lambda: "which python3 make gcc",
        lambda: f"diff -u {rng.choice(SOURCES)} {rng.choice(SOURCES)} || true",
        # Reads the classic model cannot prove read-only (interpreters, awk, expansions): it asks.
        lambda: "awk -F, 'NR>1 {print $1}' data/people.csv",
        lambda: "python3 -c 'import sys; print(sys.version)'",
        lambda: 'cat "$(git rev-parse --show-toplevel)/README.md"',
        lambda: 'for f in src/sample/*.py; do wc -l "$f"; done',
        lambda: 'python3 -c \'import json; print(json.load(open("package.json"))["scripts"])\'',
    ]
    return [rng.choice(templates)() for _ in range(n)]


def _tests(rng: random.Random, n: int) -> list[str]:
    templates = [
        "make test",
        "python3 -m unittest discover -s tests -t . -q",
        "python3 -m unittest tests.test_core -v",
        "python3 -m unittest tests.test_core.CoreTests.test_slugify",
        "python3 -m doctest -v src/sample/core.py",
        "npm test --silent",
        "make test 2>&1 | tail -n 5",
        "python3 -m unittest discover -s tests -t . 2>&1 | tail -n 3",
    ]
    return [rng.choice(templates) for _ in range(n)]


def _builds(rng: random.Random, n: int) -> list[str]:
    templates = [
        "make lint",
        "make build",
        "make clean",
        "make build && ./build/hello",
        "python3 -m compileall -q src",
        "python3 -m py_compile src/sample/core.py",
        "python3 -m tabnanny src",
        "mkdir -p build && gcc -Wall -o build/hello csrc/hello.c",
        "node --check scripts/check.js",
        "npm run lint --silent",
        "gcc -fsyntax-only -Wall csrc/hello.c",
    ]
    return [rng.choice(templates) for _ in range(n)]


def _edits(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    for index in range(n):
        choice = rng.randrange(9)
        if choice == 0:
            out.append(f"mkdir -p notes && echo 'note {index}' >> notes/todo.md")
        elif choice == 1:
            out.append("sed -i 's/TODO: more examples./TODO: more examples!/' docs/usage.md")
        elif choice == 2:
            out.append(f"printf 'VALUE = {index}\\n' > src/sample/generated_{index}.py")
        elif choice == 3:
            out.append(f"cat > docs/change-{index}.md <<'EOF'\n# Change {index}\n\nDescribed here.\nEOF")
        elif choice == 4:
            out.append(f"touch notes-{index}.tmp && mv notes-{index}.tmp notes-{index}.md")
        elif choice == 5:
            out.append(f"cp README.md docs/README-{index}.md")
        elif choice == 6:
            out.append(
                "python3 - <<'EOF'\nfrom pathlib import Path\np = Path('README.md')\n"
                "p.write_text(p.read_text().replace('TODO: document', 'TODO: Document'))\nEOF"
            )
        elif choice == 7:
            out.append(f"echo '# scratch {index}' > scratch.md && rm scratch.md")
        else:
            out.append("sed -i 's/^VERSION = .*/VERSION = \"0.1.1\"/' src/sample/__init__.py")
    return out


def _git(rng: random.Random, n: int) -> list[str]:
    templates = [
        "git status",
        "git status --short",
        "git log --oneline -n 5",
        "git diff",
        "git diff --stat",
        "git show --stat HEAD",
        "git branch -a",
        "git log --oneline -- src",
        "git add -A && git commit -qm 'Agent change'",
        "git add README.md && git commit -qm 'Update README' || true",
        "git stash list",
        "git tag -l",
        "git rev-parse --abbrev-ref HEAD",
        "git blame -L 1,5 src/sample/core.py",
        "git push https://github.com/example-org/sample.git HEAD:main",
        "git fetch https://github.com/example-org/sample.git",
    ]
    out = [rng.choice(templates) for _ in range(n)]
    # A branch created once, not per line (the workload is replayed more than once).
    out[n // 2] = "git branch topic-replay 2>/dev/null || git branch --list topic-replay"
    return out


INSTALLS = [
    "python3 -m pip install --user -r requirements.txt",
    "python3 -m pip download --no-deps -d build/wheels requests",
    "npm install --no-audit --no-fund",
    "npm install --no-audit --no-fund left-pad",
    "npm cache verify",
    "mkdir -p ~/.cache/sample-tool && date > ~/.cache/sample-tool/last-run",
    "python3 -m pip cache dir",
    "mkdir -p ~/.npm/_logs && echo ok > ~/.npm/_logs/sample.log",
    "python3 -m pip install --no-index -r requirements.txt",
    "npm install --no-audit --no-fund --offline",
    "mkdir -p ~/.cache/pip/http && echo cached > ~/.cache/pip/http/sample",
    "python3 -m venv --without-pip build/venv",
]
FETCHES = [
    "curl -sSf https://pypi.org/simple/requests/ | head -n 5",
    "curl -sSfL https://github.com/example-org/sample/archive/refs/heads/main.tar.gz -o build/main.tgz",
    "git ls-remote https://github.com/example-org/sample.git",
    "python3 -m pip download --no-deps -d build/wheels requests==2.31.0",
    "wget -q -O build/index.html https://registry.npmjs.org/left-pad",
    "python3 -c \"import urllib.request as u; print(u.urlopen('https://pypi.org/pypi/requests/json').status)\"",
    "npm view left-pad version",
    "curl -sS https://api.github.com/repos/example-org/sample",
    "git clone --depth 1 https://github.com/example-org/sample.git build/clone",
    "curl -sS https://raw.githubusercontent.com/example-org/sample/main/README.md",
]
TMP_WRITES = [
    "echo scratch > /tmp/agent-notes.txt && cat /tmp/agent-notes.txt",
    "mktemp -d",
    'python3 -c "import tempfile; print(tempfile.mkdtemp())"',
    "cp data/people.csv /tmp/people.csv && wc -l /tmp/people.csv",
    "mkdir -p /tmp/sample-build && cp -r src /tmp/sample-build/",
]
OUTSIDE_WRITES = [
    "touch ~/agent-was-here",
    "mkdir -p ~/notes && cp README.md ~/notes/sample-README.md",
    "echo 'export PATH=$HOME/bin:$PATH' >> ~/.bashrc",
]
CREDENTIAL_READS = [
    "cat ~/.aws/credentials",
    "cat ~/.ssh/id_rsa",
    "grep -r token ~/.netrc",
]


def build_workload(total: int = 300, seed: int = 7) -> list[dict[str, str]]:
    """The workload lines, shuffled deterministically."""
    rng = random.Random(seed)
    counts = {"read": 120, "test": 45, "build": 42, "edit": 30, "git": 30}
    fixed = {
        "install": INSTALLS,
        "fetch": FETCHES,
        "tmp": TMP_WRITES,
        "outside": OUTSIDE_WRITES,
        "credential": CREDENTIAL_READS,
    }
    scale = total / 300
    lines: list[dict[str, str]] = []
    makers = {"read": _reads, "test": _tests, "build": _builds, "edit": _edits, "git": _git}
    for category, count in counts.items():
        lines.extend(
            {"command": c, "category": category} for c in makers[category](rng, round(count * scale))
        )
    for category, commands in fixed.items():
        lines.extend({"command": c, "category": category} for c in commands)
    rng.shuffle(lines)
    # A few commands run from a sub-directory of the project.
    for line in lines:
        if line["category"] == "read" and line["command"] in ("ls", "pwd") and rng.random() < 0.5:
            line["cwd"] = rng.choice(["src", "tests", "docs"])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, help="create the sample repo here instead")
    parser.add_argument("--output", type=Path, default=WORKLOAD)
    args = parser.parse_args(argv)
    if args.repo is not None:
        make_sample_repo(args.repo)
        print(args.repo)
        return 0
    lines = build_workload()
    with args.output.open("w") as stream:
        for line in lines:
            stream.write(json.dumps(line) + "\n")
    print(f"{len(lines)} commands written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
