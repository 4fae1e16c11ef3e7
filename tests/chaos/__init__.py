"""Chaos tests: warroom's processes killed and its dependencies failing while an incident runs."""
