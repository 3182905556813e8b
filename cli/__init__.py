"""The `corral` command line, the top of the picture: argparse, the sub-commands, and the one place
where a `corral.errors.CorralError` raised anywhere below becomes one line and an exit status.

It builds typed values for the core (never handing it an argparse namespace) and loads the front end
it needs directly (`tui`), so every arrow from here points down.
"""
