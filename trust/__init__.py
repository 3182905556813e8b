"""The trust gate: discovery and fingerprint of repo config, the trust store, project config.

Knows nothing of sandboxing or user interfaces: it answers "may this project's config load, and what is it?"
"""
