"""The `corral-claude` console script: `CLAUDE_CODE_SHELL_PREFIX=corral-claude` (see
`corral.broker.claude`)."""

from __future__ import annotations

import sys


def main() -> int:
    from corral.broker.claude import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
