"""The mount table of corral's own mount namespace, read from /proc/self/mountinfo."""

from __future__ import annotations

from pathlib import Path


def host_mount_points() -> list[Path]:
    """Mount points of corral's mount namespace (outside /proc, /sys, /dev)."""
    points: list[Path] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                fields = line.split(" ")
                if len(fields) > 4:
                    point = _unescape_mountinfo(fields[4])
                    if not point.startswith(("/proc", "/sys", "/dev")) and point != "/":
                        points.append(Path(point))
    except OSError:
        pass
    return points


def _unescape_mountinfo(text: str) -> str:
    out = []
    index = 0
    while index < len(text):
        if text[index] == "\\" and index + 3 < len(text) and text[index + 1 : index + 4].isdigit():
            out.append(chr(int(text[index + 1 : index + 4], 8)))
            index += 4
        else:
            out.append(text[index])
            index += 1
    return "".join(out)
