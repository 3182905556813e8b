"""Screenshots and the demo content behind them (never installed: not part of the wheel).

`demo` builds a fixed demo project and state, `scenes` every screen of the shell as a reproducible
scene, `make_screenshots.py` renders them to SVG; the snapshot tests use the same scenes.
"""
