"""Independent references shared by the tests (brute-force enumerations, no symmaml code)."""
from __future__ import annotations


def pairings(items):
    """Every perfect matching of ``items`` (a list), as a list of pairs; none for odd length."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for k in range(len(rest)):
        for tail in pairings(rest[:k] + rest[k + 1:]):
            yield [(first, rest[k])] + tail
