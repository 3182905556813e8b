"""The core: sessions, escalation decisions, rules, the prompt ledger, the session broker. No UI, no argparse."""

__version__ = "0.1.0"
