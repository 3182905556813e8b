"""The core and CLI: sessions, escalation decisions, rules, the prompt ledger, agent plug-ins."""

__version__ = "0.1.0"
