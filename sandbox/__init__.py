"""Enforcement: the policy model, platform backends, the egress proxy and violation capture.

This package knows nothing of trust, prompts or user interfaces: it enforces a `Policy` and reports
what a command crossed as `Violation`s inside a `RunResult`.
"""
