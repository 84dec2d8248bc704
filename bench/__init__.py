"""Benchmarks: ``python -m bench`` (or ``nox -s bench``) runs them all, ``python -m bench NAME`` one."""
