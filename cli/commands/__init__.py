"""CLI sub-commands. Each module here defines `register(subparsers)`, which adds its parser and sets
`handler` (a function taking the parsed namespace and returning an exit status) with `set_defaults`.

Modules are discovered by name, so adding a command never edits a shared list. Keep each module's
top-level imports light (argparse, typing): the `corral run` path must stay fast.
"""
