"""The words both sides of the boundary share: violations, host names and host patterns.

A leaf: it imports nothing of corral's own, so `sandbox` and `trust` can both read it and stay
independent of each other.
"""
