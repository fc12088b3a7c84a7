"""Benchmarks: ``python -m bench`` (see README.md, Performance)."""
