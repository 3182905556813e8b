"""Generate `screenshots/<scene>.svg` for every screen of `corral shell`, from the real app.

    .venv/bin/python screenshots/make_screenshots.py [SCENE ...]

Each scene runs headless at 120x35 (`scenes.SIZE`) with HOME and XDG_* pointed at a fresh temporary directory (no
real corral state is read or written) and the demo project under /tmp/corral-demo. Regenerate after
any UI change and commit the SVGs; README embeds them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "screenshots"


def _isolate(base: Path) -> None:
    home = base / "home"
    home.mkdir()
    os.environ["HOME"] = str(home)
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        os.environ[name] = str(home / sub)
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    os.environ["TZ"] = "UTC"


async def _shoot(name: str) -> Path:
    from screenshots.scenes import SCENES, SIZE

    scene = next(s for s in SCENES if s.name == name)
    app = scene.build()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await scene.steps(pilot)  # type: ignore[arg-type]
        await pilot.pause(0.2)
        app.title = f"corral shell · {scene.name}"
        path = app.save_screenshot(f"{scene.name}.svg", path=str(OUT))
    return Path(path)


def main(names: list[str]) -> int:
    sys.path.insert(0, str(REPO))
    import time

    time.tzset()
    from screenshots.demo import exclusive
    from screenshots.scenes import SCENES

    wanted = names or [scene.name for scene in SCENES]
    for name in wanted:
        with exclusive(), tempfile.TemporaryDirectory(prefix="corral-shot-") as base:
            _isolate(Path(base))
            time.tzset()
            print(_shoot_sync(name))
    return 0


def _shoot_sync(name: str) -> Path:
    return asyncio.run(_shoot(name))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
