"""Egress: host normalisation and matching, and the proxy that the sandbox reaches for the network."""
