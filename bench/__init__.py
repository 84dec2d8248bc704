"""Benchmarks: ``python -m bench NAME`` (or ``nox -s bench -- NAME``); ``python -m bench`` lists them."""
