"""The fatigue measurement: how many prompts corral asked, against a classic approval baseline.

`classic` judges whether a reads-run-freely, everything-else-asks model would have prompted for a
command; `stats` reads the ledger and compares; `replay` runs a recorded workload through a real
Session to measure both sides on the same commands. Nothing here decides a command: these modules
only count and report.
"""
