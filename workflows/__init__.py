"""Deterministic workflow code: the incident's life, and the directory of incidents."""
